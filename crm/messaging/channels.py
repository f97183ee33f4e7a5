"""How a message leaves: one interface, one adapter per channel.

- email: Django's mail settings (EMAIL_HOST …), delivered for real;
- sms, wechat: an HTTP gateway each (the SMS provider's or the WeChat service account's bridge),
  configured by SMS_GATEWAY_URL / WECHAT_GATEWAY_URL and a bearer token. The gateway receives
  {"to", "text", "subject"} as JSON and answers 2xx when it accepted the message.

An adapter raises DeliveryError for a failure worth retrying and PermanentDeliveryError for one that
is not (a malformed address). A channel without configuration raises ChannelNotConfigured, which
the outbox treats as retryable: messages wait until an operator configures the gateway.
"""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.core.mail import send_mail

from crm.core.extensions import Contribution, ExtensionPoint


class DeliveryError(Exception):
    """Worth retrying."""


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help."""


class ChannelNotConfigured(DeliveryError):
    pass


class ChannelAdapter(Protocol):
    def send(self, *, to: str, subject: str, text: str) -> None: ...


class EmailAdapter:
    def send(self, *, to: str, subject: str, text: str) -> None:
        if "@" not in to:
            raise PermanentDeliveryError(f"not an e-mail address: {to!r}")
        try:
            send_mail(subject, text, None, [to], fail_silently=False)
        except smtplib.SMTPRecipientsRefused as error:  # the address itself was refused
            raise PermanentDeliveryError(str(error)) from error
        except OSError as error:  # SMTP refused or unreachable
            raise DeliveryError(str(error)) from error


class HttpGatewayAdapter:
    def __init__(self, *, url: str | None, token: str | None, name: str) -> None:
        self.url, self.token, self.name = url, token, name

    def send(self, *, to: str, subject: str, text: str) -> None:
        if not self.url:
            raise ChannelNotConfigured(f"{self.name} gateway is not configured")
        if not self.url.startswith(("https://", "http://")):
            raise ChannelNotConfigured(f"{self.name} gateway URL must be http(s)")
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            self.url,
            data=json.dumps({"to": to, "subject": subject, "text": text}).encode(),
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {self.token}"} if self.token else {}),
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - operator-set URL
                if not 200 <= response.status < 300:
                    raise DeliveryError(f"{self.name} gateway answered {response.status}")
        except urllib.error.HTTPError as error:
            if 400 <= error.code < 500 and error.code not in (408, 429):
                raise PermanentDeliveryError(f"{self.name} gateway refused: {error.code}") from error
            raise DeliveryError(f"{self.name} gateway answered {error.code}") from error
        except (urllib.error.URLError, OSError) as error:
            raise DeliveryError(f"{self.name} gateway unreachable: {error}") from error


@dataclass(frozen=True, kw_only=True)
class OutboxChannel(Contribution):
    """A way out for messages whose `channel` is this contribution's name; `adapter()` builds the
    adapter from the current settings (so a changed gateway setting applies to the next send)."""

    adapter: Callable[[], ChannelAdapter]


outbox_channels: ExtensionPoint[OutboxChannel] = ExtensionPoint("messaging.outbox_channels", OutboxChannel)


def sms_gateway() -> ChannelAdapter:
    return HttpGatewayAdapter(url=settings.SMS_GATEWAY_URL, token=settings.SMS_GATEWAY_TOKEN, name="SMS")


def wechat_gateway() -> ChannelAdapter:
    return HttpGatewayAdapter(url=settings.WECHAT_GATEWAY_URL, token=settings.WECHAT_GATEWAY_TOKEN, name="WeChat")


def adapter_for(channel: str) -> ChannelAdapter:
    registered = outbox_channels.get(channel)
    if registered is None:
        raise PermanentDeliveryError(f"unknown channel {channel!r}")
    return registered.adapter()
