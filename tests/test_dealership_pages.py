"""Dealership settings and the nightly runs page."""

from __future__ import annotations

from datetime import date

from crm.core import nightly
from crm.core.models import NightlyRun
from crm.tenancy.models import AuditEvent, Tenant


def _settings_post(**overrides):  # type: ignore[no-untyped-def]
    data = {
        "name": "甲店（新名）",
        "time_zone": "Asia/Shanghai",
        "locale": "zh-hans",
        "hours_mon": "08:30-12:00, 13:30-18:00",
        "hours_tue": "08:30-18:00",
        "hours_wed": "08:30-18:00",
        "hours_thu": "08:30-18:00",
        "hours_fri": "08:30-18:00",
        "hours_sat": "09:00-17:00",
        "hours_sun": "",
        "country": "CN",
        "holidays": "2026-12-31\n2026-12-30",
        "makeup_workdays": "2026-10-03",
    }
    data.update(overrides)
    return data


def test_a_manager_saves_hours_and_holidays(dealer_a, web, in_tenant):
    response = web(dealer_a.manager).post("/settings/dealership/", _settings_post())
    assert response.status_code == 302
    tenant = Tenant.objects.get(pk=dealer_a.tenant.pk)
    assert tenant.name == "甲店（新名）"
    assert (
        tenant.business_hours["mon"] == [["08:30", "12:00"], ["13:30", "18:00"]] and tenant.business_hours["sun"] == []
    )
    assert tenant.holidays == ["2026-12-30", "2026-12-31"] and tenant.makeup_workdays == ["2026-10-03"]
    assert tenant.country == "CN"
    with in_tenant(dealer_a):
        assert AuditEvent.objects.filter(action="tenant_settings_changed").exists()


def test_bad_hours_and_dates_get_field_errors_and_change_nothing(dealer_a, web):
    response = web(dealer_a.manager).post(
        "/settings/dealership/",
        _settings_post(hours_tue="18:00-08:00", holidays="2026-13-45", time_zone="Mars/Base", country="XX"),
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert {"hours_tue", "holidays", "time_zone", "country"} <= set(errors)
    assert Tenant.objects.get(pk=dealer_a.tenant.pk).name == dealer_a.tenant.name


def _settings_page_on(client, monkeypatch, moment):  # type: ignore[no-untyped-def]
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: moment)
    return client.get("/settings/dealership/").content.decode()


def test_the_settings_page_warns_when_the_public_calendar_does_not_cover_the_coming_year(dealer_a, web, monkeypatch):
    from datetime import UTC, datetime

    from crm.core.business_time import public_calendar

    client = web(dealer_a.manager)
    last = public_calendar("CN").last_year  # type: ignore[union-attr]
    covered = _settings_page_on(client, monkeypatch, datetime(last - 1, 6, 1, tzinfo=UTC))
    assert 'data-testid="public-holiday-source"' in covered and "holiday-coverage-warning" not in covered
    assert f"{last - 1}-10-01–10-0" in covered  # that year's National Day week, listed as one run
    page = _settings_page_on(client, monkeypatch, datetime(last, 6, 1, tzinfo=UTC))
    assert 'data-testid="holiday-coverage-warning"' in page and str(last + 1) in page
    Tenant.objects.filter(pk=dealer_a.tenant.pk).update(country="ZZ")  # no calendar shipped: nothing to warn of
    assert "holiday-coverage-warning" not in _settings_page_on(client, monkeypatch, datetime(last, 6, 1, tzinfo=UTC))


def test_consultants_cannot_open_dealership_settings_or_nightly_runs(dealer_a, web):
    client = web(dealer_a.consultant)
    assert client.get("/settings/dealership/").status_code == 403
    assert client.post("/settings/nightly/").status_code == 403


def test_a_manager_starts_a_run_and_sees_it(dealer_a, web, in_tenant, django_capture_on_commit_callbacks, monkeypatch):
    page_step = nightly.NightlyStep(name="test.page", run=lambda *, tenant_id, run_date, trigger: 5)
    client = web(dealer_a.manager)
    with nightly.nightly_steps.replaced(page_step), django_capture_on_commit_callbacks(execute=True):
        assert client.post("/settings/nightly/").status_code == 302
    with in_tenant(dealer_a):
        assert NightlyRun.objects.get(step="test.page").rows == 5
        assert NightlyRun.objects.get(step="pipeline").trigger == "manual"
        assert AuditEvent.objects.filter(action="nightly_started").exists()
    page = client.get("/settings/nightly/").content.decode()
    assert "test.page" in page and date.today().isoformat()[:4] in page
