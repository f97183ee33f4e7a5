"""Test data built once per test process and shared by every test that asks for it.

Building the two dealerships (tests/conftest.py: build_dealership runs segmentation, surveys,
loyalty and dashboard services) takes about a second; some 400 tests ask for them. Instead of
building them again for each test, they are built once, in an open transaction on the test
connection that is never committed, and each (non-transactional) test runs inside it: pytest-django
wraps the test in its own atomic block, which is then a savepoint inside ours and is rolled back at
the end of the test as always. So every test starts from exactly the data the fixture built:

* nothing is ever committed: another connection (the owner's cursor, a second worker connection)
  sees what it saw before — no dealership data — and nothing has to be cleaned up;
* the data exists only for the tests that asked for it. Data is layered — level 1: dealership B,
  level 2: B then A (A's fixture asks for B's, and A is built between two sequence jumps, as
  before) — and each layer is an atomic block of its own, so a test that asked for less (or for
  none, or a transactional test, which commits and truncates) first gets the layers it did not ask
  for rolled back. The test order (`order_items`) groups the tests by layer, so in a whole run
  each layer is built about once per process;
* whatever else the build leaves behind besides rows — mail in the outbox, entries in the local
  memory cache, uploaded files under MEDIA_ROOT — is recorded and laid down again for each test,
  as the build would have done; and each test gets its own copy of the Python objects (unpickled
  from a snapshot taken right after the build), so changes made to them in memory stay in that test.

Should the transaction be gone (a test closed the connection, a raw COMMIT/ROLLBACK), the check
before each test notices — the transaction id differs — and the layers are built again.
"""

from __future__ import annotations

import copy
import os
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connections, transaction

ALIAS = "default"


@dataclass
class _Leftovers:
    """What a build left outside the database: mail, cache entries, files."""

    mail: list[Any] = field(default_factory=list)
    cache: list[tuple[str, Any, float | None]] = field(default_factory=list)  # key, stored value, seconds left
    files: dict[str, bytes] = field(default_factory=dict)  # MEDIA_ROOT-relative path -> content

    def lay_down(self) -> None:
        from django.core import mail
        from django.core.cache import cache

        if self.mail and hasattr(mail, "outbox"):
            mail.outbox.extend(copy.deepcopy(self.mail))
        if self.cache and hasattr(cache, "_expire_info"):
            now = time.time()
            with cache._lock:  # type: ignore[attr-defined]
                for key, value, left in self.cache:
                    cache._cache[key] = value  # type: ignore[attr-defined]
                    cache._cache.move_to_end(key, last=False)  # type: ignore[attr-defined]
                    cache._expire_info[key] = None if left is None else now + left  # type: ignore[attr-defined]
        root = Path(settings.MEDIA_ROOT)
        for relative, content in self.files.items():
            path = root / relative
            if not path.is_file() or path.read_bytes() != content:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)


def _media_files() -> dict[str, tuple[int, int]]:
    root = Path(settings.MEDIA_ROOT)
    if not root.is_dir():
        return {}
    found = {}
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            stat = path.stat()
            found[str(path.relative_to(root))] = (stat.st_mtime_ns, stat.st_size)
    return found


def _capture(build: Callable[[], Any]) -> tuple[Any, _Leftovers]:
    """Run `build`, taking out of the mail outbox and the cache what it put there (and noting the
    files it wrote), so the test that is about to start sees neither; `lay_down` puts them back."""
    from django.core import mail
    from django.core.cache import cache

    outbox = getattr(mail, "outbox", None)
    mail_start = len(outbox) if outbox is not None else 0
    locmem = hasattr(cache, "_expire_info")
    if locmem:
        with cache._lock:  # type: ignore[attr-defined]
            saved_cache = (cache._cache.copy(), dict(cache._expire_info))  # type: ignore[attr-defined]
        cache.clear()
    files_before = _media_files()
    try:
        result = build()
    finally:
        leftovers = _Leftovers()
        if outbox is not None:
            leftovers.mail = outbox[mail_start:]
            del outbox[mail_start:]
        if locmem:
            now = time.time()
            with cache._lock:  # type: ignore[attr-defined]
                for key, value in cache._cache.items():  # type: ignore[attr-defined]
                    expires = cache._expire_info.get(key)  # type: ignore[attr-defined]
                    leftovers.cache.append((key, value, None if expires is None else expires - now))
                cache._cache.clear()  # type: ignore[attr-defined]
                cache._cache.update(saved_cache[0])  # type: ignore[attr-defined]
                cache._expire_info.clear()  # type: ignore[attr-defined]
                cache._expire_info.update(saved_cache[1])  # type: ignore[attr-defined]
        root = Path(settings.MEDIA_ROOT)
        leftovers.files = {
            relative: (root / relative).read_bytes()
            for relative, stamp in _media_files().items()
            if files_before.get(relative) != stamp
        }
    return result, leftovers


@dataclass
class _Layer:
    name: str
    atomic: Any  # the open django.db.transaction.Atomic holding this layer's rows
    snapshot: bytes  # the pickled fixture value
    leftovers: _Leftovers


class SharedData:
    """Layers of test data kept in an open transaction; see the module docstring."""

    def __init__(self, builders: list[tuple[str, Callable[[], Any]]]) -> None:
        self.builders = builders  # in layer order: builders[i] may rely on layers < i
        self.layers: list[_Layer] = []
        self.xid: str | None = None
        self.prepared_for: tuple[str, int] | None = None  # (test node id, layers it asked for)
        self.builds = 0
        self._thread = threading.get_ident()

    # -- which tests get what ------------------------------------------------------------------
    def wanted(self, fixturenames: list[str] | tuple[str, ...], transactional: bool) -> int:
        """How many layers a test asked for (0 for a transactional test: it builds its own)."""
        if transactional:
            return 0
        wanted = 0
        for depth, (name, _build) in enumerate(self.builders, start=1):
            if name in fixturenames:
                wanted = depth
        return wanted

    # -- keeping the transaction -----------------------------------------------------------------
    def _alive(self) -> bool:
        conn = connections[ALIAS]
        if not self.layers:
            return True
        if (
            conn.connection is None
            or conn.closed_in_transaction
            or conn.needs_rollback
            or conn.atomic_blocks != [layer.atomic for layer in self.layers]
        ):
            return False
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT pg_current_xact_id_if_assigned()::text")
                return cursor.fetchone()[0] == self.xid
        except Exception:  # noqa: BLE001 - a broken connection: build again
            return False

    def _drop_to(self, depth: int) -> None:
        conn = connections[ALIAS]
        while len(self.layers) > depth:
            layer = self.layers.pop()
            try:
                transaction.set_rollback(True, using=ALIAS)
                layer.atomic.__exit__(None, None, None)
            except Exception:  # noqa: BLE001 - the connection is beyond repair: start over
                self.layers.clear()
                conn.atomic_blocks.clear()
                conn.savepoint_ids.clear()
                conn.in_atomic_block = False
                conn.needs_rollback = False
                conn.closed_in_transaction = False
                conn.close()
        if not self.layers:
            self.xid = None

    def prepare(self, nodeid: str, depth: int) -> None:
        """Before a test: exactly `depth` layers in place (the test's own transaction comes next)."""
        assert threading.get_ident() == self._thread, "shared test data used from another thread"
        if not self._alive():
            self._drop_to(0)
        self._drop_to(depth)
        conn = connections[ALIAS]
        while len(self.layers) < depth:
            name, build = self.builders[len(self.layers)]
            atomic = transaction.atomic(using=ALIAS)
            atomic.__enter__()
            try:
                value, leftovers = _capture(build)
                snapshot = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException:
                transaction.set_rollback(True, using=ALIAS)
                atomic.__exit__(None, None, None)
                raise
            self.layers.append(_Layer(name, atomic, snapshot, leftovers))
            self.builds += 1
            with conn.cursor() as cursor:
                cursor.execute("SELECT pg_current_xact_id_if_assigned()::text")
                self.xid = cursor.fetchone()[0]
        self.prepared_for = (nodeid, depth)

    def release(self) -> None:
        """At the end of the session: roll everything back."""
        self._drop_to(0)

    # -- handing the data to a test --------------------------------------------------------------
    def value(self, request: pytest.FixtureRequest, name: str) -> Any | None:
        """A fresh copy of the shared value `name` for this test, or None if the test must build
        its own (a transactional test, or one that asked for the fixture only at run time)."""
        if self.prepared_for is None or self.prepared_for[0] != request.node.nodeid:
            return None
        for depth, layer in enumerate(self.layers[: self.prepared_for[1]], start=1):
            if layer.name == name:
                assert depth <= len(self.layers)
                layer.leftovers.lay_down()
                return pickle.loads(layer.snapshot)
        return None


def is_transactional(item: pytest.Item) -> bool:
    """pytest-django's own rule: such tests commit, and the tables are emptied after them."""
    marker = item.get_closest_marker("django_db")
    fixturenames = getattr(item, "fixturenames", ())
    if marker is not None:
        from pytest_django.plugin import validate_django_db

        transaction_, reset_sequences, *_rest = validate_django_db(marker)
        if transaction_ or reset_sequences:
            return True
    return (
        "transactional_db" in fixturenames
        or "live_server" in fixturenames
        or ("django_db_reset_sequences" in fixturenames)
    )


def uses_db(item: pytest.Item) -> bool:
    return item.get_closest_marker("django_db") is not None or "db" in getattr(item, "fixturenames", ())
