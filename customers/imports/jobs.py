"""The life of an `ImportJob`: upload, column mapping and commit request (services), the checks
that allow them, and the two passes the tasks run (`import_validate`, `import_commit`).

customers.tasks runs the passes and imports this package; the package never imports it. The
services queue the tasks by the names below, under which customers.tasks declares them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from pathlib import PurePath

from celery import current_app
from celery.app.task import Task
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from crm.core.errors import ApplicationError
from crm.tenancy.access import require
from crm.tenancy.audit import RequestMeta
from crm.tenancy.context import require_tenant_id
from crm.tenancy.models import Membership
from customers.imports.commit import _FileNoLongerValid, _write_rows
from customers.imports.files import upload_problems
from customers.imports.mapping import mapping_problems
from customers.imports.reports import ScanResult, _store_scan, job_has_file_level_errors
from customers.imports.validation import _run_scan
from customers.models import ImportJob

logger = logging.getLogger(__name__)

# the Celery names of the two passes (customers.tasks declares its tasks under them)
IMPORT_VALIDATE_TASK = "customers.import_validate"
IMPORT_COMMIT_TASK = "customers.import_commit"
# one import at a time per dealership: a second commit waits for the first (advisory lock key)
_LOCK_NAMESPACE = 0x494D50  # "IMP"


@transaction.atomic
def import_job_create(*, actor: Membership, kind: str, upload: UploadedFile, language: str = "") -> ImportJob:
    """Store an uploaded file as a new job and queue its validation."""
    require(actor, "customers.import")
    if kind not in ImportJob.Kind.values:
        raise ApplicationError(_("Choose what the file holds."), fields={"kind": [_("Choose one of the list.")]})
    problems = upload_problems(upload)
    if problems:
        raise ApplicationError(problems[0], fields={"file": problems})
    original = PurePath(upload.name or "").name
    extension = PurePath(original).suffix.lower()
    job = ImportJob(
        kind=kind,
        status=ImportJob.Status.VALIDATING,
        original_name=original[:255],
        created_by=actor.user,
        mapping={"language": language or translation.get_language() or settings.LANGUAGE_CODE},
    )
    # the stored name is ours: nothing of the user's file name reaches the file system
    job.file.save(f"{uuid.uuid4().hex}{extension}", upload, save=False)
    job.save()
    _queue(IMPORT_VALIDATE_TASK, job)
    return job


def _queue(task_name: str, job: ImportJob) -> None:
    """Queue the task of that name for the job once the transaction commits."""
    task = _registered_task(task_name)
    tenant_id, job_id = job.tenant_id, job.pk
    # robust: the upload is stored whatever happens to the queue; a broker outage must not become a 500
    transaction.on_commit(lambda: task.delay(tenant_id=tenant_id, job_id=job_id), robust=True)


def _registered_task(name: str) -> Task:
    """The task registered under `name` (customers/tasks.py, imported at start-up by customers/hooks.py
    in every process, so it also runs in-process where there is no broker)."""
    return current_app.tasks[name]


@transaction.atomic
def import_job_set_mapping(*, actor: Membership, job: ImportJob, fields: Mapping[str, int]) -> ImportJob:
    """Use the columns the user chose, and check the whole file again with them."""
    require(actor, "customers.import")
    # FAILED too: checking again is how a failed import is retried
    retryable = (ImportJob.Status.INVALID, ImportJob.Status.READY, ImportJob.Status.FAILED)
    if job.status not in retryable or "headers" not in job.mapping:
        raise ApplicationError(
            _("The mapping can only be changed after the file was checked and before it is imported.")
        )
    problems = mapping_problems(kind=job.kind, headers=job.mapping["headers"], fields=fields)
    if problems:
        raise ApplicationError(_("Check the column mapping."), fields=problems)
    job.mapping = {**job.mapping, "fields": dict(fields)}
    job.status = ImportJob.Status.VALIDATING
    job.errors, job.error_count, job.processed_rows, job.result = [], 0, 0, {}
    job.save(update_fields=["mapping", "status", "errors", "error_count", "processed_rows", "result"])
    _queue(IMPORT_VALIDATE_TASK, job)
    return job


@transaction.atomic
def import_job_request_commit(
    *, actor: Membership, job: ImportJob, meta: RequestMeta | None = None, skip_invalid: bool = False
) -> ImportJob:
    """Queue the all-or-nothing import of a checked file: one without errors, or, when the user
    chose `skip_invalid`, its rows without errors (the bad rows are skipped and listed; not offered
    when an error concerns the file itself: unreadable, no header row, a mapping problem)."""
    require(actor, "customers.import")
    if skip_invalid:
        valid_rows = int((job.result or {}).get("valid_rows") or 0)
        if job.status not in (ImportJob.Status.READY, ImportJob.Status.INVALID) or valid_rows == 0:
            raise ApplicationError(_("This file has no rows without errors to import."), code="not_ready")
        if job_has_file_level_errors(job):
            raise ApplicationError(
                _("The file itself has a problem (see the list): fix it before importing any rows."), code="not_ready"
            )
    elif job.status != ImportJob.Status.READY or job.error_count:
        raise ApplicationError(_("Only a file that was checked without errors can be imported."), code="not_ready")
    meta = meta or RequestMeta()
    # the commit runs in a task: keep who asked for it, and from where, for its audit entry
    job.mapping = {
        **job.mapping,
        "committed_by": actor.user_id,
        "request": {"ip_address": meta.ip_address, "user_agent": meta.user_agent},
        "skip_invalid": skip_invalid,
    }
    job.status = ImportJob.Status.IMPORTING
    job.processed_rows = 0
    job.save(update_fields=["mapping", "status", "processed_rows"])
    _queue(IMPORT_COMMIT_TASK, job)
    return job


def import_jobs_visible_to(*, viewer: Membership) -> QuerySet[ImportJob]:
    """Imports the viewer may see: all of the dealership's for those who see every customer,
    else only their own (error lists quote the file's contents)."""
    jobs = ImportJob.objects.select_related("created_by").order_by("-created_at", "-id")
    if not viewer.can("customers.import"):
        return jobs.none()
    if viewer.can("customers.view_all"):
        return jobs
    return jobs.filter(created_by=viewer.user)


def _language(job: ImportJob) -> str:
    language = job.mapping.get("language") if isinstance(job.mapping, dict) else None
    return language if language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


def import_validate(*, job_id: int) -> ImportJob | None:
    """Check every row of a job's file; status READY (no errors) or INVALID. Writes only the job.

    Does nothing for a job that is not waiting to be checked (a retried or duplicate task) or
    that no longer exists.
    """
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None or job.status != ImportJob.Status.VALIDATING:
        return job
    with translation.override(_language(job)):
        try:
            with transaction.atomic():
                result = _run_scan(job, sink=None)
        except Exception as error:  # reported on the job: without a broker this runs inside a request
            logger.exception("import %s: the check failed", job.pk)
            result = ScanResult()
            result.errors.add(
                None, "", _("The file could not be checked (%(reason)s). Try again.") % {"reason": type(error).__name__}
            )
    _store_scan(job, result)
    job.status = ImportJob.Status.INVALID if result.errors.count else ImportJob.Status.READY
    job.save(update_fields=["status", "mapping", "total_rows", "processed_rows", "error_count", "errors", "result"])
    return job


def import_commit(*, job_id: int) -> ImportJob | None:
    """Write a checked file all-or-nothing. Status DONE with counts, INVALID when the file no longer
    passes (the database changed since the check), FAILED on any other error; in both of the
    latter, nothing was written. Does nothing for a job that is not IMPORTING (safe to retry).
    """
    tenant_id = require_tenant_id()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_LOCK_NAMESPACE, f"tenant:{tenant_id}"])
    job = ImportJob.objects.select_related("created_by").filter(pk=job_id).first()
    if job is None or job.status != ImportJob.Status.IMPORTING:
        return job
    with translation.override(_language(job)):
        try:
            with transaction.atomic():
                counts, result = _write_rows(job)
        except _FileNoLongerValid as rejected:
            _store_scan(job, rejected.result)
            job.status = ImportJob.Status.INVALID
            job.save(
                update_fields=["status", "mapping", "total_rows", "processed_rows", "error_count", "errors", "result"]
            )
            return job
        except Exception as error:  # whatever failed, the savepoint rolled it all back
            logger.exception("import %s failed", job.pk)
            job.status = ImportJob.Status.FAILED
            job.result = {
                "error": _(
                    "The import failed and nothing was written (%(reason)s). Try again, or ask an administrator."
                )
                % {"reason": type(error).__name__}
            }
            job.finished_at = timezone.now()
            job.save(update_fields=["status", "result", "finished_at"])
            return job
    job.status = ImportJob.Status.DONE
    job.result = counts
    job.processed_rows = job.total_rows = counts["rows"]
    # the rows skipped, each with why, as the commit's own scan found them
    job.error_count, job.errors = result.errors.count, list(result.errors.stored)
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "result", "processed_rows", "total_rows", "error_count", "errors", "finished_at"])
    return job
