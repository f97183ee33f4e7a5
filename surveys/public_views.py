"""The public answer page: /s/<signed token>/. No sign-in, phone first, in the dealership's language
(zh-hans by default). Shows nothing beyond its own invitation: the customer's name and the questions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache

from crm.core.errors import ApplicationError
from crm.tenancy.context import tenant_context
from crm.tenancy.middleware import public_language_activate
from crm.tenancy.models import Tenant
from surveys.models import QuestionKind
from surveys.services import LinkProblem, answers_save_draft, answers_submit, invitation_for_answer, read_token


def _raw_answers(request: HttpRequest, questions: list[Any]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for question in questions:
        if question.kind == QuestionKind.MULTI:
            raw[question.key] = request.POST.getlist(question.key)
        else:
            raw[question.key] = request.POST.get(question.key, "").strip()
    return raw


def _problem(request: HttpRequest, reason: str, tenant: Tenant | None, status: int) -> HttpResponse:
    return render(request, "surveys/public/problem.html", {"reason": reason, "tenant": tenant}, status=status)


def _from_link(request: HttpRequest, token: str) -> tuple[Tenant, int, str] | None:
    """The active dealership, invitation id and nonce a signed link names (None: not valid); the
    page then speaks the dealership's language."""
    try:
        tenant_id, invitation_id, nonce = read_token(token)
    except (signing.BadSignature, ValueError):
        return None
    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    if tenant is None:
        return None
    public_language_activate(request, tenant)
    return tenant, invitation_id, nonce


@never_cache
@login_not_required
def answer(request: HttpRequest, token: str) -> HttpResponse:
    link = _from_link(request, token)
    if link is None:
        return _problem(request, "invalid", None, 404)
    tenant, invitation_id, nonce = link
    with tenant_context(tenant.pk):
        try:
            invitation = invitation_for_answer(invitation_id, nonce)
        except LinkProblem as problem:
            return _problem(request, problem.reason, tenant, 410 if problem.reason != "invalid" else 404)
        questions = list(invitation.version.questions.all())
        values: dict[str, Any] = dict(invitation.draft)
        errors: dict[str, list[str]] = {}
        saved = False
        if request.method == "POST":
            raw = _raw_answers(request, questions)
            values = {k: v for k, v in raw.items() if v not in ("", [])}
            try:
                if request.POST.get("action") == "save":
                    errors = answers_save_draft(invitation=invitation, raw=raw)
                    saved = not errors
                else:
                    answers_submit(invitation=invitation, raw=raw)
                    return redirect("survey_thanks", token=token)
            except LinkProblem as problem:
                return _problem(request, problem.reason, tenant, 410)
            except ApplicationError as error:
                errors = error.fields
        elif invitation.opened_at is None:
            answers_save_draft(invitation=invitation, raw=invitation.draft)  # records the first opening
        sections: list[dict[str, Any]] = []
        for question in questions:
            if not sections or sections[-1]["name"] != question.section:
                sections.append({"name": question.section, "questions": []})
            sections[-1]["questions"].append(
                {"q": question, "value": values.get(question.key), "errors": errors.get(question.key, [])}
            )
        context = {
            "tenant": tenant,
            "invitation": invitation,
            "version": invitation.version,
            "sections": sections,
            "errors": errors,
            "saved": saved,
            "rating_range": range(5, 0, -1),
            "nps_range": range(11),
        }
        return render(request, "surveys/public/answer.html", context, status=400 if errors else 200)


@never_cache
@login_not_required
def thanks(request: HttpRequest, token: str) -> HttpResponse:
    link = _from_link(request, token)
    if link is None:
        return _problem(request, "invalid", None, 404)
    return render(request, "surveys/public/thanks.html", {"tenant": link[0]})
