"""The structure the import contracts (pyproject.toml [tool.importlinter]) do not cover by themselves:
no module imports itself through a chain of others, and every extension point's graph is whole."""

from __future__ import annotations

import grimp

from crm.core.extensions import extension_points
from crm.core.nightly import nightly_steps

PACKAGES = ("config", "crm", "customers", "segmentation", "complaints", "loyalty", "followups", "surveys", "dashboards")


def _import_cycles() -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    edges = {module: sorted(graph.find_modules_directly_imported_by(module)) for module in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(edges[successor])))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        cycles.append(sorted(group))
    return cycles


def test_no_module_imports_itself_through_others():
    assert _import_cycles() == []


def test_every_extension_point_has_a_whole_graph():
    problems = {point.key: point.problems() for point in extension_points()}
    assert {key: found for key, found in problems.items() if found} == {}
    assert "core.nightly_steps" in problems and "customers.panels" in problems


def test_the_night_runs_each_step_after_the_steps_it_names():
    order = [step.name for step in nightly_steps.contributions()]
    for position, step in enumerate(nightly_steps.contributions()):
        assert all(order.index(before) < position for before in step.after), step.name
    assert order[-1] == "dashboards.figures"


def test_an_unknown_name_or_a_cycle_is_refused_at_start_up():
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    from crm.core.nightly import NightlyStep

    def nothing(**kwargs: object) -> int:
        return 0

    broken = (
        NightlyStep(name="test.first", after=("test.second",), run=nothing),
        NightlyStep(name="test.second", after=("test.first",), run=nothing),
        NightlyStep(name="test.orphan", after=("test.missing",), run=nothing),
    )
    with nightly_steps.replaced(*broken):
        problems = nightly_steps.problems()
        try:
            call_command("check")
        except SystemCheckError as error:
            refused = str(error)
        else:
            refused = ""
    assert problems == [
        "'test.orphan' runs after 'test.missing', which is not registered",
        "a cycle among test.first, test.second",
    ]
    assert "core.E001" in refused and "test.missing" in refused and "a cycle among test.first, test.second" in refused
