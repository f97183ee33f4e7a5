"""Progress of a pass, written where the progress bar can see it while the pass's transaction is open."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

logger = logging.getLogger(__name__)

PROGRESS_EVERY_ROWS = 2000
PROGRESS_MIN_SECONDS = 0.5


class _Progress:
    """Writes `processed_rows`/`total_rows` of one job on a database connection of its own.

    Each write is its own short transaction (the tenant set transaction-locally, as always), so
    pages polling the job see it move while the scan's transaction is still open. Best effort:
    a failure switches progress off and never breaks the import. The scan's own transaction must
    not write the job row until the pass ends, or these writes would wait for it.
    """

    def __init__(self, *, job_id: int, tenant_id: int, total: int) -> None:
        self.job_id, self.tenant_id, self.total = job_id, tenant_id, total
        self.processed = 0
        self._last_write = 0.0
        self._written = 0
        self._connection: Any = None
        self._broken = False

    def advance(self, rows: int) -> None:
        self.processed += rows
        if self.total and self.processed > self.total:
            self.total = self.processed
        due = self.processed - self._written >= PROGRESS_EVERY_ROWS
        if due and time.monotonic() - self._last_write >= PROGRESS_MIN_SECONDS:
            self.write()

    def write(self) -> None:
        if self._broken:
            return
        try:
            if self._connection is None:
                self._connection = connections.create_connection(DEFAULT_DB_ALIAS)
                self._connection.ensure_connection()
            raw = self._connection.connection
            with raw.transaction(), raw.cursor() as cursor:
                cursor.execute("SELECT set_config('app.tenant_id', %s, true)", [str(self.tenant_id)])
                cursor.execute("SET LOCAL lock_timeout = '2s'")
                cursor.execute(
                    "UPDATE customers_importjob SET processed_rows = %s, total_rows = %s "
                    "WHERE tenant_id = %s AND id = %s",
                    [self.processed, self.total, self.tenant_id, self.job_id],
                )
        except Exception as error:  # noqa: BLE001 - progress is advisory; the import goes on without it
            logger.warning("import %s: progress not written (%r); continuing without", self.job_id, error)
            self._broken = True
        self._written = self.processed
        self._last_write = time.monotonic()

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(DatabaseError):
                self._connection.close()
            self._connection = None
