"""Reads of surveys: invitations and responses, and the results managers read (CSAT, NPS, the very
good / good / average / poor distribution, per question and section, by month and by person, the
response rate, and the satisfaction × loyalty matrix)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext as _

from crm.core.period import Period
from crm.core.sql import fetch_dict, fetch_dicts
from crm.tenancy.models import Membership
from customers.timeline import TimelineEntry
from surveys.models import Answer, Invitation, Response, SurveyTemplate
from surveys.services import templates_ensure


def invitation_list(*, status: str = "", template: SurveyTemplate | None = None) -> QuerySet[Invitation]:
    invitations = Invitation.objects.select_related("customer", "version__template", "staff__user").order_by(
        "-created_at", "-id"
    )
    if status:
        invitations = invitations.filter(status=status)
    if template is not None:
        invitations = invitations.filter(version__template=template)
    return invitations


def customer_survey_panel(*, customer: Any, viewer: Membership) -> dict[str, Any] | None:
    """The customer page's survey card: recent invitations and answers, and a way to send one."""
    if not (viewer.can("surveys.view") or viewer.can("surveys.send")):
        return None
    invitations = list(
        Invitation.objects.filter(customer=customer).select_related("version__template").order_by("-created_at")[:5]
    )
    responses = {r.invitation_id: r for r in Response.objects.filter(invitation__in=invitations)}
    if viewer.can("surveys.send"):
        templates_ensure()  # the ready-made ones, on first use: a new dealership can send from day one
    return {
        "invitations": [(i, responses.get(i.pk)) for i in invitations],
        "templates": list(
            SurveyTemplate.objects.filter(is_active=True, current_version__isnull=False).order_by("moment", "name")
        ),
        "can_send": viewer.can("surveys.send"),
        "can_view": viewer.can("surveys.view"),
    }


def response_timeline(*, customer: Any, viewer: Membership, limit: int) -> Iterable[TimelineEntry]:
    """The customer's submitted surveys on the timeline, for those who may read survey results: the
    survey's name, the overall rating and the recommendation, linked to the answers."""
    if not viewer.can("surveys.view"):
        return
    responses = (
        Response.objects.filter(customer=customer)
        .select_related("version__template", "staff__user")
        .order_by("-submitted_at", "-id")[:limit]
    )
    for response in responses:
        parts = [_("Survey answered: %(survey)s") % {"survey": response.version.template.name}]
        if response.overall is not None:
            parts.append(_("overall %(score)s/5") % {"score": response.overall})
        if response.nps is not None:
            parts.append(_("recommendation %(score)s/10") % {"score": response.nps})
        yield TimelineEntry(
            at=response.submitted_at,
            kind="survey",
            title=" · ".join(parts),
            detail=_("Low score or detractor.") if response.low_score else "",
            url=reverse("surveys:response", args=[response.pk]),
            staff=response.staff.display_name if response.staff else "",
        )


def response_detail(*, response: Response) -> list[tuple[Any, Answer | None]]:
    answers = {a.question_id: a for a in response.answers.all()}
    return [(q, answers.get(q.pk)) for q in response.version.questions.all()]


# Ratings 1–5 read as the four words customers know: 很好 / 好 / 一般 / 差.
BANDS = (("very_good", 5, 5), ("good", 4, 4), ("average", 3, 3), ("poor", 1, 2))

# Satisfaction × loyalty (domain.md): loyalty is behaviour, taken from the derived lifecycle stage.
LOYALTY_OF_STAGE = {
    "loyal": "high",
    "retained": "high",
    "satisfied": "medium",
    "new": "medium",
    "prospect": "low",
    "dormant": "low",
    "lost": "low",
}


def zone_of(satisfaction: str, loyalty: str) -> str:
    """apostles (very satisfied and loyal), terrorists (very dissatisfied), else indifferent."""
    if satisfaction == "poor":
        return "terrorist"
    if satisfaction == "very_good" and loyalty == "high":
        return "apostle"
    return "indifferent"


def survey_results(*, period: Period, zone: Any, template: SurveyTemplate | None = None) -> dict[str, Any]:
    """Results over responses submitted in the period (dates in the dealership's zone)."""
    start, end = period.bounds(zone)
    params: dict[str, Any] = {
        "start": start,
        "end": end,
        "tz": str(zone),
        "template": template.pk if template else None,
    }
    scope = """r.submitted_at >= %(start)s AND r.submitted_at < %(end)s
               AND (%(template)s::bigint IS NULL OR v.template_id = %(template)s::bigint)"""
    headline = """
        count(*) AS responses,
        avg((r.overall >= 4)::int) FILTER (WHERE r.overall IS NOT NULL) AS csat,
        avg(r.overall) AS overall_avg,
        count(*) FILTER (WHERE r.nps >= 9) AS promoters,
        count(*) FILTER (WHERE r.nps <= 6) AS detractors,
        count(r.nps) AS nps_answers,
        count(*) FILTER (WHERE r.overall = 5) AS very_good,
        count(*) FILTER (WHERE r.overall = 4) AS good,
        count(*) FILTER (WHERE r.overall = 3) AS average,
        count(*) FILTER (WHERE r.overall <= 2) AS poor,
        count(*) FILTER (WHERE r.low_score) AS low_scores
    """
    base = f"FROM surveys_response r JOIN surveys_surveyversion v ON v.id = r.version_id WHERE {scope}"
    result: dict[str, Any] = {}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {headline} {base}", params)
        result["overall"] = _nps(fetch_dict(cursor))
        cursor.execute(
            f"""SELECT to_char(r.submitted_at AT TIME ZONE %(tz)s, 'YYYY-MM') AS label, {headline} {base}
                GROUP BY 1 ORDER BY 1""",
            params,
        )
        result["by_month"] = [_nps(row) for row in fetch_dicts(cursor)]
        cursor.execute(
            f"""SELECT r.staff_id AS staff_id, i.trigger AS trigger, {headline} {
                base.replace(
                    "FROM surveys_response r",
                    "FROM surveys_response r JOIN surveys_invitation i ON i.id = r.invitation_id",
                )
            }
                GROUP BY r.staff_id, i.trigger ORDER BY count(*) DESC""",
            params,
        )
        by_staff = [_nps(row) for row in fetch_dicts(cursor)]
        cursor.execute(
            f"""SELECT q.section, q.key, min(q.text) AS text, q.kind, count(a.id) AS answers,
                       avg(a.number) AS average
                  FROM surveys_answer a
                  JOIN surveys_surveyquestion q ON q.id = a.question_id
                  JOIN surveys_response r ON r.id = a.response_id
                  JOIN surveys_surveyversion v ON v.id = r.version_id
                 WHERE {scope} AND q.kind = 'rating'
                 GROUP BY q.section, q.key, q.kind ORDER BY min(q.position)""",
            params,
        )
        result["questions"] = fetch_dicts(cursor)
        cursor.execute(
            """SELECT count(*) FILTER (WHERE i.sent_at IS NOT NULL) AS sent,
                       count(*) FILTER (WHERE i.status = 'answered') AS answered
                  FROM surveys_invitation i JOIN surveys_surveyversion v ON v.id = i.version_id
                 WHERE i.sent_at >= %(start)s AND i.sent_at < %(end)s
                   AND (%(template)s::bigint IS NULL OR v.template_id = %(template)s::bigint)""",
            params,
        )
        rate = fetch_dict(cursor)
        cursor.execute(
            f"""SELECT latest.overall, c.lifecycle_stage, count(*) AS customers
                  FROM (SELECT DISTINCT ON (r.customer_id) r.customer_id, r.overall
                          FROM surveys_response r JOIN surveys_surveyversion v ON v.id = r.version_id
                         WHERE {scope} AND r.overall IS NOT NULL
                         ORDER BY r.customer_id, r.submitted_at DESC) latest
                  JOIN customers_customer c ON c.id = latest.customer_id
                 GROUP BY 1, 2""",
            params,
        )
        matrix_rows = cursor.fetchall()
    result["response_rate"] = (rate["answered"] / rate["sent"]) if rate["sent"] else None
    result["sent"] = rate["sent"]
    sections: dict[str, list[dict[str, Any]]] = {}
    for question in result["questions"]:
        sections.setdefault(question["section"] or "", []).append(question)
    result["sections"] = [
        {
            "section": name,
            "average": _mean([q["average"] for q in questions], [q["answers"] for q in questions]),
            "questions": questions,
        }
        for name, questions in sections.items()
    ]
    names = {
        m.pk: m.display_name
        for m in Membership.objects.filter(pk__in=[r["staff_id"] for r in by_staff if r["staff_id"]]).select_related(
            "user"
        )
    }
    for row in by_staff:
        row["label"] = names.get(row["staff_id"], "")
    result["by_consultant"] = [r for r in by_staff if r["trigger"] == Invitation.Trigger.DELIVERY]
    result["by_advisor"] = [r for r in by_staff if r["trigger"] == Invitation.Trigger.SERVICE]
    result["matrix"] = _matrix(matrix_rows)
    return result


def _band(overall: int) -> str:
    return next(name for name, low, high in BANDS if low <= overall <= high)


def _matrix(rows: list[tuple[int, str, int]]) -> dict[str, Any]:
    cells: dict[tuple[str, str], int] = {}
    zones: dict[str, int] = {"apostle": 0, "indifferent": 0, "terrorist": 0}
    for overall, stage, customers in rows:
        key = (_band(overall), LOYALTY_OF_STAGE.get(stage, "low"))
        cells[key] = cells.get(key, 0) + customers
        zones[zone_of(*key)] += customers
    loyalty = ["high", "medium", "low"]
    return {
        "loyalty": loyalty,
        "rows": [
            {
                "band": band,
                "cells": [
                    {"loyalty": lo, "customers": cells.get((band, lo), 0), "zone": zone_of(band, lo)} for lo in loyalty
                ],
            }
            for band, _low, _high in BANDS
        ],
        "zones": zones,
    }


def _mean(values: list[Any], weights: list[int]) -> float | None:
    pairs = [(float(v), w) for v, w in zip(values, weights, strict=True) if v is not None and w]
    total = sum(w for _v, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else None


def _nps(row: dict[str, Any]) -> dict[str, Any]:
    answers = row.get("nps_answers") or 0
    row["nps"] = round(100 * (row["promoters"] - row["detractors"]) / answers) if answers else None
    return row
