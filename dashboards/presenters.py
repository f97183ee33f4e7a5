"""The dashboard's figures as the page shows them: labelled tables (also the XLSX sheets) and the
data of each chart (drawn in the browser by static/js/dashboards.js with Chart.js)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from customers.models import LifecycleStage, Order
from dashboards.selectors import LADDER, OFF_LADDER
from segmentation.selectors import tier_label

HEADLINE_LABELS = {
    "satisfaction": gettext_lazy("Satisfaction"),
    "contribution": gettext_lazy("Contribution"),
    "loyalty": gettext_lazy("Loyalty"),
    "dependency": gettext_lazy("Dependency"),
    "accuracy": gettext_lazy("Information accuracy"),
}
HEADLINE_DRILL = {
    "satisfaction": ("detractors", ""),
    "contribution": ("spenders", ""),
    "loyalty": ("stage", str(LifecycleStage.DORMANT)),
    "dependency": ("not_returned", ""),
    "accuracy": ("inaccurate", ""),
}


def headline_label(key: str) -> str:
    return str(HEADLINE_LABELS[key])


def drill_url(query: dict[str, Any], figure: str, value: str = "") -> str:
    params = {k: v for k, v in query.items() if v not in (None, "") and k not in ("format", "figure", "value", "page")}
    return reverse("dashboards:drill") + "?" + urlencode({**params, "figure": figure, "value": value})


def _num(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def tables(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Every table of the page, in order: {"key", "title", "headers", "rows"}."""
    now, before = _("This period"), _("Comparison")
    stage_labels = dict(LifecycleStage.choices)
    kinds = dict(Order.Kind.choices)
    result = [
        {
            "key": "headline",
            "title": _("The four degrees"),
            "headers": [_("Figure"), now, before, _("Change")],
            "rows": [
                [headline_label(h["key"]), _num(h["value"]), _num(h["previous"]), h["change"]]
                for h in figures["headline"]
            ],
        },
        {
            "key": "tiers",
            "title": _("Value tiers"),
            "headers": [_("Value tier"), now, before],
            "rows": [[tier_label(t["tier"]), t["customers"], t["previous"]] for t in figures["tiers"]],
        },
        {
            "key": "ladder",
            "title": _("Customer ladder by month"),
            "headers": [_("Stage"), *figures["ladder"]["months"], _("Change")],
            "rows": [
                [str(stage_labels[m["stage"]]), *figures["ladder"]["series"][m["stage"]], m["change"]]
                for m in figures["ladder"]["movement"]
            ],
        },
        {
            "key": "revenue",
            "title": _("Spend by order type"),
            "headers": [_("Type"), _("Orders"), now, _("Orders (comparison)"), before],
            "rows": [
                [
                    str(kinds[kind]),
                    row["orders"],
                    _num(row["amount"]),
                    figures["revenue"]["before"]["by_kind"][kind]["orders"],
                    _num(figures["revenue"]["before"]["by_kind"][kind]["amount"]),
                ]
                for kind, row in figures["revenue"]["now"]["by_kind"].items()
            ],
        },
        {
            "key": "service",
            "title": _("Service quality"),
            "headers": [_("Figure"), now, before],
            "rows": [
                [_("CSAT (%)"), figures["surveys"]["now"]["csat"], figures["surveys"]["before"]["csat"]],
                [_("NPS"), figures["surveys"]["now"]["nps"], figures["surveys"]["before"]["nps"]],
                [
                    _("Survey responses"),
                    figures["surveys"]["now"]["responses"],
                    figures["surveys"]["before"]["responses"],
                ],
                [
                    _("Complaints opened"),
                    figures["complaints"]["now"]["tickets"],
                    figures["complaints"]["before"]["tickets"],
                ],
                [
                    _("First response within SLA (%)"),
                    figures["complaints"]["now"]["response_compliance"],
                    figures["complaints"]["before"]["response_compliance"],
                ],
                [
                    _("Resolved within SLA (%)"),
                    figures["complaints"]["now"]["resolution_compliance"],
                    figures["complaints"]["before"]["resolution_compliance"],
                ],
                [
                    _("Follow-up completion (%)"),
                    figures["followups"]["now"]["completion"],
                    figures["followups"]["before"]["completion"],
                ],
                [_("Follow-ups done"), figures["followups"]["now"]["done"], figures["followups"]["before"]["done"]],
                [
                    _("Follow-ups missed (unreachable or expired)"),
                    figures["followups"]["now"]["unreachable"] + figures["followups"]["now"]["expired"],
                    figures["followups"]["before"]["unreachable"] + figures["followups"]["before"]["expired"],
                ],
                [_("Outstanding loyalty points"), figures["points"]["now"], figures["points"]["before"]],
            ],
        },
    ]
    return result


def charts(figures: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
    """Chart data for the browser: labels, series and, per bar, the drill-down link."""
    stage_labels = dict(LifecycleStage.choices)
    kinds = dict(Order.Kind.choices)
    ladder = figures["ladder"]
    return {
        "labels": {"now": _("This period"), "before": _("Comparison")},
        "tiers": {
            "labels": [tier_label(t["tier"]) for t in figures["tiers"]],
            "now": [t["customers"] for t in figures["tiers"]],
            "before": [t["previous"] for t in figures["tiers"]],
            "links": [drill_url(query, "tier", t["tier"]) for t in figures["tiers"]],
        },
        "funnel": {
            "labels": [str(stage_labels[s]) for s in LADDER],
            "now": [figures["base"]["now"]["by_stage"].get(str(s), 0) for s in LADDER],
            "before": [figures["base"]["before"]["by_stage"].get(str(s), 0) for s in LADDER],
            "links": [drill_url(query, "stage", str(s)) for s in LADDER],
        },
        "ladder": {
            "labels": ladder["months"],
            "series": [
                {
                    "label": str(stage_labels[str(s)]),
                    "data": ladder["series"][str(s)],
                    "link": drill_url(query, "stage", str(s)),
                }
                for s in LADDER + OFF_LADDER
            ],
        },
        "revenue": {
            "labels": [str(kinds[k]) for k in figures["revenue"]["now"]["by_kind"]],
            "now": [_num(r["amount"]) for r in figures["revenue"]["now"]["by_kind"].values()],
            "before": [_num(r["amount"]) for r in figures["revenue"]["before"]["by_kind"].values()],
            "links": [drill_url(query, "spenders", k) for k in figures["revenue"]["now"]["by_kind"]],
        },
        "service": {
            "labels": [
                _("CSAT (%)"),
                _("NPS"),
                _("First response within SLA (%)"),
                _("Resolved within SLA (%)"),
                _("Follow-up completion (%)"),
            ],
            "now": [
                figures["surveys"]["now"]["csat"],
                figures["surveys"]["now"]["nps"],
                figures["complaints"]["now"]["response_compliance"],
                figures["complaints"]["now"]["resolution_compliance"],
                figures["followups"]["now"]["completion"],
            ],
            "before": [
                figures["surveys"]["before"]["csat"],
                figures["surveys"]["before"]["nps"],
                figures["complaints"]["before"]["response_compliance"],
                figures["complaints"]["before"]["resolution_compliance"],
                figures["followups"]["before"]["completion"],
            ],
            "links": [
                drill_url(query, "detractors"),
                drill_url(query, "detractors"),
                drill_url(query, "complaints"),
                drill_url(query, "complaints"),
                drill_url(query, "followups_missed"),
            ],
        },
    }
