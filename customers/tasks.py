"""Thin tasks of the customers app: checking and committing imported files.

Each takes ids only and runs for one dealership (`tenant_task` sets both tenancy locks for its
body). Both are idempotent: a job that is no longer waiting for the step is left alone, so a
retried or duplicated task changes nothing more.

This module imports customers.imports, never the reverse: the package queues these tasks by the
names it gives them (`IMPORT_VALIDATE_TASK`, `IMPORT_COMMIT_TASK`).
"""

from __future__ import annotations

from crm.tenancy.tasks import tenant_task
from customers import imports


@tenant_task(name=imports.IMPORT_VALIDATE_TASK)
def import_validate_task(*, tenant_id: int, job_id: int) -> str:
    job = imports.import_validate(job_id=int(job_id))
    return str(job.status) if job is not None else "missing"


@tenant_task(name=imports.IMPORT_COMMIT_TASK)
def import_commit_task(*, tenant_id: int, job_id: int) -> str:
    job = imports.import_commit(job_id=int(job_id))
    return str(job.status) if job is not None else "missing"
