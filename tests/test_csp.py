"""The Content-Security-Policy: strict on every page (no inline script or style, nothing from another
site), report-only when operators ask for it. That the pages work under it is checked by every
browser journey (tests/browser/conftest.py fails a journey on any violation)."""

from __future__ import annotations

from tests.test_settings import PRODUCTION_ENV, _manage

STRICT = ["default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'", "frame-ancestors 'none'"]


def _directives(header: str) -> list[str]:
    return [part.strip() for part in header.split(";")]


def test_every_kind_of_page_carries_the_strict_policy(dealer_a, web, client, api):
    for response in (
        web(dealer_a.manager).get("/"),
        web(dealer_a.manager).get("/segmentation/"),
        client.get("/accounts/sign-in/"),
        client.get(f"/c/{dealer_a.tenant.code}/"),
        api(dealer_a.manager).get("/api/v1/me/"),
    ):
        directives = _directives(response["Content-Security-Policy"])
        assert all(rule in directives for rule in STRICT), directives
        assert "unsafe-inline" not in response["Content-Security-Policy"]
        assert "unsafe-eval" not in response["Content-Security-Policy"]


def test_the_api_documentation_pages_allow_inline_styles_only(db, client):
    for path in ("/api/v1/docs/", "/api/v1/redoc/"):
        header = client.get(path)["Content-Security-Policy"]
        directives = _directives(header)
        assert "script-src 'self'" in directives  # still no inline script
        assert any(d.startswith("style-src") and "'unsafe-inline'" in d for d in directives)


def test_no_template_carries_inline_script_or_style():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "templates"
    offending = []
    for template in root.rglob("*.html"):
        text = template.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", text) or re.search(
            r"\sstyle=|<style|\son[a-z]+=", text
        ):
            offending.append(str(template.relative_to(root)))
    assert offending == []


def test_production_enforces_it_and_operators_can_switch_to_report_only():
    show = (
        "from django.conf import settings; "
        "print(hasattr(settings, 'CONTENT_SECURITY_POLICY'), hasattr(settings, 'CONTENT_SECURITY_POLICY_REPORT_ONLY'))"
    )
    enforced = _manage("shell", "--no-imports", "-c", show, extra_env=PRODUCTION_ENV)
    assert enforced.stdout.split() == ["True", "False"], enforced.stderr
    report_only = _manage(
        "shell",
        "--no-imports",
        "-c",
        show,
        extra_env={**PRODUCTION_ENV, "CSP_REPORT_ONLY": "true", "CSP_REPORT_URI": "/csp-report"},
    )
    assert report_only.stdout.split() == ["False", "True"], report_only.stderr
