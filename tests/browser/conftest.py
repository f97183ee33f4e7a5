"""Browser journeys: Debian's chromium driven by Playwright against the live test server."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CRM_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between browser steps are ordinary synchronous code, so Django must not refuse them.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


# Every page of every journey runs under the product's Content-Security-Policy: a violation (an
# inline script or style, a request to another site) is recorded in the page and fails the journey.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI || "inline"} at ${location.pathname}`);
});
"""


@pytest.fixture
def page(browser, live_server) -> Iterator[object]:  # type: ignore[no-untyped-def]
    yield from _checked_page(browser, live_server, viewport={"width": 1280, "height": 860})


# A consultant's phone (the size the issue was found at): 390 × 844 CSS pixels, touch, mobile.
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone_page(browser, live_server) -> Iterator[object]:  # type: ignore[no-untyped-def]
    yield from _checked_page(browser, live_server, viewport=PHONE, is_mobile=True, has_touch=True)


def _checked_page(browser, live_server, **options) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url, locale="zh-CN", **options)
    context.set_default_timeout(15_000)
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    violations: list[str] = []
    page = context.new_page()
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    yield page
    with contextlib.suppress(Exception):  # the page may be gone at teardown; the console log still counts
        violations += page.evaluate("window.__cspViolations || []")
    context.close()
    assert violations == [], f"Content-Security-Policy violations: {violations}"


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


# What a phone-sized page must not do (docs/ui.md, "Lists on a narrow screen"): no visible element
# reaches past the right edge of the screen (also inside a sideways-scrolling box, where it is off
# screen all the same), and no table cell is squeezed to less than two characters' width.
LAYOUT_PROBLEMS = """
() => {
  const width = document.documentElement.clientWidth;
  const problems = [];
  const describe = (el) => `${el.tagName.toLowerCase()}${el.dataset.testid ? "[" + el.dataset.testid + "]" : ""}` +
    ` "${(el.textContent || "").trim().slice(0, 30)}"`;
  const clipped = (el) => {  // inside a box shown to screen readers only (.sr-only, a stacked table's head)
    for (let a = el.parentElement; a; a = a.parentElement) {
      const r = a.getBoundingClientRect();
      if ((r.width < 2 || r.height < 2) && getComputedStyle(a).overflow !== "visible") return true;
    }
    return false;
  };
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width < 2 || box.height < 2) continue;  // hidden, or visually hidden for screen readers
    if (clipped(el)) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden") continue;
    if (box.right > width + 1) problems.push(`${describe(el)} ends at ${Math.round(box.right)} px of ${width}`);
    if ((el.tagName === "TD" || el.tagName === "TH") && (el.textContent || "").trim().length > 2) {
      const inner = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
      if (inner < 2 * parseFloat(style.fontSize)) problems.push(`${describe(el)} is ${Math.round(inner)} px wide`);
    }
  }
  return problems;
}
"""


def layout_problems(page) -> list[str]:  # type: ignore[no-untyped-def]
    return list(page.evaluate(LAYOUT_PROBLEMS))


def sign_in(page, email: str, password: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """Sign in on the sign-in page (the demo's password unless given) and wait until it is left."""
    from django.conf import settings
    from playwright.sync_api import expect

    page.goto("/accounts/sign-in/")
    page.locator("[name=username]").fill(email)
    page.locator("[name=password]").fill(password or settings.CRM_DEMO_PASSWORD)
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("sign-in")).to_have_count(0)
