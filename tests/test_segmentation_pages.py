"""Segmentation pages and API: who sees what, drill-downs, settings with field errors, recompute now."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache

from crm.core.models import NightlyRun
from crm.tenancy.models import AuditAction, AuditEvent
from segmentation.engine import progress_key, segmentation_recompute
from segmentation.models import CustomerValue, SegmentationSettings
from segmentation.nightly import STEP
from tests.factories import CustomerFactory, OrderFactory

RUN_DAY = date(2026, 3, 1)


def _book(dealer: Any, in_tenant: Any, *, customers: int = 20) -> list[Any]:
    """`customers` buyers of rising value (half owned by the consultant), then one run."""
    made = []
    with in_tenant(dealer):
        for i in range(customers):
            owner = dealer.consultant if i % 2 == 0 else dealer.consultant2
            customer = CustomerFactory(name=f"价值客户{i:02d}", owner=owner)
            for k in range(1 + i % 5):
                OrderFactory(
                    customer=customer,
                    kind="maintenance",
                    ordered_on=RUN_DAY - timedelta(days=10 + 37 * k + i),
                    amount=Decimal(800 + 400 * i),
                )
            made.append(customer)
        segmentation_recompute(run_date=RUN_DAY)
    return made


def test_overview_shows_tiers_with_strategies_grid_and_segments(dealer_a, web, in_tenant):
    _book(dealer_a, in_tenant)
    page = web(dealer_a.manager).get("/segmentation/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="tier-key"' in html and 'data-testid="rf-grid"' in html
    assert "机密策略DEALERA" in html  # the dealership's own key strategy (conftest)
    assert "Keep the cost of care low" in html or "保持较低的关怀成本" in html  # standard maintain strategy
    tiers = {row.tier: row.customers for row in page.context["tiers"]}
    with in_tenant(dealer_a):
        for tier, count in tiers.items():
            if tier:
                assert CustomerValue.objects.filter(tier=tier).count() == count
    grid_total = sum(cell.customers for row in page.context["grid"] for cell in row)
    with in_tenant(dealer_a):
        assert grid_total == CustomerValue.objects.exclude(r_score=None).count()


@pytest.mark.parametrize("role", ["consultant", "advisor", "admin"])
def test_overview_is_for_managers_agents_and_auditors(dealer_a, web, role):
    assert web(getattr(dealer_a, role)).get("/segmentation/").status_code == 403


def test_consultant_lists_only_own_customers_by_tier(dealer_a, web, in_tenant):
    made = _book(dealer_a, in_tenant)
    own = {c.name for c in made[::2]}
    page = web(dealer_a.consultant).get("/segmentation/customers/")
    assert page.status_code == 200
    names = {value.customer.name for value, _mobile, _days in page.context["rows"]}
    assert names and names <= own | {"机密客户DEALERA"}
    assert not names & {c.name for c in made[1::2]}


def test_tier_list_shows_the_strategy_and_filters(dealer_a, web, in_tenant):
    _book(dealer_a, in_tenant)
    client = web(dealer_a.manager)
    page = client.get("/segmentation/customers/", {"tier": "key"})
    assert page.status_code == 200 and page.context["strategy"] == "机密策略DEALERA"
    assert page.context["rows"] and all(v.tier == "key" for v, _m, _d in page.context["rows"])
    cell = client.get("/segmentation/customers/", {"r": 5, "f": 1})
    assert all(v.r_score == 5 and v.f_score == 1 for v, _m, _d in cell.context["rows"])
    bad = client.get("/segmentation/customers/", {"tier": "platinum", "r": "9"})
    assert bad.status_code == 200 and {"tier", "r"} <= set(bad.context["form"].errors)


def test_migration_matrix_and_its_drill_down(dealer_a, web, in_tenant):
    made = _book(dealer_a, in_tenant)
    with in_tenant(dealer_a):  # the cheapest customer becomes a big spender a month later
        old_tier = CustomerValue.objects.get(customer=made[0]).tier
        OrderFactory(customer=made[0], kind="vehicle_sale", ordered_on=RUN_DAY + timedelta(days=20), amount=900000)
        segmentation_recompute(run_date=RUN_DAY + timedelta(days=30))
        new_tier = CustomerValue.objects.get(customer=made[0]).tier
    client = web(dealer_a.manager)
    later = (RUN_DAY + timedelta(days=30)).isoformat()
    page = client.get("/segmentation/migration/", {"from_date": RUN_DAY.isoformat(), "to_date": later})
    matrix = page.context["matrix"]
    assert old_tier in ("maintain", "exit") and new_tier == "key"
    assert matrix.cell(old_tier, new_tier) >= 1 and matrix.moved_up >= 1
    assert f'data-cell="{old_tier}-{new_tier}"' in page.content.decode()
    drill = client.get(
        "/segmentation/customers/",
        {"from_date": RUN_DAY.isoformat(), "from_tier": old_tier, "to_date": later, "to_tier": new_tier},
    )
    assert made[0].name in {v.customer.name for v, _m, _d in drill.context["rows"]}
    wrong = client.get("/segmentation/migration/", {"from_date": later, "to_date": RUN_DAY.isoformat()})
    assert wrong.status_code == 200 and "to_date" in wrong.context["form"].errors


def test_settings_page_saves_audits_and_reports_field_errors(dealer_a, web, in_tenant):
    client = web(dealer_a.manager)
    form = {
        "scoring_mode": "thresholds",
        "window_months": 24,
        "recency_days": "30,90,180,365",
        "frequency_limits": "2,4,6,10",
        "monetary_limits": "5000,20000,80000,200000",
        "share_key": 20,
        "share_consolidate": 30,
        "share_maintain": 30,
        "share_exit": 20,
        "red_list_effect": "always_key",
        "dormant_after_days": 300,
        "lost_after_days": 600,
        "loyal_min_orders": 6,
        "strategy_key": "专属服务",
    }
    saved = client.post("/segmentation/settings/", form)
    assert saved.status_code == 302
    with in_tenant(dealer_a):
        settings = SegmentationSettings.objects.get()
        assert settings.scoring_mode == "thresholds" and settings.monetary_limits[-1] == Decimal("200000")
        event = AuditEvent.objects.filter(action=AuditAction.SEGMENTATION_SETTINGS_CHANGED).get()
        assert event.data["share_key"] == {"from": 15, "to": 20}
    bad = client.post(
        "/segmentation/settings/",
        form | {"share_exit": 25, "recency_days": "90,30,180,365", "lost_after_days": 100},
    )
    assert bad.status_code == 200
    errors = bad.context["form"].errors
    assert {"share_exit", "recency_days", "lost_after_days"} <= set(errors)
    with in_tenant(dealer_a):
        assert SegmentationSettings.objects.get().share_exit == 20  # nothing saved
    assert web(dealer_a.agent).get("/segmentation/settings/").status_code == 403


def test_recompute_now_queues_the_step_and_shows_progress(dealer_a, web, in_tenant, django_capture_on_commit_callbacks):
    client = web(dealer_a.manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/segmentation/run/")
    assert response.status_code == 302
    with in_tenant(dealer_a):
        runs = list(NightlyRun.objects.filter(step=STEP).order_by("-id"))
        assert runs and runs[0].status == NightlyRun.Status.SUCCEEDED and runs[0].trigger == "manual"
        # a run in progress: the panel polls and shows the phase
        NightlyRun.objects.create(step=STEP, run_date=RUN_DAY, trigger="manual")
    cache.set(progress_key(dealer_a.tenant.pk), {"phase": "scores", "step": 2, "of": 5, "seconds": 1.5})
    status = client.get("/segmentation/run/status/")
    assert b'data-testid="run-progress"' in status.content and b"every 2s" in status.content
    again = client.post("/segmentation/run/", follow=True)
    assert "wait for it to finish" in again.content.decode() or "等待" in again.content.decode()
    assert web(dealer_a.agent).post("/segmentation/run/").status_code == 403


def test_customer_page_shows_value_panel_with_tier_history(dealer_a, web, in_tenant):
    made = _book(dealer_a, in_tenant, customers=6)
    page = web(dealer_a.consultant).get(f"/customers/{made[4].pk}/")
    html = page.content.decode()
    assert 'data-testid="value-panel"' in html and 'data-testid="tier-history"' in html
    with in_tenant(dealer_a):
        value = CustomerValue.objects.get(customer=made[4])
    assert f"RFM {value.rfm_code}" in html


# --- API ---------------------------------------------------------------------------------------------


def test_api_values_follow_visibility_and_filters(dealer_a, api, in_tenant):
    made = _book(dealer_a, in_tenant)
    manager = api(dealer_a.manager)
    everything = manager.get("/api/v1/segmentation/values/", {"page_size": 100}).json()["results"]
    assert len(everything) == len(made) + 1
    key = manager.get("/api/v1/segmentation/values/", {"tier": "key"}).json()["results"]
    assert key and all(row["tier"] == "key" for row in key)
    mine = api(dealer_a.consultant).get("/api/v1/segmentation/values/", {"page_size": 100}).json()["results"]
    assert {row["customer"] for row in mine} == {c.pk for c in made[::2]} | {dealer_a.objects["customer"].pk}
    detail = manager.get(f"/api/v1/segmentation/values/{made[3].pk}/").json()
    assert detail["history"] and detail["rfm_code"] == detail["history"][0]["rfm_code"]
    hidden = api(dealer_a.consultant).get(f"/api/v1/segmentation/values/{made[3].pk}/")
    assert hidden.status_code == 404
    bad = manager.get("/api/v1/segmentation/values/", {"tier": "gold"})
    assert bad.status_code == 400 and "tier" in bad.json()["error"]["fields"]


def test_api_distribution_migration_runs_and_settings(dealer_a, api, in_tenant, django_capture_on_commit_callbacks):
    _book(dealer_a, in_tenant)
    manager = api(dealer_a.manager)
    distribution = manager.get("/api/v1/segmentation/distribution/").json()
    assert distribution["run"]["run_date"] == RUN_DAY.isoformat()
    assert [row["tier"] for row in distribution["tiers"][:4]] == ["key", "consolidate", "maintain", "exit"]
    migration = manager.get(
        "/api/v1/segmentation/migration/", {"from_date": RUN_DAY.isoformat(), "to_date": RUN_DAY.isoformat()}
    ).json()
    assert migration["moved_up"] == 0 and migration["total"] == sum(c["customers"] for c in migration["cells"])
    missing = manager.get("/api/v1/segmentation/migration/")
    assert missing.status_code == 400 and "from_date" in missing.json()["error"]["fields"]
    with django_capture_on_commit_callbacks(execute=True):
        started = manager.post("/api/v1/segmentation/runs/")
    assert started.status_code == 202 and started.json()["status"] == "queued"
    assert manager.get("/api/v1/segmentation/runs/state/").json()["status"] == "succeeded"
    assert len(manager.get("/api/v1/segmentation/runs/").json()["results"]) >= 2
    assert api(dealer_a.agent).post("/api/v1/segmentation/runs/").status_code == 403
    assert api(key=dealer_a.raw_key).get("/api/v1/segmentation/values/").status_code == 403  # no scope
    changed = manager.patch("/api/v1/segmentation/settings/", {"share_key": 10, "share_exit": 20}, format="json")
    assert changed.status_code == 200 and changed.json()["share_key"] == 10
    refused = manager.patch("/api/v1/segmentation/settings/", {"share_key": 50}, format="json")
    assert refused.status_code == 400 and "share_exit" in refused.json()["error"]["fields"]
    assert api(dealer_a.agent).patch("/api/v1/segmentation/settings/", {"share_key": 10}).status_code == 403
    assert api(dealer_a.agent).get("/api/v1/segmentation/settings/").json()["strategies"]["key"] == "机密策略DEALERA"
