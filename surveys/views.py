"""Staff pages of surveys: results, templates (editing makes a version), invitations and sending,
one response, settings."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.core.errors import ApplicationError
from crm.core.forms import form_errors_from
from crm.core.paging import page_of
from crm.tenancy.decorators import membership_of, require_capability
from customers.selectors import customer_visible_to
from surveys import selectors, services
from surveys.forms import InvitationFilterForm, QuestionFormSet, ResultsForm, SendForm, SettingsForm, VersionForm
from surveys.models import Invitation, Response, SurveyTemplate

PAGE_SIZE = 50


@require_capability("surveys.view")
def results(request: HttpRequest) -> HttpResponse:
    membership = membership_of(request)
    services.templates_ensure()
    today = timezone.localdate()
    query = request.GET.copy()  # the last 90 days unless a period is chosen (e.g. ?template=3 alone)
    query.setdefault("start", str(today - timedelta(days=89)))
    query.setdefault("end", str(today))
    form = ResultsForm(query)
    figures = None
    if form.is_valid():
        figures = selectors.survey_results(
            period=selectors.Period(form.cleaned_data["start"], form.cleaned_data["end"]),
            zone=membership.tenant.zone,
            template=form.cleaned_data.get("template"),
        )
    recent = list(Response.objects.select_related("customer", "version__template").order_by("-submitted_at")[:20])
    return render(request, "surveys/results.html", {"form": form, "figures": figures, "recent": recent})


@require_capability("surveys.view")
def response_detail(request: HttpRequest, pk: int) -> HttpResponse:
    response = get_object_or_404(Response.objects.select_related("customer", "version__template", "staff__user"), pk=pk)
    return render(
        request, "surveys/response.html", {"response": response, "rows": selectors.response_detail(response=response)}
    )


@require_capability("surveys.view")
def template_list(request: HttpRequest) -> HttpResponse:
    templates = (
        services.templates_ensure()
        if membership_of(request).can("surveys.manage")
        else list(SurveyTemplate.objects.select_related("current_version").order_by("moment", "name"))
    )
    return render(request, "surveys/template_list.html", {"templates": templates})


@require_capability("surveys.view")
def template_detail(request: HttpRequest, pk: int) -> HttpResponse:
    template = get_object_or_404(SurveyTemplate, pk=pk)
    versions = list(template.versions.order_by("-number").prefetch_related("questions"))
    return render(request, "surveys/template_detail.html", {"template": template, "versions": versions})


@require_capability("surveys.manage")
def template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    membership = membership_of(request)
    template = get_object_or_404(SurveyTemplate.objects.select_related("current_version"), pk=pk)
    current = template.current_version
    initial_questions = [
        {
            "key": q.key,
            "section": q.section,
            "kind": q.kind,
            "text": q.text,
            "choices": "\n".join(q.choices),
            "required": q.required,
        }
        for q in (current.questions.all() if current else [])
    ]
    version_form = VersionForm(
        request.POST or None,
        initial={"title": current.title if current else template.name, "intro": current.intro if current else ""},
    )
    formset = QuestionFormSet(request.POST or None, initial=initial_questions, prefix="q")
    if request.method == "POST" and version_form.is_valid() and formset.is_valid():
        questions = [
            services.QuestionInput(
                key=f.cleaned_data["key"],
                section=f.cleaned_data.get("section") or "",
                kind=f.cleaned_data["kind"],
                text=f.cleaned_data["text"],
                choices=f.cleaned_choices(),
                required=bool(f.cleaned_data.get("required")),
            )
            for f in formset.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        try:
            version = services.template_edit(
                actor=membership,
                template=template,
                title=version_form.cleaned_data["title"],
                intro=version_form.cleaned_data.get("intro") or "",
                questions=questions,
            )
        except ApplicationError as error:
            form_errors_from(version_form, error)  # "questions" is no field of it: shown once, on the form
        else:
            messages.success(
                request, _("Saved as version %(n)s. Surveys sent before keep their version.") % {"n": version.number}
            )
            return redirect("surveys:template", template.pk)
    invalid = request.method == "POST"  # a valid one redirected above
    return render(
        request,
        "surveys/template_edit.html",
        {"template": template, "version_form": version_form, "formset": formset},
        status=400 if invalid else 200,
    )


@require_capability("surveys.view")
def invitations(request: HttpRequest) -> HttpResponse:
    form = InvitationFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    page = page_of(
        request,
        selectors.invitation_list(status=data.get("status") or "", template=data.get("template")),
        size=PAGE_SIZE,
    )
    return render(
        request,
        "surveys/invitations.html",
        {
            "form": form,
            "rows": page.items,
            **page.context(),
            "can_send": membership_of(request).can("surveys.send"),
        },
    )


@require_POST
@require_capability("surveys.send")
def send(request: HttpRequest) -> HttpResponse:
    """Send a survey to one customer (from the customer page)."""
    membership = membership_of(request)
    form = SendForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a survey."))
        return redirect("surveys:invitations")
    customer = customer_visible_to(viewer=membership).filter(pk=form.cleaned_data["customer"]).first()
    if customer is None:
        messages.error(request, _("Unknown customer."))
        return redirect("surveys:invitations")
    try:
        services.invitation_create(actor=membership, customer=customer, template=form.cleaned_data["template"])
    except services.NotInvited as reason:
        messages.error(request, _("Not sent: %(reason)s") % {"reason": reason})
    else:
        messages.success(request, _("The survey is on its way to %(name)s.") % {"name": customer.name})
    return redirect("customers:detail", customer.pk)


@require_POST
@require_capability("surveys.send")
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = get_object_or_404(Invitation, pk=pk)
    try:
        services.invitation_cancel(actor=membership_of(request), invitation=invitation)
        messages.success(request, _("Cancelled."))
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect("surveys:invitations")


@require_capability("surveys.manage")
def settings_page(request: HttpRequest) -> HttpResponse:
    membership = membership_of(request)
    instance = services.survey_settings()
    form = SettingsForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        try:
            services.settings_update(actor=membership, data={f: form.cleaned_data[f] for f in form.Meta.fields})
        except ApplicationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect("surveys:settings")
    return render(request, "surveys/settings.html", {"form": form}, status=400 if form.errors else 200)
