"""Staff pages of the loyalty programme: members and their card, the ledger, redemption,
referrals, the rewards catalogue, programme settings, and the manager figures."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.core.errors import ApplicationError
from crm.core.forms import form_errors_from
from crm.core.paging import page_of
from crm.tenancy.decorators import membership_of, require_capability
from crm.tenancy.models import Membership
from customers.selectors import customer_visible_to
from loyalty import selectors, services
from loyalty.forms import (
    AdjustForm,
    CancelForm,
    CareTemplateForm,
    EarningRuleForm,
    EnrolForm,
    LedgerFilterForm,
    LevelEditForm,
    LevelForm,
    MemberFilterForm,
    ProgrammeForm,
    RedeemForm,
    RedemptionFilterForm,
    ReferralForm,
    RewardForm,
    SummaryForm,
)
from loyalty.models import CareTemplate, EarningRule, Level, Member, Reward

PAGE_SIZE = 50


def _visible_member(membership: Membership, pk: int) -> Member:
    member = selectors.member_visible_to(viewer=membership).filter(pk=pk).first()
    if member is None:
        raise Http404
    return member


@require_capability("loyalty.view")
def members(request: HttpRequest) -> HttpResponse:
    membership = membership_of(request)
    services.programme()
    form = MemberFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    page = page_of(
        request,
        selectors.member_list(
            viewer=membership, level=data.get("level"), query=data.get("q") or "", sort=data.get("sort") or "-points"
        ),
        size=PAGE_SIZE,
    )
    return render(request, "loyalty/members.html", {"form": form, "rows": page.items, **page.context()})


def _member_page(
    request: HttpRequest,
    member: Member,
    *,
    redeem_form: RedeemForm | None = None,
    adjust_form: AdjustForm | None = None,
    level_form: LevelForm | None = None,
    status: int = 200,
) -> HttpResponse:
    membership = membership_of(request)
    prog = services.programme()
    page = page_of(request, selectors.ledger_list(viewer=membership, member=member), size=PAGE_SIZE)
    soon = timezone.localdate() + timedelta(days=90)
    context: dict[str, Any] = {
        "member": member,
        "programme": prog,
        "value": member.points_balance * prog.point_value,
        "expiring": services.expiring_points(member=member, by=soon),
        "expiring_by": soon,
        "entries": page.items,
        **page.context(),
        "redemptions": list(
            member.redemptions.select_related("reward", "created_by__user").order_by("-created_at")[:20]
        ),
        "referrals": list(member.referrals_made.select_related("referee").order_by("-created_at")[:20]),
        "levels": selectors.level_history(member=member),
        "can_redeem": membership.can("loyalty.redeem"),
        "can_adjust": membership.can("loyalty.adjust"),
        "redeem_form": redeem_form or RedeemForm(initial={"idempotency_key": uuid.uuid4().hex}),
        "adjust_form": adjust_form or AdjustForm(),
        "level_form": level_form or LevelForm(initial={"level": member.level_id, "keep": member.level_locked}),
        "cancel_form": CancelForm(),
    }
    visible = selectors.visible_customer_ids(viewer=membership, ids=[r.referee_id for r in context["referrals"]])
    context["referrals"] = [(r, r.referee_id in visible) for r in context["referrals"]]
    return render(request, "loyalty/member.html", context, status=status)


@require_capability("loyalty.view")
def member_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _member_page(request, _visible_member(membership_of(request), pk))


@require_POST
@require_capability("loyalty.redeem")
def redeem(request: HttpRequest, pk: int) -> HttpResponse:
    membership = membership_of(request)
    member = _visible_member(membership, pk)
    form = RedeemForm(request.POST)
    if form.is_valid():
        try:
            outcome = services.points_redeem(
                actor=membership,
                member=member,
                reward=form.cleaned_data["reward"],
                quantity=form.cleaned_data["quantity"],
                note=form.cleaned_data.get("note") or "",
                idempotency_key=form.cleaned_data["idempotency_key"],
            )
        except ApplicationError as error:
            form_errors_from(form, error)
        else:
            redemption = outcome.redemption
            text = _("Redeemed %(reward)s × %(n)s for %(points)s points. Voucher code: %(code)s") % {
                "reward": redemption.reward.name,
                "n": redemption.quantity,
                "points": redemption.points,
                "code": redemption.voucher_code,
            }
            if outcome.replayed:
                text = _("Already redeemed (the form was sent twice). %(text)s") % {"text": text}
            messages.success(request, text)
            return redirect("loyalty:member", member.pk)
    return _member_page(request, member, redeem_form=form, status=400)


@require_POST
@require_capability("loyalty.adjust")
def adjust(request: HttpRequest, pk: int) -> HttpResponse:
    membership = membership_of(request)
    member = _visible_member(membership, pk)
    form = AdjustForm(request.POST)
    if form.is_valid():
        try:
            services.points_adjust(
                actor=membership, member=member, points=form.cleaned_data["points"], note=form.cleaned_data["note"]
            )
        except ApplicationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, _("Points adjusted."))
            return redirect("loyalty:member", member.pk)
    return _member_page(request, member, adjust_form=form, status=400)


@require_POST
@require_capability("loyalty.adjust")
def set_level(request: HttpRequest, pk: int) -> HttpResponse:
    membership = membership_of(request)
    member = _visible_member(membership, pk)
    form = LevelForm(request.POST)
    if form.is_valid():
        try:
            services.member_set_level(
                actor=membership,
                member=member,
                level=form.cleaned_data.get("level"),
                keep=bool(form.cleaned_data.get("keep")),
                note=form.cleaned_data["note"],
            )
        except ApplicationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, _("Level saved."))
            return redirect("loyalty:member", member.pk)
    return _member_page(request, member, level_form=form, status=400)


@require_POST
@require_capability("loyalty.redeem")
def enrol(request: HttpRequest) -> HttpResponse:
    membership = membership_of(request)
    form = EnrolForm(request.POST)
    customer = None
    if form.is_valid():
        customer = customer_visible_to(viewer=membership).filter(pk=form.cleaned_data["customer"]).first()
    if customer is None:
        messages.error(request, _("Unknown customer."))
        return redirect("loyalty:members")
    try:
        member = services.member_enrol(actor=membership, customer=customer)
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("customers:detail", customer.pk)
    messages.success(request, _("%(name)s is a member now.") % {"name": customer.name})
    return redirect("loyalty:member", member.pk)


@require_capability("loyalty.view")
def ledger(request: HttpRequest) -> HttpResponse:
    membership = membership_of(request)
    form = LedgerFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    page = page_of(
        request,
        selectors.ledger_list(
            viewer=membership, kind=data.get("kind") or "", start=data.get("start"), end=data.get("end")
        ),
        size=PAGE_SIZE,
    )
    return render(request, "loyalty/ledger.html", {"form": form, "entries": page.items, **page.context()})


@require_capability("loyalty.view")
def redemptions(request: HttpRequest) -> HttpResponse:
    membership = membership_of(request)
    form = RedemptionFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    page = page_of(
        request,
        selectors.redemption_list(viewer=membership, status=data.get("status") or "", reward=data.get("reward")),
        size=PAGE_SIZE,
    )
    return render(
        request,
        "loyalty/redemptions.html",
        {
            "form": form,
            "rows": page.items,
            **page.context(),
            "can_cancel": membership.can("loyalty.adjust"),
            "cancel_form": CancelForm(),
        },
    )


@require_POST
@require_capability("loyalty.adjust")
def redemption_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    membership = membership_of(request)
    redemption = get_object_or_404(selectors.redemption_list(viewer=membership), pk=pk)
    form = CancelForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why it is cancelled."))
        return redirect("loyalty:member", redemption.member_id)
    try:
        services.redemption_cancel(actor=membership, redemption=redemption, note=form.cleaned_data["note"])
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Redemption cancelled; the points and the stock are back."))
    return redirect("loyalty:member", redemption.member_id)


@require_capability("loyalty.view")
def referrals(request: HttpRequest) -> HttpResponse:
    membership = membership_of(request)
    form = ReferralForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if not membership.can("loyalty.redeem"):
            messages.error(request, _("Your role may not record referrals."))
            return redirect("loyalty:referrals")
        if form.is_valid():
            visible = customer_visible_to(viewer=membership)
            referrer = visible.filter(pk=form.cleaned_data["referrer"]).first()
            referee = visible.filter(pk=form.cleaned_data["referee"]).first()
            if referrer is None:
                form.add_error("referrer", _("No such customer."))
            if referee is None:
                form.add_error("referee", _("No such customer."))
            if referrer is not None and referee is not None:
                try:
                    services.referral_create(
                        actor=membership, referrer=referrer, referee=referee, note=form.cleaned_data.get("note") or ""
                    )
                except ApplicationError as error:
                    form_errors_from(form, error)
                else:
                    messages.success(request, _("Referral recorded."))
                    return redirect("loyalty:referrals")
        status = 400
    page = page_of(request, selectors.referral_list(viewer=membership), size=PAGE_SIZE)
    ids = [r.referee_id for r in page.items] + [r.referrer.customer_id for r in page.items]
    visible_ids = selectors.visible_customer_ids(viewer=membership, ids=ids)
    return render(
        request,
        "loyalty/referrals.html",
        {
            "form": form,
            "rows": page.items,
            "visible_ids": visible_ids,
            **page.context(),
            "can_record": membership.can("loyalty.redeem"),
        },
        status=status,
    )


@require_capability("loyalty.view")
def rewards(request: HttpRequest) -> HttpResponse:
    membership = membership_of(request)
    services.programme()
    can_manage = membership.can("loyalty.manage")
    return render(
        request,
        "loyalty/rewards.html",
        {"rewards": selectors.catalogue(include_inactive=can_manage), "can_manage": can_manage},
    )


def _edit(
    request: HttpRequest,
    *,
    form_class: type[forms.ModelForm],
    instance: Any,
    save: Any,
    title: str,
    back: str,
    initial: dict[str, Any] | None = None,
) -> HttpResponse:
    """One create-or-edit page for the programme's parts; the service saves and checks."""
    membership = membership_of(request)
    form = form_class(request.POST or None, instance=instance, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            save(actor=membership, obj=form.instance)
        except (ApplicationError, ValidationError) as error:  # the service's rules, or full_clean()
            form_errors_from(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect(back)
    return render(
        request,
        "loyalty/edit.html",
        {"form": form, "title": title, "back": back},
        status=400 if request.method == "POST" else 200,
    )


@require_capability("loyalty.manage")
def reward_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    instance = get_object_or_404(Reward, pk=pk) if pk else Reward()
    return _edit(
        request,
        form_class=RewardForm,
        instance=instance,
        save=lambda actor, obj: services.reward_save(actor=actor, reward=obj),
        title=_("Edit reward") if pk else _("New reward"),
        back="loyalty:rewards",
    )


@require_capability("loyalty.manage")
def level_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    instance = get_object_or_404(Level, pk=pk) if pk else Level()
    return _edit(
        request,
        form_class=LevelEditForm,
        instance=instance,
        save=lambda actor, obj: services.level_save(actor=actor, level=obj),
        title=_("Edit level") if pk else _("New level"),
        back="loyalty:settings",
    )


@require_capability("loyalty.manage")
def rule_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    instance = get_object_or_404(EarningRule, pk=pk) if pk else EarningRule()
    return _edit(
        request,
        form_class=EarningRuleForm,
        instance=instance,
        save=lambda actor, obj: services.earning_rule_save(actor=actor, rule=obj),
        title=_("Edit earning rule") if pk else _("New earning rule"),
        back="loyalty:settings",
    )


@require_capability("loyalty.manage")
def care_edit(request: HttpRequest, pk: int) -> HttpResponse:
    template = get_object_or_404(CareTemplate, pk=pk)
    return _edit(
        request,
        form_class=CareTemplateForm,
        instance=template,
        save=lambda actor, obj: services.care_template_save(actor=actor, template=obj),
        title=_("Greeting: %(occasion)s") % {"occasion": template.get_occasion_display()},
        back="loyalty:settings",
    )


@require_capability("loyalty.manage")
def settings_page(request: HttpRequest) -> HttpResponse:
    membership = membership_of(request)
    instance = services.programme()
    form = ProgrammeForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        try:
            services.programme_update(actor=membership, data={f: form.cleaned_data[f] for f in form.Meta.fields})
        except ApplicationError as error:
            form_errors_from(form, error)
        else:
            messages.success(request, _("Saved."))
            return redirect("loyalty:settings")
    from loyalty.holidays import next_holiday

    upcoming = next_holiday(timezone.localdate())
    return render(
        request,
        "loyalty/settings.html",
        {
            "form": form,
            "levels": Level.objects.order_by("rank"),
            "rules": EarningRule.objects.order_by("order_kind"),
            "care": services.care_templates_ensure(),
            "next_holiday": (CareTemplate.Occasion(upcoming[0]).label, upcoming[1]) if upcoming else None,
        },
        status=400 if form.errors else 200,
    )


@require_capability("dashboards.view")
def report(request: HttpRequest) -> HttpResponse:
    membership = membership_of(request)
    today = timezone.localdate()
    query = request.GET.copy()
    query.setdefault("start", str(today - timedelta(days=364)))
    query.setdefault("end", str(today))
    form = SummaryForm(query)
    figures = None
    if form.is_valid():
        figures = selectors.loyalty_summary(
            period=selectors.Period(form.cleaned_data["start"], form.cleaned_data["end"]), zone=membership.tenant.zone
        )
    return render(request, "loyalty/report.html", {"form": form, "figures": figures})
