"""The page's guards over plain HTTP, against the running services: forged and expired
links, double submits, CSRF, bad fields, an unreachable consent service and the rate
limit each change nothing, and say so."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from unittest import mock

import httpx
from parley_messenger.adapters.preference_links import PreferenceLinks
from parley_messenger.bootstrap import create_app as create_messenger
from parley_messenger.settings import MessengerSettings
from parley_shared.events import Channel
from parley_shared.settings import KafkaSettings

from tests.preferences.conftest import EMAIL, LINK_SECRET, Center, a_proposal, form_fields
from tests.support.apps import running_app
from tests.support.kafka import wait_for


def expired_token(debtor_id: str, days_ago: int = 31) -> str:
    """A link the messenger really signed, ``days_ago`` days ago."""
    links = PreferenceLinks(LINK_SECRET, max_age_seconds=30 * 86_400)
    signed_at = datetime.now().timestamp() - days_ago * 86_400
    with mock.patch("itsdangerous.timed.time.time", return_value=signed_at):
        return links.sign(debtor_id)


def forged_token(center: Center, debtor_id: str) -> str:
    genuine = center.links.sign(debtor_id)
    return genuine[:-4] + ("AAAA" if not genuine.endswith("AAAA") else "BBBB")


async def fields_of(center: Center, debtor_id: str) -> tuple[str, dict[str, str]]:
    path = f"/p/{center.links.sign(debtor_id)}"
    page = await center.messenger.get(path)
    assert page.status_code == 200, page.text
    return path, form_fields(page.text)


async def test_forged_and_expired_links_show_what_to_do_and_change_nothing(
    center: Center,
) -> None:
    _, fields = await fields_of(center, "lee-1")
    for token, status, wording in (
        (forged_token(center, "lee-1"), 403, "This link is not valid."),
        (expired_token("lee-1"), 410, "This link has expired."),
        ("not-a-token", 403, "This link is not valid."),
    ):
        page = await center.messenger.get(f"/p/{token}")
        assert page.status_code == status
        assert wording in page.text
        assert "reply STOP" in page.text
        assert "Nothing has been changed" in page.text
        for choice in ("stop-texts", "stop-all", "hardship", "dispute"):
            posted = await center.messenger.post(f"/p/{token}/{choice}", data=fields)
            assert posted.status_code == status, choice
    assert await center.page_changes("lee-1") == []
    assert (await center.overview("lee-1"))["opt_outs"] == []


async def test_a_link_just_inside_its_lifetime_still_works(center: Center) -> None:
    page = await center.messenger.get(f"/p/{expired_token('lee-2', days_ago=29)}")
    assert page.status_code == 200
    assert "Stop text messages" in page.text


async def test_a_double_submit_changes_nothing_twice(center: Center) -> None:
    path, fields = await fields_of(center, "lee-3")
    first, second = await asyncio.gather(
        center.messenger.post(f"{path}/stop-texts", data=fields),
        center.messenger.post(f"{path}/stop-texts", data=fields),
    )
    third = await center.messenger.post(f"{path}/stop-texts", data=fields)
    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    hardship = [await center.messenger.post(f"{path}/hardship", data=fields) for _ in range(2)]
    # Both confirmations name the same end: the second submit found the first pause.
    until = {re.search(r"paused until ([^.]+)\.", r.text).group(1) for r in hardship}  # type: ignore[union-attr]
    assert len(until) == 1

    changes = await center.page_changes("lee-3")
    assert sorted((c["kind"], c["channel"]) for c in changes) == [
        ("hold", None),
        ("opt_out", "sms"),
    ]


async def test_forms_without_their_csrf_token_are_refused(center: Center) -> None:
    path, fields = await fields_of(center, "lee-4")
    _, other_fields = await fields_of(center, "lee-5")
    attempts = [
        {k: v for k, v in fields.items() if k != "csrf"},
        {**fields, "csrf": "x" * 27},
        # A token served on another debtor's link does not fit this one.
        other_fields,
        {**fields, "submission": "not-a-uuid"},
    ]
    for data in attempts:
        refused = await center.messenger.post(f"{path}/stop-all", data=data)
        assert refused.status_code == 403
        assert "Nothing has changed" in refused.text
    assert await center.page_changes("lee-4") == []
    assert await center.page_changes("lee-5") == []


async def test_a_bad_preference_field_is_named_and_changes_nothing(center: Center) -> None:
    path, fields = await fields_of(center, "lee-6")
    for data, field in (
        ({"earliest": "18:00", "latest": "10:00"}, "latest"),
        ({"earliest": "06:00"}, "earliest"),
        ({"channel": "fax"}, "channel"),
        ({"weekdays": "9"}, "weekdays"),
    ):
        refused = await center.messenger.post(f"{path}/preferences", data={**fields, **data})
        assert refused.status_code == 400
        assert field in refused.text
    unknown = await center.messenger.post(f"{path}/call-me-maybe", data=fields)
    assert unknown.status_code == 404
    assert await center.page_changes("lee-6") == []


async def test_one_click_unsubscribe_lands_on_the_records_the_page_shows(
    center: Center,
) -> None:
    email = a_proposal("lee-7", Channel.EMAIL)
    await center.propose(email)
    link = await center.sent_link(EMAIL)
    (message,) = [m for m in await center.messages() if EMAIL in m["to"]]
    unsubscribe = message["headers"]["List-Unsubscribe"].strip("<>")
    clicked = await center.messenger.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert clicked.status_code == 200

    async def page_says_stopped() -> bool:
        page = await center.messenger.get(link)
        return "Emails are stopped." in page.text

    assert await wait_for(page_says_stopped, timeout=30)


async def test_consent_unreachable_means_not_saved(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    settings = MessengerSettings(
        kafka=kafka_settings,
        database_url=database_url,
        consent_url="http://127.0.0.1:9",  # the discard port: nobody answers
        preference_link_secret=LINK_SECRET,
    )
    app = create_messenger(settings)
    links = PreferenceLinks(LINK_SECRET, 86_400)
    token = links.sign("lee-8")
    async with (
        running_app(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://m") as m,
    ):
        page = await m.get(f"/p/{token}")
        assert page.status_code == 200
        # It does not pretend to know what is in force.
        assert "We could not check this just now" in page.text
        assert "No stops or pauses are in force." not in page.text
        posted = await m.post(f"/p/{token}/stop-texts", data=form_fields(page.text))
    assert posted.status_code == 503
    assert "nothing has changed" in posted.text
    assert "Saved" not in posted.text


async def test_token_endpoints_are_rate_limited(kafka_settings: KafkaSettings) -> None:
    app = create_messenger(
        MessengerSettings(kafka=kafka_settings, preference_rate_limit_per_minute=3)
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://m") as m:
        answers = [(await m.get("/p/guessed-token")).status_code for _ in range(5)]
        posted = await m.post("/p/guessed-token/stop-all", data={})
    assert answers == [403, 403, 403, 429, 429]
    assert posted.status_code == 429
