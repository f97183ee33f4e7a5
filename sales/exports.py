"""XLSX downloads of the sales pages: the funnel (its figures and each breakdown, one sheet each)
and the lead list (mobiles as the viewer may see them: in full only on their own leads)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from decimal import Decimal
from typing import IO, Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from crm.tenancy.models import Membership
from sales.models import Lead, Source
from sales.selectors import FUNNEL_STEPS, lead_mobile_shown

LEAD_LIMIT = 100_000  # rows in one download

Sheet = tuple[str, list[str], Iterable[list[Any]]]


def _workbook(sheets: Iterable[Sheet]) -> IO[bytes]:
    workbook = Workbook(write_only=True)
    for title, headers, rows in sheets:
        sheet = workbook.create_sheet(title=title[:31])

        def cell(value: Any, sheet: Any = sheet) -> Any:
            if value is None:
                return ""
            if isinstance(value, Decimal):
                return float(value)
            if not isinstance(value, str):
                return value
            text = WriteOnlyCell(sheet, ILLEGAL_CHARACTERS_RE.sub("", value))
            text.data_type = "s"  # a string stays a string, even one starting with "="
            return text

        sheet.append([cell(h) for h in headers])
        for row in rows:
            sheet.append([cell(v) for v in row])
    handle = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115 - FileResponse closes it
    workbook.save(handle)
    handle.seek(0)
    return handle


def _step_headers() -> list[str]:
    return [str(step.label) for step in FUNNEL_STEPS]


def _rate_headers() -> list[str]:
    return [_("Visit rate %"), _("Test-drive rate %"), _("Closing rate %")]


def _breakdown_sheet(title: str, first: str, rows: list[dict[str, Any]], label: Any) -> Sheet:
    return (
        title,
        [first, *_step_headers(), *_rate_headers()],
        [
            [
                label(row),
                *[row["steps"][step.value] for step in FUNNEL_STEPS],
                row["visit_rate"],
                row["test_drive_rate"],
                row["close_rate"],
            ]
            for row in rows
        ],
    )


def funnel_workbook(*, figures: dict[str, Any], breakdowns: dict[str, list[dict[str, Any]]]) -> IO[bytes]:
    """`figures` from selectors.funnel, `breakdowns` from selectors.funnel_breakdown by source,
    owner and series: the same numbers as the funnel page."""
    period = figures["period"]
    response = figures["response"]
    steps = figures["steps"]
    sources = dict(Source.choices)
    nobody, none = _("Nobody (the pool)"), _("Not given")
    sheets: list[Sheet] = [
        (
            _("Funnel"),
            [_("Step"), _("Leads")],
            [
                [_("Period"), f"{period.start:%Y-%m-%d} – {period.end:%Y-%m-%d}"],
                *[[s["label"], s["leads"]] for s in steps],
            ],
        ),
        (
            _("Figures"),
            [_("Figure"), _("Value")],
            [
                [_("Visit rate %"), figures["visit_rate"]],
                [_("Test-drive rate %"), figures["test_drive_rate"]],
                [_("Closing rate %"), figures["close_rate"]],
                [_("Leads to orders %"), figures["lead_close_rate"]],
                [_("First response limit (minutes)"), response["limit_minutes"]],
                [_("Median first response (minutes)"), response["median_minutes"]],
                [_("Responded"), response["responded"]],
                [_("Responded within the limit"), response["within_limit"]],
                [_("Not answered, past the limit"), response["overdue_unanswered"]],
                [_("Share within the limit %"), response["within_share"]],
                [_("Defeats waiting for approval"), figures["pending_defeats"]],
                [_("Leads in the pool (now)"), figures["pool"]],
            ],
        ),
        (
            _("Lead ageing"),
            [_("Age (days)"), _("Open leads")],
            [
                [f"{a['from_days']}–{a['to_days']}" if a["to_days"] is not None else f"{a['from_days']}+", a["leads"]]
                for a in figures["ageing"]
            ],
        ),
        (
            _("Defeat reasons"),
            [_("Reason"), _("Leads")],
            [[d["label"] or d["reason"], d["leads"]] for d in figures["defeats"]],
        ),
        (
            _("Competitors"),
            [_("Brand"), _("Model"), _("Leads")],
            [[c["competitor_brand"], c["competitor_model"], c["leads"]] for c in figures["competitors"]],
        ),
        _breakdown_sheet(
            _("By source"), _("Source"), breakdowns["source"], lambda r: str(sources.get(r["key"], r["key"]))
        ),
        _breakdown_sheet(_("By consultant"), _("Consultant"), breakdowns["owner"], lambda r: r["label"] or nobody),
        _breakdown_sheet(_("By model"), _("Model"), breakdowns["series"], lambda r: r["label"] or none),
    ]
    return _workbook(sheets)


def lead_workbook(*, viewer: Membership, leads: QuerySet[Lead]) -> IO[bytes]:
    headers = [
        _("Lead no."),
        _("Name"),
        _("Mobile"),
        _("Source"),
        _("Stage"),
        _("Intent level"),
        _("Consultant"),
        _("Brand"),
        _("Model"),
        _("Captured"),
        _("Last contact"),
        _("Next follow-up"),
        _("Defeat"),
    ]
    zone = timezone.get_current_timezone()

    def local(value: Any) -> Any:
        # Excel has no time zones: the dealership's wall-clock time, as on the pages
        return timezone.localtime(value, zone).replace(tzinfo=None) if value else None

    def rows() -> Iterable[list[Any]]:
        for lead in leads.select_related("owner__user")[:LEAD_LIMIT].iterator(chunk_size=2000):
            yield [
                lead.pk,
                lead.name,
                lead_mobile_shown(viewer=viewer, lead=lead),
                lead.get_source_display(),
                lead.get_stage_display(),
                lead.level,
                lead.owner.display_name if lead.owner else "",
                lead.brand,
                lead.series,
                local(lead.created_at),
                local(lead.last_contact_at),
                lead.next_followup_on,
                lead.get_defeat_status_display() if lead.defeat_status else "",
            ]

    return _workbook([(_("Leads"), headers, rows())])
