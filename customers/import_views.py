"""Staff pages for importing DMS files (upload → check → fix the mapping → import) and exporting
customer lists. Thin: forms validate input, services in customers.imports / customers.exports act.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib import messages
from django.core.files.uploadhandler import FileUploadHandler
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone, translation
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm.core.errors import ApplicationError
from crm.tenancy.audit import RequestMeta
from crm.tenancy.context import stream_in_tenant
from crm.tenancy.decorators import membership_of, require_capability
from crm.tenancy.models import Membership
from customers import exports, imports
from customers.models import ImportJob
from customers.selectors import CustomerFilters

ERRORS_PER_PAGE = 100
RUNNING = (ImportJob.Status.VALIDATING, ImportJob.Status.IMPORTING)


class ImportUploadForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("The file holds"), choices=ImportJob.Kind.choices)
    file = forms.FileField(
        label=gettext_lazy("File"),
        help_text=gettext_lazy(
            "CSV or Excel (.xlsx), at most 50 MB. Column names in the first row (Chinese or English)."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx"}),
    )


class ImportMappingForm(forms.Form):
    """One choice per target field: which column of the file holds it (or none)."""

    def __init__(self, *args: Any, job: ImportJob, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        headers: list[str] = job.mapping.get("headers", [])
        chosen: dict[str, int] = job.mapping.get("fields", {}) or {}
        columns = [("", _("— not in the file —"))] + [
            (str(i), f"{imports.column_label(headers, i)}") for i in range(len(headers))
        ]
        for spec_field in imports.import_kind(job.kind).fields:
            label = str(spec_field.label) + (" *" if spec_field.required else "")
            initial = chosen.get(spec_field.name)
            self.fields[spec_field.name] = forms.ChoiceField(
                label=label,
                choices=columns,
                required=False,
                initial="" if initial is None else str(initial),
            )

    def chosen_fields(self) -> dict[str, int]:
        return {name: int(value) for name, value in self.cleaned_data.items() if value not in ("", None)}


def _show_errors(form: forms.Form, error: ApplicationError) -> None:
    placed = False
    for name, field_messages in error.fields.items():
        for message in field_messages:
            form.add_error(name if name in form.fields else None, message)
            placed = True
    if not placed:
        form.add_error(None, error.message)


@require_capability("customers.import")
def import_list(request: HttpRequest) -> HttpResponse:
    viewer = membership_of(request)
    page = Paginator(imports.import_jobs_visible_to(viewer=viewer), 25).get_page(request.GET.get("page"))
    return render(request, "customers/import_list.html", {"page": page})


class UploadLimitHandler(FileUploadHandler):
    """Stops storing an upload once it passes the import size limit, instead of spooling the whole
    body to disk first. The rest of the file is read and dropped; fields after it still arrive
    (the CSRF token among them), so the form can say what was wrong."""

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if start + len(raw_data) > imports.MAX_UPLOAD_BYTES:
            self.request.crm_upload_too_large = True  # type: ignore[union-attr]
            return None  # later handlers (the temporary file) never see this chunk
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


@require_http_methods(["GET", "POST"])
@require_capability("customers.import")
@csrf_exempt  # checked by _import_new, once the size guard is in place (it must precede reading the body)
def import_new(request: HttpRequest) -> HttpResponse:
    request.upload_handlers = [UploadLimitHandler(request), *request.upload_handlers]
    return _import_new(request)


@csrf_protect
def _import_new(request: HttpRequest) -> HttpResponse:
    viewer = membership_of(request)
    form = ImportUploadForm(request.POST, request.FILES) if request.method == "POST" else ImportUploadForm()
    if getattr(request, "crm_upload_too_large", False):
        form.is_valid()
        form.errors.pop("file", None)
        form.add_error(
            "file", _("The file is larger than %(mb)d MB.") % {"mb": imports.MAX_UPLOAD_BYTES // (1024 * 1024)}
        )
    elif request.method == "POST" and form.is_valid():
        try:
            job = imports.import_job_create(
                actor=viewer,
                kind=form.cleaned_data["kind"],
                upload=form.cleaned_data["file"],
                language=get_language() or "",
            )
        except ApplicationError as error:
            _show_errors(form, error)
        else:
            return redirect("customer_import", pk=job.pk)
    kinds = [(value, label, imports.import_kind(value)) for value, label in ImportJob.Kind.choices]
    return render(request, "customers/import_new.html", {"form": form, "kinds": kinds}, status=200)


def _job_context(request: HttpRequest, job: ImportJob) -> dict[str, Any]:
    processed, total = job.processed_rows, job.total_rows
    percent = min(100, round(processed * 100 / total)) if total else None
    return {"job": job, "running": job.status in RUNNING, "percent": percent}


@require_http_methods(["GET", "POST"])
@require_capability("customers.import")
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The job: progress while it runs; then the row errors, the column mapping, and Import."""
    viewer = membership_of(request)
    job = get_object_or_404(imports.import_jobs_visible_to(viewer=viewer), pk=pk)
    mapping_form = None
    if "headers" in job.mapping:
        mapping_form = ImportMappingForm(request.POST if request.method == "POST" else None, job=job)
    if request.method == "POST" and mapping_form is None:
        messages.error(request, _("This file has no columns to map."))
        return redirect("customer_import", pk=job.pk)
    if request.method == "POST" and mapping_form is not None and mapping_form.is_valid():
        try:
            imports.import_job_set_mapping(actor=viewer, job=job, fields=mapping_form.chosen_fields())
        except ApplicationError as error:
            _show_errors(mapping_form, error)
        else:
            messages.success(request, _("The file is being checked again with the new mapping."))
            return redirect("customer_import", pk=job.pk)
    errors = Paginator(job.errors, ERRORS_PER_PAGE).get_page(request.GET.get("page"))
    spec = imports.import_kind(job.kind)
    headers: list[str] = job.mapping.get("headers", [])
    fields: dict[str, int] = job.mapping.get("fields", {}) or {}
    mapped = {
        index: str(spec.field(name).label) for name, index in fields.items() if any(f.name == name for f in spec.fields)
    }
    context = _job_context(request, job) | {
        "errors": errors,
        "more_errors": max(job.error_count - len(job.errors), 0),
        "mapping_form": mapping_form,
        "preview_headers": [(imports.column_label(headers, i), mapped.get(i, "")) for i in range(len(headers))],
        "sample": job.mapping.get("sample", []),
        "can_commit": job.status == ImportJob.Status.READY and job.error_count == 0,
        "can_skip_invalid": job.status == ImportJob.Status.INVALID
        and int((job.result or {}).get("valid_rows") or 0) > 0
        and not imports.job_has_file_level_errors(job),
    }
    return render(
        request, "customers/import_detail.html", context, status=400 if mapping_form and mapping_form.errors else 200
    )


@require_GET
@require_capability("customers.import")
def import_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """htmx: the progress bar, polled while the job runs; once it has finished, reload the page."""
    viewer = membership_of(request)
    job = get_object_or_404(imports.import_jobs_visible_to(viewer=viewer), pk=pk)
    response = render(request, "customers/_import_progress.html", _job_context(request, job))
    if request.htmx and job.status not in RUNNING:  # type: ignore[attr-defined]
        response["HX-Refresh"] = "true"
    return response


@require_POST
@require_capability("customers.import")
def import_commit(request: HttpRequest, pk: int) -> HttpResponse:
    """Import; with `skip_invalid` (the explicit choice on a file with row errors) only its valid rows."""
    viewer = membership_of(request)
    job = get_object_or_404(imports.import_jobs_visible_to(viewer=viewer), pk=pk)
    skip_invalid = request.POST.get("skip_invalid") == "1"
    if skip_invalid and request.POST.get("confirm_skip") != "1":
        messages.error(request, _("Tick the box to confirm that the rows with errors are skipped."))
        return redirect("customer_import", pk=job.pk)
    try:
        imports.import_job_request_commit(
            actor=viewer, job=job, meta=RequestMeta.from_request(request), skip_invalid=skip_invalid
        )
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect("customer_import", pk=job.pk)


@require_GET
@require_capability("customers.import")
def import_template(request: HttpRequest, kind: str) -> HttpResponse:
    """An empty workbook with the columns of one kind of import, to fill in or to give the DMS."""
    if kind not in ImportJob.Kind.values:
        raise Http404
    response = FileResponse(
        imports.import_template_xlsx(kind=kind),
        as_attachment=True,
        filename=f"import-template-{kind}.xlsx",
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response.crm_tenant_safe = True  # type: ignore[attr-defined]  # built in memory, no tenant data
    response["Cache-Control"] = "no-store"
    return response  # type: ignore[return-value]


def _in_language(language: str, chunks: Iterator[str]) -> Iterator[str]:
    with translation.override(language):
        yield from chunks


@require_GET
@require_capability("customers.import")
def import_error_report(request: HttpRequest, pk: int) -> HttpResponse:
    """Every row of the file that has an error, as the file holds it, with what is wrong (CSV)."""
    viewer = membership_of(request)
    job = get_object_or_404(imports.import_jobs_visible_to(viewer=viewer), pk=pk)
    if not job.error_count or job.status in RUNNING:
        raise Http404
    chunks = _in_language(get_language() or "", imports.import_error_report_csv(job=job))
    # The body is produced after the request's transaction has closed: read in a tenant of its own.
    response = StreamingHttpResponse(stream_in_tenant(viewer.tenant_id, chunks), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    response["Cache-Control"] = "no-store"
    response.crm_tenant_safe = True  # type: ignore[attr-defined]
    return response  # type: ignore[return-value]


@require_GET
@require_capability("customers.export")
def customer_export(request: HttpRequest) -> HttpResponse:
    """The customer list with the list's filters, as CSV (streamed) or XLSX; masking as on screen."""
    viewer = membership_of(request)
    try:
        export_format, filters = exports.export_params(request.GET)
    except ApplicationError as error:
        return render(
            request,
            "customers/import_export_bad_request.html",
            {"message": error.message, "fields": error.fields},
            status=400,
        )
    return export_response(request, viewer=viewer, export_format=export_format, filters=filters)


def export_response(
    request: HttpRequest, *, viewer: Membership, export_format: str, filters: CustomerFilters
) -> HttpResponse:
    """The file of an export (the list's, or a bulk selection's), audited like every export."""
    export = exports.customers_export(
        viewer=viewer, filters=filters, export_format=export_format, meta=RequestMeta.from_request(request)
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response: HttpResponse | StreamingHttpResponse
    if export_format == exports.XLSX:
        response = FileResponse(
            exports.export_xlsx_file(export=export),
            as_attachment=True,
            filename=f"customers-{stamp}.xlsx",
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    else:
        # The body is produced after the request's transaction has closed: read in a tenant of its own.
        response = StreamingHttpResponse(
            stream_in_tenant(viewer.tenant_id, exports.export_csv_chunks(export=export)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="customers-{stamp}.csv"'
    response.crm_tenant_safe = True  # type: ignore[attr-defined]
    response["Cache-Control"] = "no-store"
    return response  # type: ignore[return-value]
