"""Which channel reaches a customer: the first of a preference order that the customer consented to
and has an address for. Surveys and loyalty care both send through it (and the outbox)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.postgres.forms import SimpleArrayField
from django.utils.translation import gettext_lazy as _

CHANNELS = ("sms", "wechat", "email")
DEFAULT_PREFERENCE = list(CHANNELS)
CONSENT_FIELD = {"sms": "consent_sms", "wechat": "consent_wechat", "email": "consent_email"}
ADDRESS_FIELD = {"sms": "mobile", "wechat": "mobile", "email": "email"}


def reachable_channel(customer: Any, preferences: list[str]) -> tuple[str, str] | None:
    """(channel, address) of the first preferred channel the customer consented to and can be
    reached on, or None."""
    for channel in preferences:
        if channel not in CHANNELS or not getattr(customer, CONSENT_FIELD[channel], False):
            continue
        address = getattr(customer, ADDRESS_FIELD[channel], "") or ""
        if address:
            return channel, address
    return None


def channel_sql(preferences: list[str], alias: str = "c") -> tuple[str, str]:
    """The same choice set-based: SQL CASE expressions (channel, address) over customers_customer
    aliased `alias`. Channels come from the fixed list above, never from input."""
    chosen = [c for c in preferences if c in CHANNELS]
    if not chosen:
        return "NULL", "NULL"

    def test(c: str) -> str:
        return f"{alias}.{CONSENT_FIELD[c]} AND {alias}.{ADDRESS_FIELD[c]} <> ''"

    channel = " ".join(f"WHEN {test(c)} THEN '{c}'" for c in chosen)
    address = " ".join(f"WHEN {test(c)} THEN {alias}.{ADDRESS_FIELD[c]}" for c in chosen)
    return f"CASE {channel} END", f"CASE {address} END"


def channel_preference_field() -> SimpleArrayField:
    """The settings forms' field for a preference order such as sms,wechat,email."""
    return SimpleArrayField(
        forms.ChoiceField(choices=[(c, c) for c in CHANNELS]),
        label=_("Channels, in order of preference"),
        help_text=_("e.g. sms,wechat,email: the first one the customer consented to and can be reached on is used."),
        required=False,
    )
