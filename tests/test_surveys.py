"""Satisfaction surveys: versioned templates, invitations (consent, frequency cap, black list, the
outbox and its channels), signed single-use links (tampered, expired, reused, cancelled), the public
answer page (partial answers, required answers, one submission even when two arrive at once), the
nightly triggers and reminders, the closed loop after a low score, the results figures, the
segmentation signal, and the staff pages and API with their permissions."""

from __future__ import annotations

import json
import re
import threading
import zoneinfo
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core import mail, signing
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from complaints import services as complaints
from complaints.models import Ticket
from crm.core.errors import ApplicationError, NotAllowed
from crm.core.models import Notification
from crm.messaging.models import OutboxMessage
from crm.messaging.services import outbox_send_due
from crm.tenancy.context import tenant_context
from crm.tenancy.models import ApiCredential, Tenant
from customers.models import Customer, Order
from surveys import public_views, selectors, services
from surveys.models import Answer, Invitation, Response, SurveySettings, SurveyTemplate, SurveyVersion
from surveys.nightly import surveys_nightly
from tests.factories import CustomerFactory, OrderFactory

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def at(day: date, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=SHANGHAI)


class Clock:
    """timezone.now() for the services (model defaults keep the real time; services set their own)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = at(date(2026, 9, 20), 2)
        monkeypatch.setattr(timezone, "now", lambda: self.now)

    def set(self, moment: datetime) -> None:
        self.now = moment

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):  # type: ignore[no-untyped-def]
    return Clock(monkeypatch)


@pytest.fixture
def dealer(dealer_b):  # type: ignore[no-untyped-def]
    """One dealership is enough for most tests (cheaper); the cross-dealership ones take both."""
    return dealer_b


@pytest.fixture
def anon() -> Client:
    """A customer's browser: nobody signed in."""
    return Client()


# --- helpers -------------------------------------------------------------------------------------------


def templates() -> dict[str, SurveyTemplate]:
    return {t.code: t for t in services.templates_ensure()}


def configure(**values: Any) -> SurveySettings:
    settings = services.survey_settings()
    SurveySettings.objects.filter(pk=settings.pk).update(**values)
    return SurveySettings.objects.get(pk=settings.pk)


def customer(**values: Any) -> Customer:
    return CustomerFactory(**values)


def invite(actor: Any, who: Customer | None = None, code: str = "service", **extra: Any) -> Invitation:
    return services.invitation_create(actor=actor, customer=who or customer(), template=templates()[code], **extra)


def answers(version: SurveyVersion, *, rating: int = 5, nps: int = 9, text: str = "", **override: Any) -> dict:
    raw: dict[str, Any] = {}
    for q in version.questions.all():
        if q.kind == "rating":
            raw[q.key] = rating
        elif q.kind == "nps":
            raw[q.key] = nps
        elif q.kind == "single":
            raw[q.key] = q.choices[0]
        elif q.kind == "multi":
            raw[q.key] = q.choices[:2]
        elif text:
            raw[q.key] = text
    raw.update(override)
    return raw


def link(invitation: Invitation) -> str:
    return reverse("survey_answer", args=[services.link_token(invitation)])


def links_to(text: str, invitation: Invitation) -> bool:
    """The text carries a working link to this invitation (tokens carry a timestamp: compare contents)."""
    match = re.search(r"(https?://[^/\s]+)/s/([^/\s]+)/", text)
    return (
        bool(match)
        and match[1] == django_settings.CRM_SITE_URL
        and services.read_token(match[2])
        == (
            invitation.tenant_id,
            invitation.pk,
            invitation.nonce,
        )
    )


def invite_message(invitation: Invitation) -> OutboxMessage:
    return OutboxMessage.objects.get(key=f"survey:{invitation.pk}:invite")


def items(response: Any) -> list[dict[str, Any]]:
    data = response.json()
    return data["results"] if isinstance(data, dict) else data


# --- Templates and versions ----------------------------------------------------------------------------


def test_ready_made_templates_cover_the_moments_and_every_question_type(dealer, in_tenant):
    with in_tenant(dealer):
        first = templates()
        assert set(first) == {"sales", "service", "complaint"}
        assert {t.moment for t in first.values()} == {"sales", "service", "complaint"}
        kinds = {q.kind for t in first.values() for q in t.current_version.questions.all()}
        assert kinds == {"rating", "nps", "single", "multi", "text"}
        assert all(t.current_version.number == 1 for t in first.values())
        services.templates_ensure()  # a second call creates nothing
        assert SurveyTemplate.objects.count() == 3 and SurveyVersion.objects.count() == 3


def _inputs(version: SurveyVersion) -> list[services.QuestionInput]:
    return [
        services.QuestionInput(
            key=q.key, kind=q.kind, text=q.text, section=q.section, choices=list(q.choices), required=q.required
        )
        for q in version.questions.all()
    ]


def test_editing_makes_a_new_version_and_earlier_invitations_keep_theirs(dealer, in_tenant, anon):
    with in_tenant(dealer):
        template = templates()["service"]
        v1 = template.current_version
        before = invite(dealer.agent)
        questions = _inputs(v1)
        questions[0].text = "服务顾问是否热情接待？"  # reworded, same key
        questions.append(
            services.QuestionInput(key="wifi", kind="single", text="休息区 Wi-Fi 好用吗？", choices=["好用", "不好用"])
        )
        v2 = services.template_edit(
            actor=dealer.manager, template=template, title="新版服务问卷", intro="", questions=questions
        )
        template.refresh_from_db()
        assert (v2.number, template.current_version_id) == (2, v2.pk)
        assert v2.created_by_id == dealer.manager.pk
        assert next(iter(v1.questions.values_list("text", flat=True))) == "服务顾问的接待与问诊"  # v1 untouched
        after = invite(dealer.agent)
        assert before.version_id == v1.pk and after.version_id == v2.pk
        token_before = services.link_token(before)

    page = anon.get(reverse("survey_answer", args=[token_before]))
    html = page.content.decode()
    assert page.status_code == 200
    assert (
        "服务顾问的接待与问诊" in html and "服务顾问是否热情接待？" not in html and 'data-question="wifi"' not in html
    )

    with in_tenant(dealer):
        response = services.answers_submit(invitation=before, raw=answers(v1, wifi="好用"))
        assert response.version_id == v1.pk
        stored = Answer.objects.filter(response=response).select_related("question")
        assert stored.count() == v1.questions.count() - 1  # the optional comment left empty
        assert {a.question.version_id for a in stored} == {v1.pk}
        assert "wifi" not in {a.question.key for a in stored}
        response2 = services.answers_submit(invitation=after, raw=answers(v2, wifi="不好用"))
        wifi = Answer.objects.get(response=response2, question__key="wifi")
        assert wifi.question.version_id == v2.pk and wifi.choices == ["不好用"]


Q = services.QuestionInput
INVALID_QUESTION_SETS = [
    ([], "at least one question"),
    ([Q(key="overall", kind="rating", text="a"), Q(key="overall", kind="nps", text="b")], "own key"),
    ([Q(key="pick", kind="single", text="选一个", choices=["只有一个", " "])], "two choices"),
    ([Q(key="many", kind="multi", text="多选")], "two choices"),
    ([Q(key="odd", kind="slider", text="x")], "slider"),
    ([Q(key="blank", kind="text", text="  ")], "needs its text"),
    ([Q(key="", kind="text", text="没有 key")], "a key is"),
    ([Q(key="不是slug", kind="text", text="x")], "a key is"),
    ([Q(key="long", kind="text", text="长" * 301)], "at most 300"),
    ([Q(key="choice", kind="single", text="x", choices=["a", "b" * 101])], "100 for a choice"),
]


def test_invalid_question_sets_are_refused_with_field_errors(dealer, in_tenant):
    with in_tenant(dealer), translation.override("en"):
        template = templates()["sales"]
        for questions, message_part in INVALID_QUESTION_SETS:
            with pytest.raises(ApplicationError) as refused:
                services.template_edit(
                    actor=dealer.manager, template=template, title="x", intro="", questions=questions
                )
            assert list(refused.value.fields) == ["questions"]
            assert any(message_part in m for m in refused.value.fields["questions"]), refused.value.fields
        assert template.versions.count() == 1


def test_only_managers_edit_templates(dealer, in_tenant):
    with in_tenant(dealer):
        template = templates()["sales"]
        with pytest.raises(NotAllowed):
            services.template_edit(
                actor=dealer.agent,
                template=template,
                title="x",
                intro="",
                questions=_inputs(template.current_version),
            )


def _formset_post(page: Any) -> dict[str, Any]:
    """What a browser posts for the edit form: every field as rendered (selects on their first option)."""
    version_form, formset = page.context["version_form"], page.context["formset"]
    data: dict[str, Any] = {"title": version_form["title"].value(), "intro": version_form["intro"].value() or ""}
    for name, field in formset.management_form.fields.items():
        data[f"q-{name}"] = formset.management_form[name].value() or field.initial or 0
    for form in formset.forms:
        for name in form.fields:
            bound = form[name]
            value = bound.value()
            if name == "kind":
                value = value or form.fields["kind"].choices[0][0]  # a <select> always posts an option
            if name in ("required", "DELETE"):
                if value:
                    data[bound.html_name] = "on"
                continue
            data[bound.html_name] = "" if value is None else value
    return data


def test_template_pages_and_editing_through_the_page(dealer, in_tenant, web):
    with in_tenant(dealer):
        template = templates()["complaint"]
    manager = web(dealer.manager)
    assert manager.get("/surveys/templates/").status_code == 200
    assert 'data-testid="edit-template"' in manager.get(f"/surveys/templates/{template.pk}/").content.decode()
    page = manager.get(f"/surveys/templates/{template.pk}/edit/")
    assert page.status_code == 200
    data = _formset_post(page)
    data["title"] = "投诉处理回访（第二版）"
    data["q-0-text"] = "您的问题解决了吗？（请选择）"
    saved = manager.post(f"/surveys/templates/{template.pk}/edit/", data)
    assert saved.status_code == 302, saved.context and (
        saved.context["version_form"].errors,
        [f.errors for f in saved.context["formset"].forms],
    )
    with in_tenant(dealer):
        template.refresh_from_db()
        assert template.current_version.number == 2 and template.current_version.title == "投诉处理回访（第二版）"
        assert template.current_version.questions.count() == 5
        assert template.current_version.questions.get(key="resolved").text == "您的问题解决了吗？（请选择）"
    detail = manager.get(f"/surveys/templates/{template.pk}/").content.decode()
    assert 'data-testid="version-1"' in detail and 'data-testid="version-2"' in detail

    # a choice question with one choice: refused with the reason once, and no version made
    data = _formset_post(manager.get(f"/surveys/templates/{template.pk}/edit/"))
    data["q-0-choices"] = "只有一个"
    manager.post("/accounts/language/", {"language": "en", "next": "/"})  # the manager's own choice
    refused = manager.post(f"/surveys/templates/{template.pk}/edit/", data)
    assert refused.status_code == 400
    errors = refused.context["version_form"].non_field_errors()
    assert len(errors) == 1 and "two choices" in errors[0]
    with in_tenant(dealer):
        assert template.versions.count() == 2

    agent = web(dealer.agent)
    assert agent.get(f"/surveys/templates/{template.pk}/").status_code == 200
    assert 'data-testid="edit-template"' not in agent.get(f"/surveys/templates/{template.pk}/").content.decode()
    assert agent.get(f"/surveys/templates/{template.pk}/edit/").status_code == 403
    assert agent.post(f"/surveys/templates/{template.pk}/edit/", data).status_code == 403


# --- Invitations -----------------------------------------------------------------------------------------


def test_the_channel_follows_consent_and_the_preference_order(dealer, in_tenant):
    with in_tenant(dealer):
        configure(channels=["wechat", "sms", "email"])
        both = customer(consent_wechat=True, consent_sms=True)
        chosen = invite(dealer.agent, both)
        assert (chosen.channel, chosen.address) == ("wechat", both.mobile)
        no_wechat = customer(consent_wechat=False, consent_sms=True)
        assert invite(dealer.agent, no_wechat).channel == "sms"
        email_only = customer(consent_wechat=False, consent_sms=False, consent_email=True, email="li.hua@example.com")
        chosen = invite(dealer.agent, email_only)
        assert (chosen.channel, chosen.address) == ("email", "li.hua@example.com")
        configure(channels=["email", "sms"])
        # e-mail first, but without consent to it (or without an address) the next one is used
        no_consent = customer(consent_email=False, email="wang@example.com")
        assert invite(dealer.agent, no_consent).channel == "sms"
        no_address = customer(consent_email=True, email="")
        assert invite(dealer.agent, no_address).channel == "sms"
        configure(channels=[])  # none chosen: sms, wechat, email
        assert invite(dealer.agent, customer(consent_sms=False)).channel == "wechat"


def test_nobody_unreachable_black_listed_or_merged_is_invited_and_nothing_is_written(dealer, in_tenant):
    with in_tenant(dealer):
        configure(channels=["sms", "wechat", "email"])
        invitations, messages = Invitation.objects.count(), OutboxMessage.objects.count()
        unreachable = customer(consent_sms=False, consent_wechat=False, consent_email=True, email="")
        black = customer(list_flag="black", list_reason="恶意投诉")
        survivor = customer()
        merged = customer(merged_into=survivor)
        for who in (unreachable, black, merged):
            with pytest.raises(services.NotInvited):
                invite(dealer.agent, who)
        no_mobile = customer(mobile="", consent_email=False)
        with pytest.raises(services.NotInvited):
            invite(dealer.agent, no_mobile)
        template = templates()["sales"]
        SurveyTemplate.objects.filter(pk=template.pk).update(is_active=False)
        with pytest.raises(services.NotInvited):
            invite(dealer.agent, survivor, code="sales")
        assert (Invitation.objects.count(), OutboxMessage.objects.count()) == (invitations, messages)
        with pytest.raises(NotAllowed):
            invite(dealer.consultant, survivor)


def test_at_most_one_survey_per_customer_every_n_days(dealer, in_tenant, clock):
    with in_tenant(dealer):
        configure(min_days_between=30)
        who = customer()
        first = invite(dealer.agent, who)
        clock.advance(days=29)
        with pytest.raises(services.NotInvited):
            invite(dealer.agent, who, code="sales")
        services.invitation_cancel(actor=dealer.agent, invitation=first)  # a cancelled one does not count
        second = invite(dealer.agent, who, code="sales")
        clock.advance(days=29)
        with pytest.raises(services.NotInvited):
            invite(dealer.agent, who)
        clock.advance(days=2)  # 31 days after the second
        assert invite(dealer.agent, who).pk > second.pk
        # with the cap at 0, back-to-back invitations are fine (even within the same instant)
        configure(min_days_between=0)
        other = customer()
        invite(dealer.agent, other)
        invite(dealer.agent, other)


def test_the_message_is_written_with_the_invitation_and_sent_later(dealer, in_tenant):
    with in_tenant(dealer):
        configure(channels=["email"])
        who = customer(consent_email=True, email="zhou@example.com", name="周先生")
        invitation = invite(dealer.agent, who)
        message = invite_message(invitation)
        assert (message.channel, message.to, message.status) == ("email", "zhou@example.com", "pending")
        assert links_to(message.body, invitation) and "周先生" in message.body
        assert message.purpose == f"survey:{invitation.pk}"
        assert invitation.status == Invitation.Status.SCHEDULED and invitation.sent_at is None
        assert invitation.expires_at - invitation.send_after == timedelta(days=14)
    assert mail.outbox == []  # nothing leaves inside the request
    assert outbox_send_due(tenant_id=dealer.tenant.pk) == {"sent": 1, "retry": 0, "failed": 0}
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["zhou@example.com"] and links_to(mail.outbox[0].body, invitation)
    assert dealer.tenant.name in mail.outbox[0].subject
    with in_tenant(dealer):
        invitation.refresh_from_db()
        assert invitation.status == Invitation.Status.SENT and invitation.sent_at is not None
        assert invite_message(invitation).status == "sent"
    assert outbox_send_due(tenant_id=dealer.tenant.pk) == {"sent": 0, "retry": 0, "failed": 0}
    assert len(mail.outbox) == 1  # never twice


def test_the_message_is_written_in_the_dealerships_language(dealer, in_tenant, monkeypatch):
    """Whoever triggers it (an English-speaking agent, the nightly job), the text is in the dealership's
    language."""
    seen: list[str | None] = []
    real = services._

    def spy(text: str) -> str:
        seen.append(translation.get_language())
        return real(text)

    with in_tenant(dealer):
        invitation = invite(dealer.agent)
        monkeypatch.setattr(services, "_", spy)
        with translation.override("en"):
            subject, _body = services._message(invitation, reminder=False)
    assert seen and set(seen) == {"zh-hans"}
    assert dealer.tenant.name in subject


# --- Links -------------------------------------------------------------------------------------------------


def _problem(response: Any, status: int, reason: str) -> None:
    assert response.status_code == status, response.status_code
    assert f'data-testid="link-{reason}"' in response.content.decode()


def test_a_tampered_or_forged_link_is_not_valid(dealer_a, dealer_b, in_tenant, anon):
    with in_tenant(dealer_a):
        invitation = invite(dealer_a.agent)
        token = services.link_token(invitation)
    assert anon.get(link(invitation)).status_code == 200
    body, signature = token.rsplit(":", 1)
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    _problem(anon.get(reverse("survey_answer", args=[f"{body}:{flipped}"])), 404, "invalid")
    _problem(anon.get(reverse("survey_answer", args=["not-a-token"])), 404, "invalid")
    _problem(anon.get(reverse("survey_thanks", args=[f"{body}:{flipped}"])), 404, "invalid")
    # signed with another salt (another feature's token), or signed correctly with a wrong nonce
    other_salt = signing.dumps({"t": dealer_a.tenant.pk, "i": invitation.pk, "n": invitation.nonce}, salt="x")
    _problem(anon.get(reverse("survey_answer", args=[other_salt])), 404, "invalid")
    guessed = signing.dumps({"t": dealer_a.tenant.pk, "i": invitation.pk, "n": "guess"}, salt=services.LINK_SALT)
    _problem(anon.get(reverse("survey_answer", args=[guessed])), 404, "invalid")
    incomplete = signing.dumps({"t": dealer_a.tenant.pk, "i": invitation.pk}, salt=services.LINK_SALT)
    _problem(anon.get(reverse("survey_answer", args=[incomplete])), 404, "invalid")
    # another dealership's id with this invitation's id and nonce: row-level security finds nothing
    crossed = signing.dumps(
        {"t": dealer_b.tenant.pk, "i": invitation.pk, "n": invitation.nonce}, salt=services.LINK_SALT
    )
    page = anon.get(reverse("survey_answer", args=[crossed]))
    _problem(page, 404, "invalid")
    assert dealer_a.objects["customer"].name not in page.content.decode()
    # a posted answer through a bad link stores nothing
    _problem(anon.post(reverse("survey_answer", args=[guessed]), {"overall": "5"}), 404, "invalid")
    # a dealership that was switched off
    Tenant.objects.filter(pk=dealer_a.tenant.pk).update(is_active=False)
    _problem(anon.get(reverse("survey_answer", args=[token])), 404, "invalid")
    with in_tenant(dealer_a):
        assert not Response.objects.filter(invitation=invitation).exists()
        invitation.refresh_from_db()
        assert invitation.opened_at is not None and invitation.draft == {}


def test_an_expired_link_gets_the_expired_page(dealer, in_tenant, anon, clock):
    with in_tenant(dealer):
        invitation = invite(dealer.agent)
        url = link(invitation)
    clock.set(invitation.expires_at - timedelta(minutes=1))
    assert anon.get(url).status_code == 200
    clock.set(invitation.expires_at)
    _problem(anon.get(url), 410, "expired")
    _problem(anon.post(url, {"action": "save", "overall": "4"}), 410, "expired")
    clock.set(invitation.send_after)  # expired by the nightly step even before its date
    with in_tenant(dealer):
        Invitation.objects.filter(pk=invitation.pk).update(status=Invitation.Status.EXPIRED)
    _problem(anon.get(url), 410, "expired")
    with in_tenant(dealer):
        with pytest.raises(services.LinkProblem) as problem:
            services.answers_submit(invitation=invitation, raw=answers(invitation.version))
        assert problem.value.reason == "expired"
        assert not Response.objects.filter(invitation=invitation).exists()


def test_a_cancelled_link_is_closed_and_its_messages_are_not_sent(dealer, in_tenant, anon):
    with in_tenant(dealer):
        invitation = invite(dealer.agent)
        services.invitation_cancel(actor=dealer.agent, invitation=invitation)
        assert invite_message(invitation).status == "cancelled"
    _problem(anon.get(link(invitation)), 410, "cancelled")
    assert outbox_send_due(tenant_id=dealer.tenant.pk)["sent"] == 0


def test_the_answer_page_shows_this_invitation_and_nothing_else(dealer_a, dealer_b, in_tenant, anon):
    with in_tenant(dealer_a):
        who = customer(name="孙丽华")
        neighbour = customer(name="隔壁客户钱多多")
        invite(dealer_a.agent, neighbour)
        invitation = invite(dealer_a.agent, who, code="sales")
        keys = list(invitation.version.questions.values_list("key", flat=True))
    page = anon.get(link(invitation), HTTP_ACCEPT_LANGUAGE="en")
    html = page.content.decode()
    assert page.status_code == 200
    assert page["Cache-Control"].startswith("max-age=0") or "no-cache" in page["Cache-Control"]
    assert 'lang="zh-hans"' in html  # the dealership's language, whatever the browser asks for
    assert "孙丽华" in html and dealer_a.tenant.name in html
    assert page.context["version"].pk == invitation.version_id
    shown = [item["q"].key for s in page.context["sections"] for item in s["questions"]]
    assert shown == keys
    for key in keys:
        assert f'data-question="{key}"' in html
    assert html.count("<fieldset") == len(keys) and html.count("<legend>") == len(keys)
    assert 'name="overall" value="5"' in html and 'name="nps" value="10"' in html
    for secret in [neighbour.name, neighbour.mobile, who.mobile, *dealer_a.secrets, *dealer_b.secrets]:
        assert secret not in html, secret
    # a visitor who chose English keeps it
    anon.cookies["django_language"] = "en"
    assert 'lang="en"' in anon.get(link(invitation)).content.decode()
    with in_tenant(dealer_a):
        invitation.refresh_from_db()
        assert invitation.opened_at is not None


def test_partial_answers_are_kept_across_visits(dealer, in_tenant, anon):
    with in_tenant(dealer):
        invitation = invite(dealer.agent)
    url = link(invitation)
    saved = anon.post(
        url, {"action": "save", "reception": "4", "nps": "8", "improve": ["价格", "预约"], "comment": " 很好 "}
    )
    assert saved.status_code == 200 and 'data-testid="saved"' in saved.content.decode()
    with in_tenant(dealer):
        invitation.refresh_from_db()
        assert invitation.draft == {"reception": 4, "nps": 8, "improve": ["价格", "预约"], "comment": "很好"}
        assert not Response.objects.filter(invitation=invitation).exists()
    again = Client().get(url).content.decode()  # another visit, another browser
    assert 'name="reception" value="4" checked' in again and 'name="nps" value="8" checked' in again
    assert 'value="价格" checked' in again and 'value="预约" checked' in again and 'value="沟通" checked' not in again
    assert ">很好</textarea>" in again
    # an invalid value is pointed at; the valid ones are still kept
    bad = anon.post(url, {"action": "save", "reception": "9", "price": "2"})
    assert bad.status_code == 400 and 'data-question="reception"' in bad.content.decode()
    assert bad.context["errors"].keys() == {"reception"}
    with in_tenant(dealer):
        invitation.refresh_from_db()
        assert invitation.draft == {"price": 2}


def test_a_missing_required_answer_is_highlighted_and_nothing_is_stored(dealer, in_tenant, anon):
    with in_tenant(dealer):
        invitation = invite(dealer.agent)
        raw = answers(invitation.version, rating=4, nps=7)
    del raw["timeliness"]
    raw["nps"] = "11"  # out of range
    page = anon.post(link(invitation), {**raw, "action": "submit"})
    html = page.content.decode()
    assert page.status_code == 400
    assert set(page.context["errors"]) == {"timeliness", "nps"}
    assert 'class="question field-error" data-question="timeliness"' in html
    assert 'class="question field-error" data-question="nps"' in html
    assert 'class="question" data-question="reception"' in html
    assert 'aria-describedby="error-timeliness"' in html and 'id="error-timeliness"' in html
    assert 'name="reception" value="4" checked' in html  # what was answered stays on the page
    with in_tenant(dealer):
        assert not Response.objects.filter(invitation=invitation).exists()
        assert not Answer.objects.filter(response__invitation=invitation).exists()
        invitation.refresh_from_db()
        assert invitation.status == Invitation.Status.SCHEDULED and invitation.answered_at is None
        assert invitation.draft["reception"] == 4 and "timeliness" not in invitation.draft  # kept for later


def test_one_submission_per_link(dealer, in_tenant, anon):
    with in_tenant(dealer):
        invitation = invite(dealer.agent)
        raw = answers(invitation.version, rating=4, nps=10, text="师傅很专业")
    url = link(invitation)
    anon.post(url, {"action": "save", "reception": "3"})
    done = anon.post(url, {**raw, "action": "submit"})
    token = url.split("/")[2]  # tokens carry a timestamp: the thanks page gets the very same one
    assert done.status_code == 302 and done["Location"] == reverse("survey_thanks", args=[token])
    thanks = anon.get(done["Location"], HTTP_ACCEPT_LANGUAGE="en")
    assert thanks.status_code == 200 and 'data-testid="survey-thanks"' in thanks.content.decode()
    assert 'lang="zh-hans"' in thanks.content.decode()  # like the answer page: the dealership's language
    with in_tenant(dealer):
        response = Response.objects.get(invitation=invitation)
        assert (response.overall, response.nps, response.low_score) == (4, 10, False)
        assert response.customer_id == invitation.customer_id and response.version_id == invitation.version_id
        answers_by_key = {a.question.key: a for a in response.answers.select_related("question")}
        assert answers_by_key["reception"].number == 4 and answers_by_key["comment"].text == "师傅很专业"
        assert answers_by_key["improve"].choices == ["等待时间", "价格"]
        invitation.refresh_from_db()
        assert invitation.status == Invitation.Status.ANSWERED and invitation.answered_at is not None
        assert invitation.draft == {}
        assert invite_message(invitation).status == "cancelled"  # not sent yet: no point any more
    # the same link again: the answered page, for a reload, a second submission and a save
    _problem(anon.get(url), 410, "answered")
    _problem(anon.post(url, {**raw, "action": "submit"}), 410, "answered")
    _problem(Client().post(url, {"action": "save", "reception": "1"}), 410, "answered")
    with in_tenant(dealer):
        with pytest.raises(services.LinkProblem) as problem:
            services.answers_submit(invitation=invitation, raw=raw)
        assert problem.value.reason == "answered"
        assert Response.objects.filter(invitation=invitation).count() == 1
        # and the database itself refuses a second response
        with pytest.raises(IntegrityError), transaction.atomic():
            Response.objects.create(invitation=invitation, version=invitation.version, customer=invitation.customer)


@pytest.mark.django_db(transaction=True)
def test_two_submissions_at_the_same_moment_make_one_response(dealer_b, monkeypatch):
    """Two requests, each on its own database connection, both past the link check before either
    stores anything: the row lock and the unique response leave exactly one."""
    with tenant_context(dealer_b.tenant.pk):
        invitation = invite(dealer_b.agent)
        raw = {**answers(invitation.version, rating=5, nps=10), "action": "submit"}
    url = link(invitation)
    both_checked = threading.Barrier(2, timeout=20)
    real_check = public_views.invitation_for_answer

    def check_then_wait(*args: Any, **kwargs: Any) -> Invitation:
        found = real_check(*args, **kwargs)
        both_checked.wait()
        return found

    monkeypatch.setattr(public_views, "invitation_for_answer", check_then_wait)
    statuses: list[int] = []
    failures: list[BaseException] = []

    def submit() -> None:
        try:
            statuses.append(Client().post(url, raw).status_code)
        except BaseException as error:  # noqa: BLE001 - reported below, in the test's own thread
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures and sorted(statuses) == [302, 410], (statuses, failures)
    with tenant_context(dealer_b.tenant.pk):
        assert Response.objects.filter(invitation=invitation).count() == 1
        assert Answer.objects.filter(response__invitation=invitation).count() == len(
            [v for k, v in raw.items() if k != "action"]
        )
        assert Invitation.objects.get(pk=invitation.pk).status == Invitation.Status.ANSWERED
    # the committed rows go with the transactional test's flush


# --- The outbox and its channels ---------------------------------------------------------------------


class _GatewayHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.received.append({"auth": self.headers.get("Authorization"), "body": body})  # type: ignore[attr-defined]
        self.send_response(self.server.answer)  # type: ignore[attr-defined]
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[ThreadingHTTPServer]:
    """A tiny SMS/WeChat gateway on localhost: records what it receives, answers `server.answer`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GatewayHandler)
    server.received = []  # type: ignore[attr-defined]
    server.answer = 200  # type: ignore[attr-defined]
    server.url = f"http://127.0.0.1:{server.server_address[1]}/send"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_sms_without_a_gateway_waits_and_goes_out_once_configured(dealer, in_tenant, settings, gateway, clock):
    settings.SMS_GATEWAY_URL = None
    with in_tenant(dealer):
        invitation = invite(dealer.agent, customer(name="钱女士"))
    assert outbox_send_due(tenant_id=dealer.tenant.pk) == {"sent": 0, "retry": 1, "failed": 0}
    with in_tenant(dealer):
        message = invite_message(invitation)
        assert (message.status, message.attempts) == ("pending", 1)
        assert "not configured" in message.last_error and message.next_attempt_at == clock.now + timedelta(minutes=1)
        assert Invitation.objects.get(pk=invitation.pk).status == Invitation.Status.SCHEDULED
    # not due yet: nothing is tried
    assert outbox_send_due(tenant_id=dealer.tenant.pk) == {"sent": 0, "retry": 0, "failed": 0}
    # still unconfigured much later: it keeps waiting, it is never failed
    for _ in range(8):
        clock.advance(days=1)
        assert outbox_send_due(tenant_id=dealer.tenant.pk)["failed"] == 0
    settings.SMS_GATEWAY_URL, settings.SMS_GATEWAY_TOKEN = gateway.url, "sms-secret"
    clock.advance(days=1)
    assert outbox_send_due(tenant_id=dealer.tenant.pk) == {"sent": 1, "retry": 0, "failed": 0}
    assert len(gateway.received) == 1
    received = gateway.received[0]
    assert received["auth"] == "Bearer sms-secret"
    assert received["body"]["to"] == invitation.address and set(received["body"]) == {"to", "subject", "text"}
    assert links_to(received["body"]["text"], invitation) and "钱女士" in received["body"]["text"]
    with in_tenant(dealer):
        invitation.refresh_from_db()
        assert invitation.status == Invitation.Status.SENT and invitation.sent_at == clock.now
        assert invite_message(invitation).last_error == ""


def test_wechat_goes_through_its_own_gateway(dealer, in_tenant, settings, gateway):
    settings.WECHAT_GATEWAY_URL, settings.WECHAT_GATEWAY_TOKEN = gateway.url, None
    with in_tenant(dealer):
        configure(channels=["wechat"])
        invitation = invite(dealer.agent)
    assert outbox_send_due(tenant_id=dealer.tenant.pk)["sent"] == 1
    assert gateway.received[0]["auth"] is None and gateway.received[0]["body"]["to"] == invitation.address


def test_a_refusal_by_the_gateway_fails_for_good_and_marks_the_invitation(dealer, in_tenant, settings, gateway):
    settings.SMS_GATEWAY_URL = gateway.url
    gateway.answer = 400
    with in_tenant(dealer):
        invitation = invite(dealer.agent)
    assert outbox_send_due(tenant_id=dealer.tenant.pk) == {"sent": 0, "retry": 0, "failed": 1}
    with in_tenant(dealer):
        message = invite_message(invitation)
        assert (message.status, message.attempts) == ("failed", 1) and "400" in message.last_error
        assert Invitation.objects.get(pk=invitation.pk).status == Invitation.Status.FAILED
    gateway.answer = 200
    assert outbox_send_due(tenant_id=dealer.tenant.pk, now=timezone.now() + timedelta(days=1))["sent"] == 0
    assert len(gateway.received) == 1
    with in_tenant(dealer):  # a failed invitation does not count for the frequency cap
        configure(min_days_between=30)
        assert invite(dealer.agent, invitation.customer).pk != invitation.pk


def test_a_gateway_that_is_down_is_retried_then_given_up(dealer, in_tenant, settings, gateway, clock):
    settings.SMS_GATEWAY_URL = gateway.url
    gateway.answer = 503
    with in_tenant(dealer):
        invitation = invite(dealer.agent)
    outcomes = []
    for _ in range(7):
        outcomes.append(outbox_send_due(tenant_id=dealer.tenant.pk))
        clock.advance(days=1)
    assert [o["retry"] for o in outcomes] == [1, 1, 1, 1, 1, 1, 0] and outcomes[-1]["failed"] == 1
    assert len(gateway.received) == 7
    with in_tenant(dealer):
        assert invite_message(invitation).status == "failed"
        assert Invitation.objects.get(pk=invitation.pk).status == Invitation.Status.FAILED

    # one that comes back in time is sent, and only once
    with in_tenant(dealer):
        second = invite(dealer.agent)
    assert outbox_send_due(tenant_id=dealer.tenant.pk)["retry"] == 1
    gateway.answer = 202
    clock.advance(minutes=1)
    assert outbox_send_due(tenant_id=dealer.tenant.pk)["sent"] == 1
    with in_tenant(dealer):
        assert Invitation.objects.get(pk=second.pk).status == Invitation.Status.SENT


# --- The nightly triggers, reminders and expiry ------------------------------------------------------------


def _order(kind: str, on: date, *, staff: Any = None, status: str = "completed", **who: Any) -> Order:
    return OrderFactory(
        customer=customer(consent_email=True, email=f"o{on:%m%d}{kind[:3]}@example.com", **who),
        kind=kind,
        ordered_on=on,
        status=status,
        staff=staff,
    )


def test_the_nightly_schedule_invites_after_deliveries_and_service_visits(dealer, in_tenant, clock):
    run = date(2026, 9, 20)
    clock.set(at(run, 2))
    with in_tenant(dealer):
        configure(channels=["email"], sales_delay_days=3, service_delay_days=1, min_days_between=0)
        sale = "vehicle_sale"
        due_sale = _order(sale, run - timedelta(days=3), staff=dealer.consultant)
        caught_up_sale = _order(sale, run - timedelta(days=9), staff=dealer.consultant2)
        _order(sale, run - timedelta(days=10))  # missed more than a week ago: too late
        tomorrow_sale = _order(sale, run - timedelta(days=2), staff=dealer.consultant)
        _order(sale, run - timedelta(days=3), status="open")
        _order(sale, run - timedelta(days=3), status="reversed")
        due_service = _order("maintenance", run - timedelta(days=1), staff=dealer.advisor)
        repair = _order("repair", run - timedelta(days=4), staff=dealer.advisor)
        _order("parts", run - timedelta(days=1))
        _order("insurance", run - timedelta(days=1))
        _order("maintenance", run - timedelta(days=1), list_flag="black", list_reason="恶意")
        _order("maintenance", run, staff=dealer.advisor)  # today's: tomorrow night

        counts = services.surveys_schedule(run_date=run)
        assert counts == {"invited": 4, "skipped": 1, "reminded": 0, "expired": 0}
        made = {i.order_id: i for i in Invitation.objects.filter(order__isnull=False)}
        assert set(made) == {due_sale.pk, caught_up_sale.pk, due_service.pk, repair.pk}
        assert made[due_sale.pk].trigger == "delivery" and made[due_sale.pk].staff_id == dealer.consultant.pk
        assert made[caught_up_sale.pk].staff_id == dealer.consultant2.pk
        assert made[due_service.pk].trigger == "service" and made[due_service.pk].staff_id == dealer.advisor.pk
        assert made[due_sale.pk].version.template.code == "sales"
        assert made[repair.pk].version.template.code == "service"
        assert all(i.customer_id == Order.objects.get(pk=o).customer_id for o, i in made.items())
        assert (
            OutboxMessage.objects.filter(
                key__endswith=":invite", purpose__in=[f"survey:{i.pk}" for i in made.values()]
            ).count()
            == 4
        )

        # idempotent: the same night again (a retried job) invites nobody new
        assert services.surveys_schedule(run_date=run)["invited"] == 0
        assert Invitation.objects.filter(order__isnull=False).count() == 4

        # the next night: yesterday's "tomorrow" sale is due now
        clock.set(at(run + timedelta(days=1), 2))
        assert services.surveys_schedule(run_date=run + timedelta(days=1))["invited"] == 2  # + today's service
        assert Invitation.objects.filter(order=tomorrow_sale).count() == 1

        # a dealership that turns a trigger off, or sets a longer delay
        configure(sales_enabled=False, service_delay_days=5)
        late_sale = _order("vehicle_sale", run - timedelta(days=2))
        late_service = _order("maintenance", run - timedelta(days=1), staff=dealer.advisor)
        for day in (2, 3):
            clock.set(at(run + timedelta(days=day), 2))
            assert services.surveys_schedule(run_date=run + timedelta(days=day))["invited"] == 0
        # the nightly step (as the pipeline runs it) reports what it did
        clock.set(at(run + timedelta(days=4), 2))
        assert surveys_nightly(tenant_id=dealer.tenant.pk, run_date=run + timedelta(days=4)) == 1
        assert Invitation.objects.get(order=late_service).staff_id == dealer.advisor.pk
        assert not Invitation.objects.filter(order=late_sale).exists()


def test_reminders_go_once_after_n_days_and_links_expire(dealer, in_tenant, clock, anon):
    start = date(2026, 9, 20)
    clock.set(at(start, 2))
    with in_tenant(dealer):
        configure(channels=["email"], reminder_after_days=3, expiry_days=14, min_days_between=0)
        invitations = [invite(dealer.agent, customer(consent_email=True, email=f"r{n}@example.com")) for n in range(3)]
    clock.set(at(start, 9))
    assert outbox_send_due(tenant_id=dealer.tenant.pk)["sent"] == 3
    assert len(mail.outbox) == 3
    answered, unanswered = invitations[0], invitations[1:]
    with in_tenant(dealer):
        services.answers_submit(invitation=answered, raw=answers(answered.version))
        clock.set(at(start + timedelta(days=3), 2))  # 3 days minus 7 hours after sending: not yet
        assert services.surveys_schedule(run_date=start + timedelta(days=3))["reminded"] == 0
        clock.set(at(start + timedelta(days=4), 2))
        assert services.surveys_schedule(run_date=start + timedelta(days=4))["reminded"] == 2
        reminders = OutboxMessage.objects.filter(key__endswith=":remind")
        assert sorted(m.purpose for m in reminders) == sorted(f"survey:{i.pk}" for i in unanswered)
        assert all(links_to(m.body, Invitation.objects.get(pk=int(m.purpose[7:]))) for m in reminders)
        # the next night, before the reminders went out: no second reminder
        clock.set(at(start + timedelta(days=5), 2))
        assert services.surveys_schedule(run_date=start + timedelta(days=5))["reminded"] == 0
    assert outbox_send_due(tenant_id=dealer.tenant.pk)["sent"] == 2
    assert len(mail.outbox) == 5
    with in_tenant(dealer):
        for invitation in unanswered:
            invitation.refresh_from_db()
            assert invitation.reminded_at == clock.now and invitation.status == Invitation.Status.SENT
        clock.set(at(start + timedelta(days=6), 2))
        assert services.surveys_schedule(run_date=start + timedelta(days=6))["reminded"] == 0
        assert OutboxMessage.objects.filter(key__endswith=":remind").count() == 2

        clock.set(invitations[1].expires_at + timedelta(hours=1))
        counts = services.surveys_schedule(run_date=clock.now.date())
        assert counts["expired"] == 2 and counts["reminded"] == 0
        statuses = dict(Invitation.objects.filter(pk__in=[i.pk for i in invitations]).values_list("pk", "status"))
        assert statuses == {answered.pk: "answered", invitations[1].pk: "expired", invitations[2].pk: "expired"}
    _problem(anon.get(link(invitations[1])), 410, "expired")
    _problem(anon.get(link(answered)), 410, "answered")


def test_an_invitation_that_expires_unsent_is_never_sent(dealer, in_tenant, clock, settings, gateway):
    settings.SMS_GATEWAY_URL = None
    with in_tenant(dealer):
        invitation = invite(dealer.agent)
    outbox_send_due(tenant_id=dealer.tenant.pk)  # the gateway is not configured: it waits
    clock.set(invitation.expires_at + timedelta(hours=1))
    with in_tenant(dealer):
        assert services.surveys_schedule(run_date=clock.now.date())["expired"] == 1
        assert invite_message(invitation).status == "cancelled"
    settings.SMS_GATEWAY_URL = gateway.url
    assert outbox_send_due(tenant_id=dealer.tenant.pk)["sent"] == 0
    assert gateway.received == []


# --- The complaint-closed hook -------------------------------------------------------------------------------


def _close(ticket: Ticket, actor: Any) -> Ticket:
    for step in ("listen", "calm", "handle"):
        ticket = complaints.ticket_advance(actor=actor, ticket=ticket, to_status=step)
    return complaints.ticket_advance(
        actor=actor,
        ticket=ticket,
        to_status="closed",
        closing=complaints.Closing(root_cause="交车遗漏", resolution="上门补装"),
    )


def test_closing_a_complaint_schedules_a_survey_after_the_delay(
    dealer, in_tenant, clock, django_capture_on_commit_callbacks
):
    with in_tenant(dealer):
        configure(channels=["email"], complaint_delay_days=2)
        who = customer(consent_email=True, email="he@example.com")
        ticket = complaints.ticket_open(
            actor=dealer.agent,
            data=complaints.TicketInput(
                contact_name=who.name,
                contact_mobile=who.mobile,
                channel="phone",
                category=complaints.categories_ensure()[0],
                subject="交车时少了脚垫",
                description="说好送的脚垫没有给",
                customer=who,
            ),
        )
    with django_capture_on_commit_callbacks(execute=True), in_tenant(dealer):
        _close(ticket, dealer.agent)
    with in_tenant(dealer):
        invitation = Invitation.objects.get(ticket=ticket)
        assert invitation.trigger == "complaint" and invitation.customer_id == who.pk
        assert invitation.staff_id == dealer.agent.pk and invitation.version.template.code == "complaint"
        assert invitation.send_after == clock.now + timedelta(days=2)
        assert invite_message(invitation).next_attempt_at == invitation.send_after
        # the hook again (a closing replayed): still one invitation
        services.survey_after_complaint(ticket)
        assert Invitation.objects.filter(ticket=ticket).count() == 1
    assert outbox_send_due(tenant_id=dealer.tenant.pk)["sent"] == 0
    clock.advance(days=2)
    assert outbox_send_due(tenant_id=dealer.tenant.pk)["sent"] == 1
    assert mail.outbox[-1].to == ["he@example.com"]

    with in_tenant(dealer):
        configure(complaint_enabled=False)
        other = complaints.ticket_open(
            actor=dealer.agent,
            data=complaints.TicketInput(
                contact_name="无名",
                contact_mobile="13700001111",
                channel="phone",
                category=complaints.categories_ensure()[0],
                subject="x",
                description="y",
                customer=customer(),
            ),
        )
        services.survey_after_complaint(other)
        assert not Invitation.objects.filter(ticket=other).exists()
        configure(complaint_enabled=True)
        other.customer = None  # a caller who is not a known customer
        services.survey_after_complaint(other)
        assert not Invitation.objects.filter(ticket=other).exists()


# --- The closed loop ------------------------------------------------------------------------------------------


def test_a_low_score_opens_a_complaint_ticket_for_a_person(dealer, in_tenant):
    with in_tenant(dealer):
        configure(low_score_action="complaint", low_score_max=2)
        who = customer(name="冯先生", owner=dealer.consultant)
        invitation = invite(dealer.agent, who)
        tickets = Ticket.objects.count()
        response = services.answers_submit(
            invitation=invitation, raw=answers(invitation.version, rating=4, nps=8, price=2, comment="收费不透明")
        )
        assert response.low_score and response.overall == 4
        ticket = Ticket.objects.exclude(pk=dealer.objects["ticket"].pk).get()
        assert Ticket.objects.count() == tickets + 1
        assert (ticket.source, ticket.severity, ticket.customer_id) == ("survey", "high", who.pk)
        assert ticket.contact_mobile == who.mobile and ticket.assignee_id == dealer.consultant.pk
        assert "收费不透明" in ticket.description and templates()["service"].name in ticket.subject

        # a detractor with top ratings is a low score too
        detractor = invite(dealer.agent)
        assert services.answers_submit(invitation=detractor, raw=answers(detractor.version, rating=5, nps=6)).low_score
        assert Ticket.objects.filter(source="survey").count() == 2
        # a passive with average ratings is not
        passive = invite(dealer.agent)
        assert not services.answers_submit(invitation=passive, raw=answers(passive.version, rating=3, nps=7)).low_score
        assert Ticket.objects.filter(source="survey").count() == 2


def test_a_low_score_can_plan_a_follow_up_call_in_the_owners_queue(dealer, in_tenant):
    from followups.models import Followup

    with in_tenant(dealer):
        configure(low_score_action="followup")
        who = customer(owner=dealer.consultant2)
        invitation = invite(dealer.agent, who)
        response = services.answers_submit(invitation=invitation, raw=answers(invitation.version, rating=1, nps=0))
        call = Followup.objects.get(customer=who)
        assert (call.reason, call.source_key, call.assignee_id) == (
            "survey",
            f"survey:{response.pk}",
            dealer.consultant2.pk,
        )
        assert call.scheduled_on == timezone.localdate() and templates()["service"].name in call.note
        assert not Notification.objects.filter(kind="survey_low_score").exists()
        # a customer who may not be called: the managers and the owner are asked instead
        quiet = customer(owner=dealer.consultant2, consent_call=False)
        quiet_invitation = invite(dealer.agent, quiet)
        services.answers_submit(invitation=quiet_invitation, raw=answers(quiet_invitation.version, rating=1, nps=0))
        assert not Followup.objects.filter(customer=quiet).exists()
        assert Notification.objects.filter(kind="survey_low_score", title__contains=quiet.name).exists()


def test_a_low_score_can_ask_for_a_call_back_instead(dealer, in_tenant, web):
    with in_tenant(dealer):
        configure(low_score_action="notify")
        who = customer(owner=dealer.consultant2)
        invitation = invite(dealer.agent, who)
        response = services.answers_submit(invitation=invitation, raw=answers(invitation.version, rating=1, nps=0))
        notes = Notification.objects.filter(kind="survey_low_score")
        assert {n.recipient_id for n in notes} == {dealer.manager.pk, dealer.consultant2.pk}
        assert {n.url for n in notes} == {f"/surveys/responses/{response.pk}/"}
        assert all(who.name in n.title for n in notes)
        assert not Ticket.objects.filter(source="survey").exists()
        # a complaint needs a mobile: without one, the dealership is asked to call back instead
        configure(low_score_action="complaint", channels=["email"])
        no_mobile = customer(mobile="", consent_email=True, email="nm@example.com")
        emailed = invite(dealer.agent, no_mobile)
        services.answers_submit(invitation=emailed, raw=answers(emailed.version, rating=2, nps=9))
        assert Notification.objects.filter(kind="survey_low_score", title__contains=no_mobile.name).exists()
        assert not Ticket.objects.filter(source="survey").exists()
        configure(low_score_action="none", channels=["sms"])
        before = Notification.objects.filter(kind="survey_low_score").count()
        quiet = invite(dealer.agent)
        services.answers_submit(invitation=quiet, raw=answers(quiet.version, rating=1, nps=0))
        assert Notification.objects.filter(kind="survey_low_score").count() == before
        assert not Ticket.objects.filter(source="survey").exists()
    assert web(dealer.manager).get(f"/surveys/responses/{response.pk}/").status_code == 200


def test_the_overall_rating_is_the_overall_question_else_the_mean(dealer, in_tenant):
    with in_tenant(dealer):
        configure(low_score_action="none")
        service = templates()["service"]
        # a version whose "overall" is a free-text question, and four ratings
        questions = [q for q in _inputs(service.current_version) if q.key not in ("overall", "cleanliness")]
        questions.append(services.QuestionInput(key="overall", kind="text", text="总体评价（文字）", required=False))
        services.template_edit(actor=dealer.manager, template=service, title="t", intro="", questions=questions)
        invitation = invite(dealer.agent)
        raw = answers(invitation.version, rating=4, nps=9, reception=5, overall="挺好")
        assert services.answers_submit(invitation=invitation, raw=raw).overall == 4  # 4.25; the text is no rating
        invitation = invite(dealer.agent)
        raw = answers(invitation.version, rating=3, nps=9, reception=2, repair_quality=2)
        assert services.answers_submit(invitation=invitation, raw=raw).overall == 3  # 2.5, rounded half up
        invitation = invite(dealer.agent)
        raw = answers(invitation.version, rating=4, nps=9, reception=3)
        assert services.answers_submit(invitation=invitation, raw=raw).overall == 4  # 3.75
        # with a rating called "overall", that rating is the overall one
        invitation = invite(dealer.agent, code="sales")
        raw = answers(invitation.version, rating=5, nps=9, overall=3)
        assert services.answers_submit(invitation=invitation, raw=raw).overall == 3


# --- Results --------------------------------------------------------------------------------------------------


def _answered(
    dealer: Any,
    code: str,
    *,
    trigger: str,
    staff: Any,
    who: Customer,
    overall: int,
    nps: int,
    submitted: datetime,
    sent: datetime,
    **ratings: int,
) -> Response:
    invitation = invite(dealer.agent, who, code=code, trigger=trigger, staff=staff)
    raw = answers(invitation.version, rating=overall, nps=nps, **ratings)
    response = services.answers_submit(invitation=invitation, raw=raw)
    Response.objects.filter(pk=response.pk).update(submitted_at=submitted)
    Invitation.objects.filter(pk=invitation.pk).update(sent_at=sent)
    return response


@pytest.fixture
def result_set(dealer, in_tenant):  # type: ignore[no-untyped-def]
    """Four responses in March–April 2026 (Shanghai time), one just after, one invitation unanswered."""
    Tenant.objects.filter(pk=dealer.tenant.pk).update(time_zone="Asia/Shanghai")
    with in_tenant(dealer):
        configure(low_score_action="none", min_days_between=0)
        loyal, new, lost, retained = (customer(name=n) for n in ("甲忠诚", "乙新客", "丙流失", "丁回头"))
        for who, stage in ((loyal, "loyal"), (new, "new"), (lost, "lost"), (retained, "retained")):
            Customer.objects.filter(pk=who.pk).update(lifecycle_stage=stage)
        d, s = "delivery", "service"
        _answered(
            dealer,
            "sales",
            trigger=d,
            staff=dealer.consultant,
            who=loyal,
            overall=5,
            nps=10,
            submitted=at(date(2026, 3, 1), 0, 10),
            sent=at(date(2026, 3, 1), 0, 5),
        )
        _answered(
            dealer,
            "service",
            trigger=s,
            staff=dealer.advisor,
            who=lost,
            overall=2,
            nps=3,
            reception=4,
            submitted=at(date(2026, 3, 15)),
            sent=at(date(2026, 3, 14)),
        )
        _answered(
            dealer,
            "service",
            trigger=s,
            staff=dealer.advisor,
            who=retained,
            overall=3,
            nps=9,
            reception=5,
            submitted=at(date(2026, 4, 2)),
            sent=at(date(2026, 4, 1)),
        )
        _answered(
            dealer,
            "sales",
            trigger=d,
            staff=dealer.consultant2,
            who=new,
            overall=4,
            nps=8,
            consultant=5,
            submitted=at(date(2026, 4, 30), 23, 30),
            sent=at(date(2026, 4, 29)),
        )
        # after the period: the loyal customer, now unhappy; not counted anywhere, not in the matrix
        _answered(
            dealer,
            "sales",
            trigger=d,
            staff=dealer.consultant,
            who=loyal,
            overall=1,
            nps=0,
            submitted=at(date(2026, 5, 1), 0, 30),
            sent=at(date(2026, 5, 1), 0, 5),
        )
        unanswered = invite(dealer.agent, customer())
        Invitation.objects.filter(pk=unanswered.pk).update(sent_at=at(date(2026, 4, 10)), status="sent")
    return dealer


def test_results_figures_on_a_fixed_set(result_set, in_tenant):
    with in_tenant(result_set):
        figures = selectors.survey_results(period=selectors.Period(date(2026, 3, 1), date(2026, 4, 30)), zone=SHANGHAI)
    o = figures["overall"]
    assert o["responses"] == 4 and float(o["csat"]) == 0.5 and float(o["overall_avg"]) == 3.5
    assert (o["promoters"], o["detractors"], o["nps_answers"], o["nps"]) == (2, 1, 4, 25)
    assert (o["very_good"], o["good"], o["average"], o["poor"], o["low_scores"]) == (1, 1, 1, 1, 1)
    assert figures["sent"] == 5 and figures["response_rate"] == 0.8
    months = {m["label"]: m for m in figures["by_month"]}
    assert list(months) == ["2026-03", "2026-04"]
    assert (months["2026-03"]["responses"], months["2026-03"]["nps"], float(months["2026-03"]["csat"])) == (2, 0, 0.5)
    assert (months["2026-04"]["responses"], months["2026-04"]["nps"]) == (2, 50)
    consultants = {r["label"]: (r["responses"], float(r["overall_avg"]), r["nps"]) for r in figures["by_consultant"]}
    assert consultants == {
        result_set.consultant.display_name: (1, 5.0, 100),
        result_set.consultant2.display_name: (1, 4.0, 0),
    }
    advisors = {
        r["label"]: (r["responses"], float(r["overall_avg"]), r["nps"], r["low_scores"]) for r in figures["by_advisor"]
    }
    assert advisors == {result_set.advisor.display_name: (2, 2.5, 0, 1)}
    questions = {q["key"]: (q["answers"], float(q["average"])) for q in figures["questions"]}
    assert questions["overall"] == (4, 3.5)  # sales and service alike
    assert questions["reception"] == (2, 4.5) and questions["price"] == (2, 2.5)
    assert questions["consultant"] == (2, 5.0) and questions["showroom"] == (2, 4.5)
    assert "nps" not in questions and "comment" not in questions
    sections = {s["section"]: s["average"] for s in figures["sections"]}
    assert sections["接待"] == 4.5 and sections["总体"] == 3.5 and sections["销售顾问"] == 5.0
    matrix = figures["matrix"]
    cells = {(r["band"], c["loyalty"]): (c["customers"], c["zone"]) for r in matrix["rows"] for c in r["cells"]}
    assert cells[("very_good", "high")] == (1, "apostle")
    assert cells[("good", "medium")] == (1, "indifferent")
    assert cells[("poor", "low")] == (1, "terrorist")
    assert cells[("average", "high")] == (1, "indifferent")
    assert sum(count for count, _zone in cells.values()) == 4
    assert matrix["zones"] == {"apostle": 1, "indifferent": 2, "terrorist": 1}

    with in_tenant(result_set):
        service = selectors.survey_results(
            period=selectors.Period(date(2026, 3, 1), date(2026, 4, 30)), zone=SHANGHAI, template=templates()["service"]
        )
        may = selectors.survey_results(period=selectors.Period(date(2026, 5, 1), date(2026, 5, 31)), zone=SHANGHAI)
    assert service["overall"]["responses"] == 2 and service["overall"]["nps"] == 0
    assert service["sent"] == 3 and service["response_rate"] == pytest.approx(2 / 3)
    assert service["by_consultant"] == [] and len(service["by_advisor"]) == 1
    assert may["overall"]["responses"] == 1 and may["matrix"]["zones"] == {
        "apostle": 0,
        "indifferent": 0,
        "terrorist": 1,
    }


def test_results_page_and_api_show_the_same_figures(result_set, web, api, in_tenant):
    page = web(result_set.manager).get("/surveys/", {"start": "2026-03-01", "end": "2026-04-30"})
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-testid="survey-responses">4<' in html and 'data-testid="survey-nps">25<' in html
    assert 'data-cell="very_good-high">1<' in html and 'data-cell="poor-low">1<' in html
    assert "甲忠诚" in html  # the latest answers list
    wrong = web(result_set.manager).get("/surveys/", {"start": "2026-04-30", "end": "2026-03-01"})
    assert wrong.status_code == 200 and wrong.context["figures"] is None and "end" in wrong.context["form"].errors
    with in_tenant(result_set):
        service = templates()["service"]
    recent = web(result_set.manager).get("/surveys/", {"template": service.pk})  # no period: the last 90 days
    assert recent.context["figures"] is not None and recent.context["form"].cleaned_data["template"] == service
    body = api(result_set.agent).get("/api/v1/surveys/results/", {"start": "2026-03-01", "end": "2026-04-30"}).json()
    assert body["overall"]["responses"] == 4 and body["overall"]["nps"] == 25 and body["response_rate"] == 0.8
    assert body["matrix"]["zones"] == {"apostle": 1, "indifferent": 2, "terrorist": 1}
    service = api(result_set.agent).get(
        "/api/v1/surveys/results/", {"start": "2026-03-01", "end": "2026-04-30", "template": "service"}
    )
    assert service.json()["overall"]["responses"] == 2
    refused = api(result_set.agent).get("/api/v1/surveys/results/", {"start": "2026-04-30", "end": "2026-03-01"})
    assert refused.status_code == 400 and "end" in refused.json()["error"]["fields"]
    unknown = api(result_set.agent).get(
        "/api/v1/surveys/results/", {"start": "2026-03-01", "end": "2026-04-30", "template": "nope"}
    )
    assert unknown.status_code == 400 and "template" in unknown.json()["error"]["fields"]
    assert (
        api(result_set.consultant)
        .get("/api/v1/surveys/results/", {"start": "2026-03-01", "end": "2026-04-30"})
        .status_code
        == 403
    )


# --- Segmentation's lifecycle signal ------------------------------------------------------------------------


def test_a_satisfied_answer_makes_a_new_buyer_satisfied_at_the_next_run(dealer, in_tenant):
    from segmentation.engine import segmentation_recompute

    run = date(2026, 9, 20)
    with in_tenant(dealer):
        configure(low_score_action="none")
        buyer = customer()
        OrderFactory(customer=buyer, kind="vehicle_sale", ordered_on=run - timedelta(days=20), amount=200000)
        segmentation_recompute(run_date=run)
        assert Customer.objects.get(pk=buyer.pk).lifecycle_stage == "new"
        happy = invite(dealer.agent, buyer, code="sales")
        services.answers_submit(invitation=happy, raw=answers(happy.version, rating=5, nps=10))
        assert Customer.objects.get(pk=buyer.pk).lifecycle_stage == "new"  # until the next run
        segmentation_recompute(run_date=run + timedelta(days=1))
        assert Customer.objects.get(pk=buyer.pk).lifecycle_stage == "satisfied"
        # the latest answer decides: an unhappy one takes it back
        unhappy = invite(dealer.agent, buyer, code="sales")
        response = services.answers_submit(invitation=unhappy, raw=answers(unhappy.version, rating=1, nps=2))
        Response.objects.filter(pk=response.pk).update(submitted_at=timezone.now() + timedelta(minutes=1))
        segmentation_recompute(run_date=run + timedelta(days=2))
        assert Customer.objects.get(pk=buyer.pk).lifecycle_stage == "new"


# --- Staff pages ----------------------------------------------------------------------------------------------

ROLES = ("manager", "agent", "auditor", "consultant", "advisor", "admin")


def test_who_may_open_which_survey_page(dealer, in_tenant, web):
    with in_tenant(dealer):
        template = templates()["service"]
        response = dealer.objects["survey_response"]
    may = {
        "/surveys/": {"manager", "agent", "auditor"},
        f"/surveys/responses/{response.pk}/": {"manager", "agent", "auditor"},
        "/surveys/templates/": {"manager", "agent", "auditor"},
        f"/surveys/templates/{template.pk}/": {"manager", "agent", "auditor"},
        f"/surveys/templates/{template.pk}/edit/": {"manager"},
        "/surveys/invitations/": {"manager", "agent", "auditor"},
        "/surveys/settings/": {"manager"},
    }
    for role in ROLES:
        client = web(getattr(dealer, role))
        for path, allowed in may.items():
            status = client.get(path).status_code
            assert status == (200 if role in allowed else 403), (role, path, status)
    anonymous = Client().get("/surveys/")
    assert anonymous.status_code == 302 and "/accounts/sign-in/" in anonymous["Location"]


def test_the_response_page_shows_the_answers(dealer, in_tenant, web):
    with in_tenant(dealer):
        invitation = invite(dealer.agent, customer(name="褚女士"), staff=dealer.advisor)
        response = services.answers_submit(
            invitation=invitation, raw=answers(invitation.version, rating=4, nps=9, comment="洗车很干净")
        )
    html = web(dealer.auditor).get(f"/surveys/responses/{response.pk}/").content.decode()
    assert "褚女士" in html and "洗车很干净" in html and "4 / 5" in html and "9 / 10" in html
    assert dealer.advisor.display_name in html
    assert web(dealer.manager).get("/surveys/responses/999999999/").status_code == 404


def test_invitations_page_filters_and_cancelling(dealer, in_tenant, web):
    with in_tenant(dealer):
        open_one = invite(dealer.agent, customer(name="卫先生"))
        answered = dealer.objects["survey_invitation"]
    manager = web(dealer.manager)
    listing = manager.get("/surveys/invitations/")
    assert {i.pk for i in listing.context["rows"]} >= {open_one.pk, answered.pk}
    assert listing.context["can_send"]
    scheduled = manager.get("/surveys/invitations/", {"status": "scheduled"}).context["rows"]
    assert [i.pk for i in scheduled] == [open_one.pk]
    assert web(dealer.auditor).post(f"/surveys/invitations/{open_one.pk}/cancel/").status_code == 403
    assert not web(dealer.auditor).get("/surveys/invitations/").context["can_send"]
    assert web(dealer.agent).post(f"/surveys/invitations/{open_one.pk}/cancel/").status_code == 302
    refused = web(dealer.agent).post(f"/surveys/invitations/{answered.pk}/cancel/", follow=True)
    assert refused.status_code == 200 and [m.level_tag for m in refused.context["messages"]][-1] == "error"
    with in_tenant(dealer):
        assert Invitation.objects.get(pk=open_one.pk).status == "cancelled"
        assert Invitation.objects.get(pk=answered.pk).status == "answered"
    assert web(dealer.manager).get("/surveys/invitations/", {"page": "x"}).status_code == 200


def test_settings_page_for_managers(dealer, in_tenant, web):
    manager = web(dealer.manager)
    data = {
        "sales_enabled": "on",
        "sales_delay_days": "5",
        "service_enabled": "on",
        "service_delay_days": "2",
        "complaint_delay_days": "3",
        "min_days_between": "45",
        "expiry_days": "10",
        "reminder_after_days": "0",
        "channels": "fax,sms",
        "low_score_action": "notify",
        "low_score_max": "3",
    }
    refused = manager.post("/surveys/settings/", data)
    assert refused.status_code == 400 and "channels" in refused.context["form"].errors
    saved = manager.post("/surveys/settings/", {**data, "channels": "email,sms"})
    assert saved.status_code == 302
    with in_tenant(dealer):
        settings = services.survey_settings()
        assert settings.channels == ["email", "sms"] and settings.min_days_between == 45
        assert not settings.complaint_enabled and settings.low_score_action == "notify"
        assert settings.reminder_after_days == 0
    with in_tenant(dealer), pytest.raises(ApplicationError) as bad:
        services.settings_update(actor=dealer.manager, data={"channels": ["pigeon"]})
    assert "channels" in bad.value.fields
    with in_tenant(dealer), pytest.raises(NotAllowed):
        services.settings_update(actor=dealer.agent, data={"min_days_between": 1})
    assert web(dealer.agent).post("/surveys/settings/", data).status_code == 403


def test_the_customer_page_panel_sends_a_survey(dealer, in_tenant, web):
    with in_tenant(dealer):
        configure(min_days_between=30)
        who = customer(name="蒋先生", owner=dealer.consultant)
        template = templates()["service"]
    agent = web(dealer.agent)
    page = agent.get(f"/customers/{who.pk}/").content.decode()
    assert 'data-testid="survey-panel"' in page and 'data-testid="send-survey"' in page
    assert 'action="/surveys/invitations/send/"' in page
    sent = agent.post("/surveys/invitations/send/", {"customer": who.pk, "template": template.pk}, follow=True)
    assert sent.redirect_chain[-1][0] == f"/customers/{who.pk}/"
    assert next(iter(sent.context["messages"])).level_tag == "success"
    with in_tenant(dealer):
        invitation = Invitation.objects.get(customer=who)
        assert (invitation.trigger, invitation.created_by_id, invitation.version_id) == (
            "manual",
            dealer.agent.pk,
            template.current_version_id,
        )
    panel = next(p for p in agent.get(f"/customers/{who.pk}/").context["panels"] if p["name"] == "surveys")
    assert [i.pk for i, _response in panel["context"]["invitations"]] == [invitation.pk]
    # the frequency cap: refused with the reason, nothing sent
    again = agent.post("/surveys/invitations/send/", {"customer": who.pk, "template": template.pk}, follow=True)
    assert next(iter(again.context["messages"])).level_tag == "error"
    with in_tenant(dealer):
        assert Invitation.objects.filter(customer=who).count() == 1
    # no template chosen, or a customer of another dealership / unknown
    assert agent.post("/surveys/invitations/send/", {"customer": who.pk}).status_code == 302
    unknown = agent.post("/surveys/invitations/send/", {"customer": 999999999, "template": template.pk}, follow=True)
    assert next(iter(unknown.context["messages"])).level_tag == "error"
    # an auditor sees the card without the button; a consultant has no survey card; nobody else may send
    auditor_page = web(dealer.auditor).get(f"/customers/{who.pk}/").content.decode()
    assert 'data-testid="survey-panel"' in auditor_page and 'data-testid="send-survey"' not in auditor_page
    consultant_page = web(dealer.consultant).get(f"/customers/{who.pk}/").content.decode()
    assert 'data-testid="survey-panel"' not in consultant_page
    for role in ("auditor", "consultant", "admin"):
        assert (
            web(getattr(dealer, role))
            .post("/surveys/invitations/send/", {"customer": who.pk, "template": template.pk})
            .status_code
            == 403
        )
    assert agent.get("/surveys/invitations/send/").status_code == 405


def test_a_new_dealership_can_send_from_the_customer_page_on_day_one(db, web):
    from crm.tenancy.roles import Role
    from tests.factories import MembershipFactory, TenantFactory

    tenant = TenantFactory()
    with tenant_context(tenant.pk):
        agent = MembershipFactory(role=Role.CR_AGENT)
        who = customer()
        assert not SurveyTemplate.objects.exists()
    page = web(agent).get(f"/customers/{who.pk}/").content.decode()
    assert 'data-testid="send-survey"' in page
    with tenant_context(tenant.pk):
        assert SurveyTemplate.objects.count() == 3


# --- API ------------------------------------------------------------------------------------------------------


def test_api_templates_and_permissions(dealer, in_tenant, api):
    listed = api(dealer.auditor).get("/api/v1/surveys/templates/")
    assert listed.status_code == 200
    by_code = {t["code"]: t for t in items(listed)}
    assert set(by_code) == {"sales", "service", "complaint"}
    service = by_code["service"]["current_version"]
    assert service["number"] == 1 and [q["key"] for q in service["questions"]][:2] == ["reception", "repair_quality"]
    one = api(dealer.auditor).get(f"/api/v1/surveys/templates/{by_code['sales']['id']}/")
    assert one.status_code == 200 and one.json()["moment"] == "sales"
    for role in ("consultant", "advisor", "admin"):
        assert api(getattr(dealer, role)).get("/api/v1/surveys/templates/").status_code == 403
    assert api(dealer.manager).post("/api/v1/surveys/templates/", {}, format="json").status_code == 405


def test_api_invitations_send_list_and_cancel(dealer_a, dealer_b, in_tenant, api):
    with in_tenant(dealer_a):
        configure(min_days_between=30)
        who = customer(name="沈女士")
    agent = api(dealer_a.agent)
    created = agent.post("/api/v1/surveys/invitations/", {"customer": who.pk, "template": "service"}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["customer"], body["status"], body["trigger"], body["channel"]) == (
        who.pk,
        "scheduled",
        "manual",
        "sms",
    )
    assert "address" not in body and "nonce" not in body
    again = agent.post("/api/v1/surveys/invitations/", {"customer": who.pk, "template": "sales"}, format="json")
    assert again.status_code == 400 and again.json()["error"]["code"] == "not_invited"
    unknown = agent.post("/api/v1/surveys/invitations/", {"customer": who.pk, "template": "nope"}, format="json")
    assert unknown.status_code == 400 and "template" in unknown.json()["error"]["fields"]
    foreign = dealer_b.objects["customer"].pk
    other = agent.post("/api/v1/surveys/invitations/", {"customer": foreign, "template": "service"}, format="json")
    assert other.status_code == 400 and "customer" in other.json()["error"]["fields"]
    missing = agent.post("/api/v1/surveys/invitations/", {"template": "service"}, format="json")
    assert missing.status_code == 400 and "customer" in missing.json()["error"]["fields"]
    assert (
        api(dealer_a.auditor)
        .post("/api/v1/surveys/invitations/", {"customer": who.pk, "template": "service"}, format="json")
        .status_code
        == 403
    )

    listed = api(dealer_a.auditor).get("/api/v1/surveys/invitations/", {"customer": who.pk})
    assert [i["id"] for i in items(listed)] == [body["id"]]
    assert [
        i["id"] for i in items(api(dealer_a.auditor).get("/api/v1/surveys/invitations/", {"status": "answered"}))
    ] == [dealer_a.objects["survey_invitation"].pk]
    assert api(dealer_a.auditor).post(f"/api/v1/surveys/invitations/{body['id']}/cancel/").status_code == 403
    cancelled = agent.post(f"/api/v1/surveys/invitations/{body['id']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    answered = agent.post(f"/api/v1/surveys/invitations/{dealer_a.objects['survey_invitation'].pk}/cancel/")
    assert answered.status_code == 400 and answered.json()["error"]["code"] == "not_cancellable"
    assert (
        agent.post(f"/api/v1/surveys/invitations/{dealer_b.objects['survey_invitation'].pk}/cancel/").status_code == 404
    )
    assert api(dealer_a.consultant).get("/api/v1/surveys/invitations/").status_code == 403


def test_api_responses_with_answers_by_key(dealer, in_tenant, api):
    with in_tenant(dealer):
        configure(low_score_action="none")
        invitation = invite(dealer.agent, customer())
        low = services.answers_submit(invitation=invitation, raw=answers(invitation.version, rating=2, nps=1))
    listed = api(dealer.auditor).get("/api/v1/surveys/responses/")
    assert listed.status_code == 200
    rows = items(listed)
    assert {r["id"] for r in rows} == {low.pk, dealer.objects["survey_response"].pk}
    lows = items(api(dealer.auditor).get("/api/v1/surveys/responses/", {"low_score": "true"}))
    assert [r["id"] for r in lows] == [low.pk]
    one = api(dealer.manager).get(f"/api/v1/surveys/responses/{low.pk}/").json()
    assert (one["overall"], one["nps"], one["low_score"], one["invitation"]) == (2, 1, True, invitation.pk)
    by_key = {a["key"]: a for a in one["answers"]}
    assert by_key["reception"]["number"] == 2 and by_key["improve"]["choices"] == ["等待时间", "价格"]
    assert api(dealer.consultant).get("/api/v1/surveys/responses/").status_code == 403


def test_api_keys_need_the_surveys_scopes(dealer, in_tenant, api):
    from crm.tenancy.services import credential_create

    with in_tenant(dealer):
        _reader, read_key = credential_create(
            actor=dealer.admin, kind=ApiCredential.Kind.INTEGRATION, name="问卷只读", scopes=["surveys:read"]
        )
        _writer, write_key = credential_create(
            actor=dealer.admin,
            kind=ApiCredential.Kind.INTEGRATION,
            name="问卷发送",
            scopes=["surveys:read", "surveys:write", "customers:read"],
        )
        who = customer()
    assert api(key=dealer.raw_key).get("/api/v1/surveys/templates/").status_code == 403  # customers/admin only
    assert api(key=read_key).get("/api/v1/surveys/responses/").status_code == 200
    payload = {"customer": who.pk, "template": "service"}
    assert api(key=read_key).post("/api/v1/surveys/invitations/", payload, format="json").status_code == 403
    assert api(key=write_key).post("/api/v1/surveys/invitations/", payload, format="json").status_code == 201


def test_an_adapter_that_crashes_does_not_block_the_outbox(dealer_a, in_tenant, monkeypatch):
    """Any exception from an adapter counts as a failed attempt to retry; the next message still goes."""
    from crm.messaging import channels
    from crm.messaging import services as outbox
    from crm.messaging.models import OutboxMessage

    class Broken:
        def send(self, *, to: str, subject: str, text: str) -> None:
            raise ValueError("bad header")

    real = channels.adapter_for
    monkeypatch.setattr(outbox, "adapter_for", lambda channel: Broken() if channel == "wechat" else real(channel))
    with in_tenant(dealer_a):
        OutboxMessage.objects.all().delete()
        stuck = outbox.outbox_enqueue(channel="wechat", to="+8613800000000", body="x", key="crash-1")
        fine = outbox.outbox_enqueue(channel="email", to="li@example.com", subject="s", body="y", key="crash-2")
    counts = outbox.outbox_send_due(tenant_id=dealer_a.tenant.pk)
    assert counts == {"sent": 1, "retry": 1, "failed": 0}
    with in_tenant(dealer_a):
        stuck.refresh_from_db()
        fine.refresh_from_db()
        assert stuck.status == "pending" and "ValueError" in stuck.last_error and stuck.attempts == 1
        assert fine.status == "sent"
