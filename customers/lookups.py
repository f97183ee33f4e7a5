"""`field__prefix="王"`: a prefix match that PostgreSQL can serve from an index under row-level security.

`startswith` compiles to LIKE, whose function (textlike) is not leakproof. On a table with RLS the
planner may not evaluate a non-leakproof qual before the policy's, so it cannot become an index
condition and every search scans the whole table. `^@` (starts_with) is leakproof, and since
PostgreSQL 15 a btree with varchar_pattern_ops (or C collation) serves it as a range scan.
No escaping is needed: `%` and `_` are matched literally.
"""

from __future__ import annotations

from typing import Any

from django.db.models import CharField, Lookup, TextField


@CharField.register_lookup
@TextField.register_lookup
class Prefix(Lookup):
    lookup_name = "prefix"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} ^@ {rhs}", [*lhs_params, *rhs_params]
