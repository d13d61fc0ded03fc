"""The preference page in headless Chromium against the real consent and messenger apps,
the real broker and PostgreSQL: what a debtor does there changes what consent decides."""

from __future__ import annotations

from datetime import datetime, timedelta

from parley_shared.events import Channel
from playwright.async_api import Browser, Page, ViewportSize, expect

from tests.preferences.conftest import ACCOUNT, EMAIL, PHONE, Center, a_proposal

PHONE_VIEW: ViewportSize = {"width": 390, "height": 844}


async def open_page(browser: Browser, url: str) -> Page:
    context = await browser.new_context(viewport=PHONE_VIEW, java_script_enabled=False)
    page = await context.new_page()
    await page.goto(url)
    return page


async def test_stop_texts_from_a_sent_message_vetoes_the_next_sms_but_not_email(
    center: Center, browser: Browser
) -> None:
    first = a_proposal("rosa-1", Channel.SMS)
    await center.propose(first)
    assert (await center.decision(first.proposal_id))["verdict"] == "approved"
    link = await center.sent_link(PHONE)

    page = await open_page(browser, link)
    # Who is contacting them and about what, from the message the messenger sent.
    for value in ACCOUNT.values():
        await expect(page.locator("main")).to_contain_text(value)
    await page.get_by_role("button", name="Stop text messages").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Saved")
    await expect(page.get_by_role("status")).to_contain_text("no more text messages")

    sms = a_proposal("rosa-1", Channel.SMS)
    email = a_proposal("rosa-1", Channel.EMAIL)
    await center.propose(sms)
    await center.propose(email)
    sms_decision = await center.decision(sms.proposal_id)
    assert sms_decision["verdict"] == "vetoed"
    assert "US-F-MEDIUM" in {reason["rule_id"] for reason in sms_decision["reasons"]}
    email_decision = await center.decision(email.proposal_id)
    assert email_decision["verdict"] == "approved", email_decision["reasons"]
    await center.sent_link(EMAIL)
    assert sum(PHONE in m["to"] for m in await center.messages()) == 1

    await page.context.close()


async def test_a_hardship_pause_defers_later_proposals_past_its_end(
    center: Center, browser: Browser
) -> None:
    page = await open_page(browser, center.url_for("rosa-2"))
    clicked_at = center.clock.now()
    await page.get_by_role("button", name="I'm going through a hard time").click()
    await expect(page.get_by_role("status")).to_contain_text("paused until")
    await expect(page.get_by_role("status")).to_contain_text("A person will contact you")

    (hold,) = [h for h in (await center.overview("rosa-2"))["holds"] if h["kind"] == "hardship"]
    ends_at = datetime.fromisoformat(hold["ends_at"])
    assert clicked_at + timedelta(days=30) <= ends_at <= clicked_at + timedelta(days=30, minutes=1)

    later = a_proposal("rosa-2", Channel.EMAIL)
    await center.propose(later)
    decision = await center.decision(later.proposal_id)
    assert decision["verdict"] == "deferred", decision["reasons"]
    assert datetime.fromisoformat(decision["defer_until"]) >= ends_at
    assert not [m for m in await center.messages() if EMAIL in m["to"]]
    await page.context.close()


async def test_keyboard_alone_completes_an_opt_out(center: Center, browser: Browser) -> None:
    page = await open_page(browser, center.url_for("rosa-3"))
    focused: list[str] = []
    for _ in range(15):
        await page.keyboard.press("Tab")
        focused.append(await page.evaluate("document.activeElement.textContent.trim()"))
        if focused[-1] == "Stop all messages":
            break
    assert focused[-1] == "Stop all messages", focused
    # The focus ring is visible: the focused control has an outline.
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("no more messages")
    (change,) = await center.page_changes("rosa-3")
    assert (change["kind"], change["channel"]) == ("opt_out", None)
    await page.context.close()


async def test_the_page_speaks_spanish(center: Center, browser: Browser) -> None:
    page = await open_page(browser, center.url_for("rosa-4") + "?lang=es")
    assert await page.locator("html").get_attribute("lang") == "es"
    await page.get_by_role("button", name="Dejar de recibir correos electrónicos").click()
    await expect(page.get_by_role("status")).to_contain_text("no enviaremos más correos")
    (change,) = await center.page_changes("rosa-4")
    assert (change["kind"], change["channel"]) == ("opt_out", "email")
    await page.context.close()


async def test_preferences_and_a_dispute_are_recorded(center: Center, browser: Browser) -> None:
    page = await open_page(browser, center.url_for("rosa-5"))
    await page.get_by_label("Email").check()
    await page.get_by_label("Tuesday").check()
    await page.get_by_label("Thursday").check()
    await page.get_by_label("Not before").select_option("10:00")
    await page.get_by_label("Not after").select_option("18:00")
    await page.get_by_label("Language").select_option("es")
    await page.get_by_role("button", name="Save these preferences").click()
    await expect(page.get_by_role("status")).to_contain_text("preferencias están guardadas")
    saved = (await center.overview("rosa-5"))["preferences"]
    assert saved == {
        "earliest": "10:00:00",
        "latest": "18:00:00",
        "weekdays": [2, 4],
        "preferred_channel": "email",
        "locale": "es",
    }

    await page.get_by_role("link", name="Volver a sus opciones de contacto").click()
    await page.get_by_role("button", name="Disputo esta deuda").click()
    await expect(page.get_by_role("status")).to_contain_text("disputa esta deuda")
    holds = (await center.overview("rosa-5"))["holds"]
    assert [(h["kind"], h["ends_at"]) for h in holds] == [("dispute", None)]
    await page.context.close()
