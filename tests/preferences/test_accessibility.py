"""Every page of the preference center, checked by axe-core in Chromium at phone and
desktop widths, and photographed for docs/screenshots/preference-center/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]
from parley_shared.events import Channel
from playwright.async_api import Browser, Page, ViewportSize, expect

from tests.preferences.conftest import ACCOUNT, Center, a_proposal
from tests.preferences.test_links_and_forms import expired_token, forged_token

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "preference-center"
WIDTHS: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 900},
    "phone": {"width": 390, "height": 844},
}
CHOICES = {
    "stop-texts": "Stop text messages",
    "stop-emails": "Stop emails",
    "stop-all": "Stop all messages",
    "hardship": "I'm going through a hard time",
    "dispute": "I dispute this debt",
    "preferences": "Save these preferences",
}
AXE = Axe()


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    results = await AXE.run(page)
    violations: list[dict[str, Any]] = results.response["violations"]
    return [v for v in violations if v.get("impact") in ("serious", "critical")]


async def check_and_keep(page: Page, name: str, width: str) -> list[str]:
    found = [f"{name}/{width}: {v['id']}: {v['help']}" for v in await serious_violations(page)]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}-{width}.png", full_page=True)
    return found


async def test_every_page_has_no_serious_accessibility_violations(
    center: Center, browser: Browser
) -> None:
    problems: list[str] = []
    for width, viewport in WIDTHS.items():
        context = await browser.new_context(viewport=viewport)
        page = await context.new_page()
        debtor = f"axe-{width}"
        # A message first, so the page shows the account it was about.
        sent = a_proposal(debtor, Channel.SMS, address=f"+1212555{len(width):04d}")
        await center.propose(sent)
        await center.sent_link(sent.address)
        await page.goto(center.url_for(debtor))
        await expect(page.locator("main")).to_contain_text(ACCOUNT["creditor"])
        assert await page.locator("html").get_attribute("lang") == "en"
        problems += await check_and_keep(page, "landing", width)
        await page.goto(center.url_for(debtor) + "?lang=es")
        problems += await check_and_keep(page, "landing-es", width)
        for choice, button in CHOICES.items():
            await page.goto(center.url_for(debtor))
            await page.get_by_role("button", name=button).click()
            assert await page.get_by_role("heading", level=1).text_content() == "Saved"
            problems += await check_and_keep(page, f"done-{choice}", width)
        await page.goto(f"{center.messenger_url}/p/{expired_token(debtor)}")
        problems += await check_and_keep(page, "expired-link", width)
        await page.goto(f"{center.messenger_url}/p/{forged_token(center, debtor)}")
        problems += await check_and_keep(page, "forged-link", width)
        await context.close()
    assert problems == []


async def test_the_accessibility_check_does_catch_a_serious_problem(browser: Browser) -> None:
    # A control check: the same harness on an unlabelled field must report it.
    context = await browser.new_context()
    page = await context.new_page()
    await page.set_content("<!doctype html><html><body><input type='text'></body></html>")
    found = {v["id"] for v in await serious_violations(page)}
    await context.close()
    assert {"label", "html-has-lang"} <= found
