"""System checks of the kernel: every extension point's graph is whole (no unknown name, no cycle)."""

from __future__ import annotations

from typing import Any

from django.core import checks


@checks.register()
def extension_points_are_whole(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from crm.core.extensions import extension_points

    return [
        checks.Error(f"{point.key}: {problem}", hint="Fix the `after` names in the app's hooks.py.", id="core.E001")
        for point in extension_points()
        for problem in point.problems()
    ]
