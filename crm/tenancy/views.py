"""Tenant admin pages: staff and roles, API credentials, the audit log."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.core.errors import ApplicationError
from crm.tenancy import selectors, services
from crm.tenancy.audit import RequestMeta
from crm.tenancy.decorators import membership_of, require_capability
from crm.tenancy.filters import AuditEventFilter
from crm.tenancy.forms import CredentialForm, DeactivateForm, DealershipSettingsForm, InviteForm, RoleForm
from crm.tenancy.handover import member_holdings
from crm.tenancy.models import Membership
from crm.tenancy.roles import CAPABILITIES, Role


def _show_error(request: HttpRequest, error: ApplicationError) -> None:
    messages.error(request, error.message)


@require_capability("users.view")
def member_list(request: HttpRequest) -> HttpResponse:
    memberships = selectors.membership_list()
    query = request.GET.get("q", "").strip()
    if query:
        from django.db.models import Q

        memberships = memberships.filter(
            Q(user__email__icontains=query) | Q(user__first_name__icontains=query) | Q(user__last_name__icontains=query)
        )
    role = request.GET.get("role", "")
    if role in Role.values:
        memberships = memberships.filter(role=role)
    invite_form = InviteForm()
    if request.method == "POST":
        if not membership_of(request).can("users.manage"):
            return render(request, "403.html", status=403)
        invite_form = InviteForm(request.POST)
        if invite_form.is_valid():
            try:
                membership = services.member_invite(
                    actor=membership_of(request),
                    site_url=request.build_absolute_uri("/"),
                    meta=RequestMeta.from_request(request),
                    **invite_form.cleaned_data,
                )
            except ApplicationError as error:
                for field, errors in error.fields.items():
                    for message in errors:
                        invite_form.add_error(field if field in invite_form.fields else None, message)
                if not error.fields:
                    invite_form.add_error(None, error.message)
            else:
                messages.success(request, _("Invitation sent to %(email)s.") % {"email": membership.user.email})
                return redirect("tenancy:members")
    page = Paginator(memberships, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "tenancy/member_list.html",
        {"page": page, "invite_form": invite_form, "roles": Role.choices, "query": query, "role": role},
    )


@require_capability("users.manage")
def member_detail(request: HttpRequest, pk: int) -> HttpResponse:
    membership = get_object_or_404(selectors.membership_list(), pk=pk)
    meta = RequestMeta.from_request(request)
    role_form = RoleForm(initial={"role": membership.role})
    deactivate_form = DeactivateForm(leaving=membership)
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "role":
                role_form = RoleForm(request.POST)
                if role_form.is_valid():
                    services.member_change_role(
                        actor=membership_of(request),
                        membership=membership,
                        role=role_form.cleaned_data["role"],
                        meta=meta,
                    )
                    messages.success(request, _("Role changed."))
                    return redirect("tenancy:member", pk=pk)
            elif action == "deactivate":
                deactivate_form = DeactivateForm(request.POST, leaving=membership)
                if deactivate_form.is_valid():
                    moved = services.member_deactivate(
                        actor=membership_of(request),
                        membership=membership,
                        hand_over_to=deactivate_form.cleaned_data["hand_over_to"],
                        meta=meta,
                    )
                    messages.success(request, _("Deactivated. %(n)d records handed over.") % {"n": sum(moved.values())})
                    return redirect("tenancy:member", pk=pk)
            elif action == "resend":
                services.member_resend_invitation(
                    actor=membership_of(request),
                    membership=membership,
                    site_url=request.build_absolute_uri("/"),
                    meta=meta,
                )
                messages.success(
                    request, _("A new invitation is on its way to %(email)s.") % {"email": membership.user.email}
                )
                return redirect("tenancy:member", pk=pk)
            elif action == "reactivate":
                services.member_reactivate(actor=membership_of(request), membership=membership, meta=meta)
                messages.success(request, _("Reactivated."))
                return redirect("tenancy:member", pk=pk)
        except ApplicationError as error:
            _show_error(request, error)
    return render(
        request,
        "tenancy/member_detail.html",
        {
            "member": membership,
            "role_form": role_form,
            "deactivate_form": deactivate_form,
            "holdings": member_holdings(membership=membership),
        },
    )


@require_capability("tokens.personal")
def credential_list(request: HttpRequest) -> HttpResponse:
    viewer: Membership = membership_of(request)
    form = CredentialForm(membership=viewer)
    new_key = None
    if request.method == "POST":
        form = CredentialForm(request.POST, membership=viewer)
        if form.is_valid():
            try:
                credential, new_key = services.credential_create(
                    actor=viewer, meta=RequestMeta.from_request(request), **form.cleaned_data
                )
            except ApplicationError as error:
                for field, errors in error.fields.items():
                    for message in errors:
                        form.add_error(field if field in form.fields else None, message)
                if not error.fields:
                    form.add_error(None, error.message)
            else:
                messages.success(
                    request, _("Created %(name)s. Copy the key now: it is shown only once.") % {"name": credential.name}
                )
                form = CredentialForm(membership=viewer)
    credentials = selectors.credential_list(viewer=viewer)
    response = render(
        request, "tenancy/credential_list.html", {"form": form, "credentials": credentials, "new_key": new_key}
    )
    response["Cache-Control"] = "no-store"  # the page may carry a fresh key
    return response


@require_POST
@require_capability("tokens.personal")
def credential_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    viewer: Membership = membership_of(request)
    credential = get_object_or_404(selectors.credential_list(viewer=viewer), pk=pk)
    try:
        services.credential_revoke(actor=viewer, credential=credential, meta=RequestMeta.from_request(request))
        messages.success(request, _("Revoked %(name)s.") % {"name": credential.name})
    except ApplicationError as error:
        _show_error(request, error)
    return redirect("tenancy:credentials")


@require_capability("audit.view")
def audit_log(request: HttpRequest) -> HttpResponse:
    filterset = AuditEventFilter(request.GET, queryset=selectors.audit_event_list())
    page = Paginator(filterset.qs, 50).get_page(request.GET.get("page"))
    return render(request, "tenancy/audit_log.html", {"filter": filterset, "page": page})


def permission_matrix(request: HttpRequest) -> HttpResponse:
    """Every staff member may read what each role can do."""
    rows = [
        (name, desc, [role in roles for role, _label in Role.choices]) for name, (desc, roles) in CAPABILITIES.items()
    ]
    return render(request, "tenancy/permissions.html", {"rows": rows, "roles": Role.choices})


@require_capability("settings.manage")
def dealership_settings(request: HttpRequest) -> HttpResponse:
    """Name, time zone, language, business hours and holidays (used by SLA clocks)."""
    membership: Membership = membership_of(request)
    tenant = membership.tenant
    form = DealershipSettingsForm(tenant=tenant)
    if request.method == "POST":
        form = DealershipSettingsForm(request.POST, tenant=tenant)
        if form.is_valid():
            try:
                services.tenant_settings_update(
                    actor=membership, tenant=tenant, changes=form.changes(), meta=RequestMeta.from_request(request)
                )
            except ApplicationError as error:
                form.add_error(None, error.message)
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    for message in errors:
                        form.add_error(field if field in form.fields else None, message)
            else:
                messages.success(request, _("Dealership settings saved."))
                return redirect("tenancy:dealership")
    public = selectors.public_holidays_for(tenant=tenant, today=timezone.localdate(timezone=tenant.zone))
    return render(request, "tenancy/dealership_settings.html", {"form": form, "public": public})
