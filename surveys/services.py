"""Every write of surveys: templates and their versions, settings, invitations (with the outbox),
answers (partial and final), the nightly triggers, and the closed loop after a low score.

Links are signed (django.core.signing, salted), carry a per-invitation nonce, expire with the
invitation and are single-use: the response is unique per invitation and written under a row lock.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings as django_settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from crm.core.errors import ApplicationError
from crm.core.notifications import notify
from crm.messaging.consent import CHANNELS, reachable_channel
from crm.messaging.models import OutboxMessage
from crm.messaging.services import FAILED_HOOKS, SENT_HOOKS, outbox_cancel, outbox_enqueue
from crm.tenancy.access import require
from crm.tenancy.models import Membership, Tenant, dealership_settings, settings_assign
from crm.tenancy.roles import Role
from customers.models import Customer, ListFlag, Order
from surveys.models import (
    Answer,
    Invitation,
    QuestionKind,
    Response,
    SurveyQuestion,
    SurveySettings,
    SurveyTemplate,
    SurveyVersion,
)
from surveys.ready_made import READY_MADE

logger = logging.getLogger(__name__)

LINK_SALT = "surveys.invitation"
KEY_PATTERN = re.compile(r"[-a-zA-Z0-9_]{1,40}")


# --- Templates -------------------------------------------------------------------------------------


@dataclass
class QuestionInput:
    key: str
    kind: str
    text: str
    section: str = ""
    choices: list[str] = field(default_factory=list)
    required: bool = True


def templates_ensure() -> list[SurveyTemplate]:
    """The dealership's templates, creating the ready-made ones on first use."""
    if not SurveyTemplate.objects.exists():
        for spec in READY_MADE:
            template = SurveyTemplate.objects.create(code=spec["code"], name=spec["name"], moment=spec["moment"])
            _new_version(
                template,
                title=spec["title"],
                intro=spec["intro"],
                questions=[
                    QuestionInput(key=k, section=s, kind=kind, text=t, choices=list(c), required=r)
                    for k, s, kind, t, c, r in spec["questions"]
                ],
                actor=None,
            )
    return list(SurveyTemplate.objects.select_related("current_version").order_by("moment", "name"))


def _check_questions(questions: list[QuestionInput]) -> None:
    errors: list[str] = []
    keys = [q.key for q in questions]
    if not questions:
        errors.append(_("A survey needs at least one question."))
    if len(set(keys)) != len(keys):
        errors.append(_("Each question needs its own key."))
    for q in questions:
        if not KEY_PATTERN.fullmatch(q.key or ""):
            errors.append(_("“%(key)s”: a key is 1–40 letters, digits, hyphens or underscores.") % {"key": q.key or ""})
        if len(q.text.strip()) > 300 or len(q.section.strip()) > 60 or any(len(c.strip()) > 100 for c in q.choices):
            errors.append(
                _("“%(key)s”: at most 300 characters for a question, 60 for a section, 100 for a choice.")
                % {"key": q.key}
            )
        if q.kind not in QuestionKind.values:
            errors.append(_("Unknown question type: %(kind)s.") % {"kind": q.kind})
        if q.kind in (QuestionKind.SINGLE, QuestionKind.MULTI) and len([c for c in q.choices if c.strip()]) < 2:
            errors.append(_("“%(text)s” needs at least two choices.") % {"text": q.text})
        if not q.text.strip():
            errors.append(_("Every question needs its text."))
    if errors:
        raise ApplicationError(_("Check the questions."), fields={"questions": errors})


def _new_version(
    template: SurveyTemplate, *, title: str, intro: str, questions: list[QuestionInput], actor: Membership | None
) -> SurveyVersion:
    _check_questions(questions)
    last = template.versions.order_by("-number").values_list("number", flat=True).first() or 0
    version = SurveyVersion.objects.create(
        template=template, number=last + 1, title=title.strip() or template.name, intro=intro.strip(), created_by=actor
    )
    SurveyQuestion.objects.bulk_create(
        [
            SurveyQuestion(
                version=version,
                position=i,
                key=q.key,
                section=q.section.strip(),
                kind=q.kind,
                text=q.text.strip(),
                choices=[c.strip() for c in q.choices if c.strip()],
                required=q.required,
            )
            for i, q in enumerate(questions, 1)
        ]
    )
    SurveyTemplate.objects.filter(pk=template.pk).update(current_version=version)
    template.current_version = version
    return version


@transaction.atomic
def template_edit(
    *, actor: Membership, template: SurveyTemplate, title: str, intro: str, questions: list[QuestionInput]
) -> SurveyVersion:
    """Editing makes a new version; invitations already sent keep theirs, and so do their answers."""
    require(actor, "surveys.manage", _("Only managers may edit survey templates."))
    template = SurveyTemplate.objects.select_for_update().get(pk=template.pk)
    return _new_version(template, title=title, intro=intro, questions=questions, actor=actor)


# --- Settings --------------------------------------------------------------------------------------


def survey_settings() -> SurveySettings:
    return dealership_settings(SurveySettings)


@transaction.atomic
def settings_update(*, actor: Membership, data: dict[str, Any]) -> SurveySettings:
    require(actor, "surveys.manage", _("Only managers may change survey settings."))
    settings = survey_settings()
    if "channels" in data and (
        not isinstance(data["channels"], list | tuple) or any(c not in CHANNELS for c in data["channels"])
    ):
        raise ApplicationError(_("Channels are sms, wechat and email."), fields={"channels": [_("Unknown channel.")]})
    settings_assign(settings, data, invalid=_("Some settings are not valid."))
    settings.save()
    return settings


# --- Invitations -----------------------------------------------------------------------------------


def _channel_for(customer: Customer, settings: SurveySettings) -> tuple[str, str] | None:
    return reachable_channel(customer, settings.preferred_channels())


def link_token(invitation: Invitation) -> str:
    return signing.dumps(
        {"t": invitation.tenant_id, "i": invitation.pk, "n": invitation.nonce}, salt=LINK_SALT, compress=True
    )


def link_url(invitation: Invitation) -> str:
    return django_settings.CRM_SITE_URL + reverse("survey_answer", args=[link_token(invitation)])


def read_token(token: str) -> tuple[int, int, str]:
    """(tenant id, invitation id, nonce); raises signing.BadSignature for anything tampered with."""
    data = signing.loads(token, salt=LINK_SALT)
    if not isinstance(data, dict) or not {"t", "i", "n"} <= set(data):
        raise signing.BadSignature("incomplete")
    return int(data["t"]), int(data["i"]), str(data["n"])


class NotInvited(Exception):
    """Why an automatic trigger invites nobody (frequency cap, consent, black list …)."""


def _message(invitation: Invitation, *, reminder: bool) -> tuple[str, str]:
    """Subject and text, in the dealership's language (not the language of whoever triggered it)."""
    tenant = Tenant.objects.get(pk=invitation.tenant_id)
    with translation.override(tenant.locale):
        subject = _("%(dealership)s: how did we do?") % {"dealership": tenant.name}
        text = (
            _("Reminder: %(name)s, we would still love to hear from you. %(link)s")
            if reminder
            else _("%(name)s, thank you for choosing %(dealership)s. One minute to tell us how we did: %(link)s")
        ) % {"name": invitation.customer.name, "dealership": tenant.name, "link": link_url(invitation)}
    return subject, text


@transaction.atomic
def invitation_create(
    *,
    actor: Membership | None,
    customer: Customer,
    template: SurveyTemplate,
    trigger: str = Invitation.Trigger.MANUAL,
    order: Order | None = None,
    ticket: Any = None,
    staff: Membership | None = None,
    send_after: datetime | None = None,
) -> Invitation:
    """Invite a customer; the message goes through the outbox at `send_after`. Raises NotInvited when
    the rules say no (automatic triggers skip such customers; staff see the reason)."""
    require(actor, "surveys.send", _("Your role may not send surveys."))
    settings = survey_settings()
    if customer.merged_into_id or customer.list_flag == ListFlag.BLACK:
        raise NotInvited(_("The customer is on the black list or was merged."))
    if template.current_version_id is None or not template.is_active:
        raise NotInvited(_("That survey template is not active."))
    now = timezone.now()
    if settings.min_days_between:  # 0: no cap
        recent = Invitation.objects.filter(
            customer=customer, created_at__gt=now - timedelta(days=settings.min_days_between)
        ).exclude(status__in=[Invitation.Status.CANCELLED, Invitation.Status.FAILED])
        if recent.exists():
            raise NotInvited(
                _("The customer was surveyed in the last %(days)s days.") % {"days": settings.min_days_between}
            )
    route = _channel_for(customer, settings)
    if route is None:
        raise NotInvited(_("The customer cannot be reached on a channel they consented to."))
    channel, address = route
    send_at = send_after or now
    invitation = Invitation(
        customer=customer,
        version_id=template.current_version_id,
        trigger=trigger,
        order=order,
        ticket=ticket,
        staff=staff,
        channel=channel,
        address=address,
        nonce=secrets.token_urlsafe(12),
        send_after=send_at,
        expires_at=send_at + timedelta(days=settings.expiry_days),
        created_by=actor,
        created_at=now,  # the same clock as the frequency cap
    )
    try:
        with transaction.atomic():
            invitation.save()
    except IntegrityError:
        raise NotInvited(_("This was surveyed already.")) from None
    subject, text = _message(invitation, reminder=False)
    outbox_enqueue(
        channel=channel,
        to=address,
        subject=subject,
        body=text,
        purpose=f"survey:{invitation.pk}",
        key=f"survey:{invitation.pk}:invite",
        send_at=send_at,
    )
    return invitation


@transaction.atomic
def invitation_cancel(*, actor: Membership, invitation: Invitation) -> Invitation:
    require(actor, "surveys.send", _("Your role may not send surveys."))
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.status in (Invitation.Status.ANSWERED, Invitation.Status.EXPIRED):
        raise ApplicationError(_("An answered or expired survey cannot be cancelled."), code="not_cancellable")
    invitation.status = Invitation.Status.CANCELLED
    invitation.save(update_fields=["status"])
    outbox_cancel(purpose=f"survey:{invitation.pk}")
    return invitation


def _on_sent(message: OutboxMessage) -> None:
    invitation_id = int(message.purpose.split(":", 1)[1])
    now = timezone.now()
    if message.key.endswith(":invite"):
        Invitation.objects.filter(pk=invitation_id, status=Invitation.Status.SCHEDULED).update(
            status=Invitation.Status.SENT, sent_at=now
        )
    else:
        Invitation.objects.filter(pk=invitation_id).update(reminded_at=now)


def _on_failed(message: OutboxMessage) -> None:
    invitation_id = int(message.purpose.split(":", 1)[1])
    if message.key.endswith(":invite"):
        Invitation.objects.filter(pk=invitation_id, status=Invitation.Status.SCHEDULED).update(
            status=Invitation.Status.FAILED
        )


SENT_HOOKS["survey"] = _on_sent
FAILED_HOOKS["survey"] = _on_failed


# --- Answering -------------------------------------------------------------------------------------


class LinkProblem(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # invalid, expired, answered, cancelled


def invitation_for_answer(invitation_id: int, nonce: str, *, now: datetime | None = None) -> Invitation:
    """The invitation behind a link (inside its dealership's tenant_context), or LinkProblem."""
    invitation = Invitation.objects.select_related("version", "customer").filter(pk=invitation_id, nonce=nonce).first()
    if invitation is None:
        raise LinkProblem("invalid")
    if invitation.status == Invitation.Status.ANSWERED:
        raise LinkProblem("answered")
    if invitation.status == Invitation.Status.CANCELLED:
        raise LinkProblem("cancelled")
    if invitation.status == Invitation.Status.EXPIRED or (now or timezone.now()) >= invitation.expires_at:
        raise LinkProblem("expired")
    return invitation


def _clean_answers(
    version: SurveyVersion, raw: dict[str, Any], *, final: bool
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Typed answers by question key, and errors by key. Partial saves keep what is valid."""
    answers: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for question in version.questions.all():
        value = raw.get(question.key)
        empty = value in (None, "", [])
        if empty:
            if final and question.required:
                errors[question.key] = [_("Please answer this question.")]
            continue
        try:
            answers[question.key] = _typed(question, value)
        except ValueError as error:
            errors[question.key] = [str(error)]
    return answers, errors


def _typed(question: SurveyQuestion, value: Any) -> Any:
    if question.kind in (QuestionKind.RATING, QuestionKind.NPS):
        low, high = (1, 5) if question.kind == QuestionKind.RATING else (0, 10)
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(_("Choose a score.")) from None
        if not low <= number <= high:
            raise ValueError(_("Choose a score from %(low)s to %(high)s.") % {"low": low, "high": high})
        return number
    if question.kind == QuestionKind.SINGLE:
        if value not in question.choices:
            raise ValueError(_("Choose one of the options."))
        return value
    if question.kind == QuestionKind.MULTI:
        values = value if isinstance(value, list) else [value]
        if not values or any(v not in question.choices for v in values):
            raise ValueError(_("Choose from the options."))
        return [c for c in question.choices if c in values]
    text = str(value).strip()
    if len(text) > 4000:
        raise ValueError(_("At most 4,000 characters."))
    return text


@transaction.atomic
def answers_save_draft(*, invitation: Invitation, raw: dict[str, Any]) -> dict[str, list[str]]:
    """Keep partial answers (the customer may come back later); returns the invalid ones."""
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    invitation_for_answer(invitation.pk, invitation.nonce)
    answers, errors = _clean_answers(invitation.version, raw, final=False)
    invitation.draft = answers
    invitation.opened_at = invitation.opened_at or timezone.now()
    invitation.save(update_fields=["draft", "opened_at"])
    return errors


def answers_submit(*, invitation: Invitation, raw: dict[str, Any]) -> Response:
    """Submit once. The invitation row is locked and the response is unique per invitation, so a
    double click or two tabs produce one response; the second gets LinkProblem("answered").

    With a required answer missing (or one invalid), nothing is submitted: ApplicationError names
    the questions, and the valid answers are kept as the draft for the next visit."""
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
        locked = invitation_for_answer(locked.pk, locked.nonce)
        answers, errors = _clean_answers(locked.version, raw, final=True)
        if not errors:
            return _record(locked, answers)
        locked.draft = answers
        locked.save(update_fields=["draft"])
    # raised after the block, so the draft above is kept
    raise ApplicationError(_("Please answer the highlighted questions."), fields=errors)


def _overall(answers: dict[str, Any], questions: dict[str, SurveyQuestion]) -> int | None:
    """The "overall" rating question, else the mean of the ratings rounded half up (2.5 -> 3)."""
    if "overall" in answers and questions["overall"].kind == QuestionKind.RATING:
        return int(answers["overall"])
    ratings = [answers[k] for k, q in questions.items() if q.kind == QuestionKind.RATING and k in answers]
    return (2 * sum(ratings) + len(ratings)) // (2 * len(ratings)) if ratings else None


def _record(locked: Invitation, answers: dict[str, Any]) -> Response:
    questions = {q.key: q for q in locked.version.questions.all()}
    now = timezone.now()
    response = Response.objects.create(
        invitation=locked, version=locked.version, customer=locked.customer, staff=locked.staff, submitted_at=now
    )
    rows = []
    for key, value in answers.items():
        question = questions[key]
        answer = Answer(response=response, question=question)
        if question.kind in (QuestionKind.RATING, QuestionKind.NPS):
            answer.number = value
        elif question.kind == QuestionKind.TEXT:
            answer.text = value
        else:
            answer.choices = value if isinstance(value, list) else [value]
        rows.append(answer)
    Answer.objects.bulk_create(rows)
    settings = survey_settings()
    ratings = [answers[k] for k, q in questions.items() if q.kind == QuestionKind.RATING and k in answers]
    response.overall = _overall(answers, questions)
    nps_key = next((k for k, q in questions.items() if q.kind == QuestionKind.NPS and k in answers), None)
    response.nps = answers[nps_key] if nps_key else None
    response.low_score = bool(
        (ratings and min(ratings) <= settings.low_score_max) or (response.nps is not None and response.nps <= 6)
    )
    response.save(update_fields=["overall", "nps", "low_score"])
    locked.status, locked.answered_at, locked.draft = Invitation.Status.ANSWERED, now, {}
    locked.save(update_fields=["status", "answered_at", "draft"])
    outbox_cancel(purpose=f"survey:{locked.pk}")  # no reminder after an answer
    if response.low_score:
        # for the staff who act on it: in the dealership's language, whatever the customer chose
        with translation.override(Tenant.objects.get(pk=locked.tenant_id).locale):
            _close_the_loop(response, settings)
    return response


def _close_the_loop(response: Response, settings: SurveySettings) -> None:
    """A detractor or a low score gets a person to act: a complaint ticket, a follow-up call in the
    owner's queue, or a call-back notice to the owner and the managers."""
    customer = response.customer
    summary = _("Survey %(template)s: overall %(overall)s, recommend %(nps)s") % {
        "template": response.version.template.name,
        "overall": response.overall if response.overall is not None else "—",
        "nps": response.nps if response.nps is not None else "—",
    }
    if settings.low_score_action == SurveySettings.LowScoreAction.COMPLAINT and customer.mobile:
        from complaints import services as complaints

        categories = complaints.categories_ensure()
        category = next((c for c in categories if c.code == "other"), categories[-1])
        comments = " ".join(a.text for a in response.answers.all() if a.text)
        complaints.ticket_open(
            actor=None,
            data=complaints.TicketInput(
                contact_name=customer.name,
                contact_mobile=customer.mobile,
                channel="web_form",
                category=category,
                severity="high",
                subject=summary[:200],
                description=(comments or summary)[:8000],
                customer=customer,
                assignee=customer.owner if customer.owner and customer.owner.can("complaints.work") else None,
            ),
            source="survey",
        )
        return
    if settings.low_score_action == SurveySettings.LowScoreAction.FOLLOWUP and _schedule_callback(response, summary):
        return
    if settings.low_score_action != SurveySettings.LowScoreAction.NONE:
        managers = list(Membership.objects.filter(role=Role.MANAGER, is_active=True).select_related("user"))
        notify(
            recipients=managers + ([customer.owner] if customer.owner else []),
            kind="survey_low_score",
            title=_("Call back %(name)s: low survey score") % {"name": customer.name},
            body=summary,
            url=reverse("surveys:response", args=[response.pk]),
            key=f"survey-low:{response.pk}",
            email=True,
        )


def _schedule_callback(response: Response, summary: str) -> bool:
    """A callback follow-up in the customer's queue today; False when the customer cannot be
    called (no consent, black list, one open already), so the managers are told instead."""
    from followups import services as followups

    customer = response.customer
    owner = customer.owner if customer.owner and customer.owner.is_active else None
    try:
        followups.followup_create(
            actor=None,
            customer=customer,
            reason="survey",
            due_from=timezone.localdate(),
            note=summary[:300],
            assignee=owner if owner and owner.can("followups.work") else None,
            source_key=f"survey:{response.pk}",
        )
    except ApplicationError:
        return False
    return True


# --- The nightly triggers ----------------------------------------------------------------------------

SERVICE_KINDS = (Order.Kind.MAINTENANCE, Order.Kind.REPAIR)
CATCH_UP_DAYS = 7  # a night missed is made up for, up to a week


def _template(moment: str) -> SurveyTemplate | None:
    return (
        SurveyTemplate.objects.filter(moment=moment, is_active=True, current_version__isnull=False)
        .order_by("pk")
        .first()
    )


def surveys_schedule(*, run_date: date) -> dict[str, int]:
    """Invite buyers and service customers whose order is `delay` days old (catching up a week of
    missed nights), send reminders, expire old links. Idempotent: a second run invites nobody new."""
    templates_ensure()
    settings = survey_settings()
    counts = {"invited": 0, "skipped": 0, "reminded": 0, "expired": 0}
    for moment, enabled, delay, kinds, trigger in (
        (
            "sales",
            settings.sales_enabled,
            settings.sales_delay_days,
            (Order.Kind.VEHICLE_SALE,),
            Invitation.Trigger.DELIVERY,
        ),
        ("service", settings.service_enabled, settings.service_delay_days, SERVICE_KINDS, Invitation.Trigger.SERVICE),
    ):
        template = _template(moment)
        if not enabled or template is None:
            continue
        due_on = run_date - timedelta(days=delay)
        orders = (
            Order.objects.filter(
                kind__in=kinds,
                status=Order.Status.COMPLETED,
                ordered_on__gt=due_on - timedelta(days=CATCH_UP_DAYS),
                ordered_on__lte=due_on,
                customer__merged_into__isnull=True,
            )
            .exclude(pk__in=Invitation.objects.filter(trigger=trigger, order__isnull=False).values("order_id"))
            .select_related("customer", "staff")
            .order_by("ordered_on", "pk")
        )
        for order in orders:
            try:
                invitation_create(
                    actor=None,
                    customer=order.customer,
                    template=template,
                    trigger=trigger,
                    order=order,
                    staff=order.staff,
                )
                counts["invited"] += 1
            except NotInvited:
                counts["skipped"] += 1
    counts["reminded"] = _send_reminders(settings)
    counts["expired"] = _expire()
    return counts


def _expire() -> int:
    """Mark links past their date expired, and withdraw their messages still waiting in the outbox
    (a gateway that was down must not deliver a dead link later)."""
    expired = list(
        Invitation.objects.select_for_update()  # an answer being written finishes first, and drops out
        .filter(status__in=[Invitation.Status.SCHEDULED, Invitation.Status.SENT], expires_at__lte=timezone.now())
        .values_list("pk", flat=True)
    )
    Invitation.objects.filter(pk__in=expired).update(status=Invitation.Status.EXPIRED)
    OutboxMessage.objects.filter(
        purpose__in=[f"survey:{pk}" for pk in expired], status=OutboxMessage.Status.PENDING
    ).update(status=OutboxMessage.Status.CANCELLED)
    return len(expired)


def _send_reminders(settings: SurveySettings) -> int:
    if not settings.reminder_after_days:
        return 0
    due = Invitation.objects.filter(
        status=Invitation.Status.SENT,
        reminded_at__isnull=True,
        sent_at__lte=timezone.now() - timedelta(days=settings.reminder_after_days),
        expires_at__gt=timezone.now(),
    ).select_related("customer")
    sent = 0
    for invitation in due:
        subject, text = _message(invitation, reminder=True)
        if outbox_enqueue(
            channel=invitation.channel,
            to=invitation.address,
            subject=subject,
            body=text,
            purpose=f"survey:{invitation.pk}",
            key=f"survey:{invitation.pk}:remind",
        ):
            sent += 1
    return sent


def survey_after_complaint(ticket: Any) -> None:
    """complaints' closed-loop hook: survey the complainant a few days after closing."""
    settings = survey_settings()
    template = _template("complaint")
    if not settings.complaint_enabled or template is None or ticket.customer is None:
        return
    try:
        invitation_create(
            actor=None,
            customer=ticket.customer,
            template=template,
            trigger=Invitation.Trigger.COMPLAINT,
            ticket=ticket,
            staff=ticket.assignee,
            send_after=timezone.now() + timedelta(days=settings.complaint_delay_days),
        )
    except NotInvited as reason:
        logger.info("no survey after complaint %s: %s", ticket.pk, reason)
