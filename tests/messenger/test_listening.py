"""The messenger's endpoints against the stand-ins' signed callbacks, the real broker and
PostgreSQL: receipts, inbound STOP and friends, one-click unsubscribe, and the opt-out
check at dispatch."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from parley_cli.local.ports import free_port
from parley_sandbox.callbacks import twilio_signature
from parley_shared.events import (
    Channel,
    ConsentChanged,
    ConsentChangeKind,
    ConsentSource,
)
from parley_shared.settings import KafkaSettings

from tests.messenger.conftest import EventWebhookKeys, Stack, running_stack
from tests.messenger.factories import NOW, SMS_OK, a_decision

UNDELIVERED = "+15005550030"  # the stand-in reports 30007 (carrier filtering) for it
FREE_TEXT_OPT_OUTS = [
    "Stop texting me pls!!",
    "sToP",
    "No más",
    "please opt me out",
    "STOPALL",
]


async def test_status_callbacks_become_delivery_reports(stack: Stack) -> None:
    delivered = a_decision(address=SMS_OK)
    filtered = a_decision(address=UNDELIVERED)
    await stack.decide(delivered, filtered)

    ok = await stack.report_of(delivered.proposal_id, "delivered")
    bad = await stack.report_of(filtered.proposal_id, "undelivered")
    assert ok.provider == "twilio"
    assert (bad.error_code, bad.provider) == ("30007", "twilio")
    (message,) = [m for m in await stack.messages() if m["to"] == [SMS_OK]]
    assert ok.provider_message_id == message["message_id"]

    response = await stack.messenger.get(f"/v1/debtors/{filtered.debtor_id}/deliveries")
    deliveries = response.json()["deliveries"]
    assert [d["status"] for d in deliveries] == ["undelivered", "sent"]  # newest first
    assert deliveries[0]["error_code"] == "30007"
    assert set(deliveries[0]) == {
        "proposal_id",
        "channel",
        "status",
        "provider",
        "provider_message_id",
        "error_code",
        "at",
        "trace_id",
    }
    assert UNDELIVERED not in response.text  # no addresses


async def test_every_free_text_opt_out_stops_texts_with_one_confirmation(stack: Stack) -> None:
    numbers = [f"+1415555{index:04d}" for index in range(len(FREE_TEXT_OPT_OUTS))]
    first = [a_decision(address=number) for number in numbers]
    await stack.decide(*first)
    for decision in first:
        await stack.report_of(decision.proposal_id, "sent")

    for number, body in zip(numbers, FREE_TEXT_OPT_OUTS, strict=True):
        answer = await stack.text_in(number, body)
        assert answer["status"] == 200, body
        (reply,) = answer["replies"]
        assert "START" in reply, body
        # Asking again changes nothing and earns no second confirmation.
        again = await stack.text_in(number, body)
        assert (again["status"], again["replies"]) == (200, []), body

    changes = await stack.consent_changes(at_least=len(numbers) * 2)
    opted_out = {(c.debtor_id, c.address) for c in changes if c.kind is ConsentChangeKind.OPT_OUT}
    assert opted_out == {(d.debtor_id, d.proposal.address) for d in first}
    assert {c.source for c in changes} == {ConsentSource.SMS_REPLY}
    assert {c.channel for c in changes} == {Channel.SMS}

    later = [a_decision(address=number, debtor_id=d.debtor_id) for number, d in zip(numbers, first)]
    await stack.decide(*later)
    for decision in later:
        report = await stack.report_of(decision.proposal_id, "failed")
        assert report.error_code == "opted-out"
    assert len(await stack.messages()) == len(numbers)


async def test_start_opts_back_in_and_help_explains(stack: Stack) -> None:
    decision = a_decision()
    await stack.decide(decision)
    await stack.report_of(decision.proposal_id, "sent")

    help_answer = await stack.text_in(SMS_OK, "HELP")
    (help_text,) = help_answer["replies"]
    assert "STOP" in help_text
    await stack.text_in(SMS_OK, "STOP")
    back = await stack.text_in(SMS_OK, "START")
    (confirmation,) = back["replies"]
    assert "again" in confirmation

    again = a_decision(debtor_id=decision.debtor_id)
    await stack.decide(again)
    await stack.report_of(again.proposal_id, "sent")
    kinds = [c.kind for c in await stack.consent_changes(at_least=2)]
    assert kinds == [ConsentChangeKind.OPT_OUT, ConsentChangeKind.OPT_IN]


async def test_stop_emailing_me_by_text_stops_email_only(stack: Stack) -> None:
    sms = a_decision(channel=Channel.SMS)
    await stack.decide(sms)
    await stack.report_of(sms.proposal_id, "sent")
    answer = await stack.text_in(SMS_OK, "please stop emailing me")
    assert answer["replies"] and "email" in answer["replies"][0]

    email = a_decision(channel=Channel.EMAIL, debtor_id=sms.debtor_id)
    text = a_decision(channel=Channel.SMS, debtor_id=sms.debtor_id)
    await stack.decide(email, text)
    assert (await stack.report_of(email.proposal_id, "failed")).error_code == "opted-out"
    await stack.report_of(text.proposal_id, "sent")
    (change,) = await stack.consent_changes(at_least=1)
    assert (change.channel, change.address) == (Channel.EMAIL, None)


async def test_an_opt_out_wins_over_approved_messages_waiting_in_the_queue(
    stack: Stack,
) -> None:
    # Five approved texts for one debtor wait behind a slow first send (one partition).
    debtor = a_decision().debtor_id
    queued = [a_decision(debtor_id=debtor) for _ in range(5)]
    await stack.fault("twilio", "slow", delay_seconds=2.0)
    await stack.decide(*queued)
    for _ in range(100):
        if await stack.rows("SELECT 1 FROM messenger.sends"):
            break
        await asyncio.sleep(0.05)

    answer = await stack.text_in(SMS_OK, "STOP")
    acknowledged = time.time()
    assert answer["status"] == 200

    for decision in queued[1:]:
        report = await stack.report_of(decision.proposal_id, "failed")
        assert report.error_code == "opted-out"
    started_late = [
        m
        for m in await stack.messages()
        if _epoch(m["received_at"]) > acknowledged + 1.0  # invariant 2's one second
    ]
    assert started_late == []
    assert len(await stack.messages()) <= 1


async def test_a_message_whose_window_closed_while_queued_is_not_sent(stack: Stack) -> None:
    debtor = a_decision().debtor_id
    # The simulated clock started at NOW; the second text is approved only until NOW + 2 s
    # and waits behind a first one the provider takes 3 s to accept.
    first = a_decision(debtor_id=debtor, lawful_until=NOW + timedelta(hours=1))
    late = a_decision(debtor_id=debtor, lawful_until=NOW + timedelta(seconds=2))
    await stack.fault("twilio", "slow", delay_seconds=3.0)
    await stack.decide(first, late)
    report = await stack.report_of(late.proposal_id, "expired")
    assert report.provider_message_id is None
    await stack.report_of(first.proposal_id, "sent")
    assert len(await stack.messages()) == 1


async def test_an_opt_out_from_the_consent_topic_stops_later_sends(stack: Stack) -> None:
    decision = a_decision(channel=Channel.EMAIL)
    await stack.publish_consent(
        ConsentChanged(
            occurred_at=NOW,
            debtor_id=decision.debtor_id,
            kind=ConsentChangeKind.OPT_OUT,
            channel=Channel.EMAIL,
            source=ConsentSource.PREFERENCE_PAGE,
            evidence="preference form 1",
        )
    )
    for _ in range(100):
        if await stack.rows("SELECT 1 FROM messenger.suppressions WHERE suppressed"):
            break
        await asyncio.sleep(0.1)
    await stack.decide(decision)
    assert (await stack.report_of(decision.proposal_id, "failed")).error_code == "opted-out"
    assert await stack.messages() == []


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("+15005550004", ConsentChangeKind.OPT_OUT),  # 21610: texted STOP to our number
        ("+15005550001", ConsentChangeKind.ADDRESS_INVALID),  # 21211: not a number
    ],
)
async def test_refusals_that_concern_the_number_become_consent_events(
    stack: Stack, address: str, kind: ConsentChangeKind
) -> None:
    decision = a_decision(address=address)
    await stack.decide(decision)
    report = await stack.report_of(decision.proposal_id, "failed")
    (change,) = await stack.consent_changes(at_least=1)
    assert (change.kind, change.address, change.source) == (kind, address, ConsentSource.PROVIDER)
    assert change.debtor_id == decision.debtor_id
    assert report.error_code in change.evidence


async def test_rate_limits_and_server_errors_are_retried_and_sent_once(stack: Stack) -> None:
    await stack.fault("twilio", "rate_limit", times=2)
    await stack.fault("twilio", "server_error")
    await stack.fault("sendgrid", "rate_limit")
    sms, email = a_decision(), a_decision(channel=Channel.EMAIL)
    await stack.decide(sms, email)
    for decision in (sms, email):
        await stack.report_of(decision.proposal_id, "sent")
    messages = await stack.messages()
    assert sorted(m["provider"] for m in messages) == ["sendgrid", "twilio"]


async def test_a_provider_that_keeps_refusing_is_given_up_on(stack: Stack) -> None:
    await stack.fault("twilio", "unavailable", times=10)
    decision = a_decision()
    await stack.decide(decision)
    report = await stack.report_of(decision.proposal_id, "failed")
    assert report.error_code == "20503"
    assert "gave up after 4 attempts" in (report.detail or "")
    assert await stack.messages() == []


async def test_email_events_become_reports_and_opt_outs(stack: Stack) -> None:
    delivered = a_decision(channel=Channel.EMAIL, address="ada@example.com")
    bounced = a_decision(channel=Channel.EMAIL, address="bounce@example.com")
    dropped = a_decision(channel=Channel.EMAIL, address="dropped@example.com")
    complained = a_decision(channel=Channel.EMAIL, address="spam@example.com")
    await stack.decide(delivered, bounced, dropped, complained)
    await stack.report_of(delivered.proposal_id, "delivered")
    bounce = await stack.report_of(bounced.proposal_id, "failed")
    assert bounce.error_code == "bounce"
    drop = await stack.report_of(dropped.proposal_id, "failed")
    assert drop.error_code == "dropped"
    changes = await stack.consent_changes(at_least=3)
    assert {(c.address, c.kind) for c in changes} == {
        ("bounce@example.com", ConsentChangeKind.ADDRESS_INVALID),
        ("dropped@example.com", ConsentChangeKind.ADDRESS_INVALID),
        ("spam@example.com", ConsentChangeKind.OPT_OUT),
    }
    again = [
        a_decision(channel=Channel.EMAIL, address="BOUNCE@example.com"),
        a_decision(channel=Channel.EMAIL, address="spam@example.com"),
    ]
    await stack.decide(*again)
    for decision in again:
        assert (await stack.report_of(decision.proposal_id, "failed")).error_code == "opted-out"


async def test_one_click_unsubscribe(stack: Stack) -> None:
    decision = a_decision(channel=Channel.EMAIL)
    await stack.decide(decision)
    await stack.report_of(decision.proposal_id, "sent")
    (message,) = await stack.messages()
    link = message["headers"]["List-Unsubscribe"].strip("<>")
    assert link in message["body"]
    assert message["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    parts = urlsplit(link)
    path = f"{parts.path}?{parts.query}"
    forged = f"{parts.path}?token={parse_qs(parts.query)['token'][0][:-2]}xx"

    assert (
        await stack.messenger.post(forged, content=b"List-Unsubscribe=One-Click")
    ).status_code == 403
    page = await stack.messenger.get(path)
    assert page.status_code == 200 and "<form method='post'" in page.text
    assert await stack.rows("SELECT * FROM messenger.suppressions") == []  # GET changes nothing

    answer = await stack.messenger.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200
    (change,) = await stack.consent_changes(at_least=1)
    assert (change.kind, change.channel, change.source) == (
        ConsentChangeKind.OPT_OUT,
        Channel.EMAIL,
        ConsentSource.EMAIL_UNSUBSCRIBE,
    )
    assert change.address == decision.proposal.address
    later = a_decision(channel=Channel.EMAIL)  # another debtor, same mailbox
    await stack.decide(later)
    assert (await stack.report_of(later.proposal_id, "failed")).error_code == "opted-out"


async def test_twilio_webhooks_with_a_bad_signature_are_refused_and_change_nothing(
    stack: Stack,
) -> None:
    decision = a_decision()
    await stack.decide(decision)
    await stack.report_of(decision.proposal_id, "delivered")
    token = stack.settings.twilio.auth_token.get_secret_value()
    inbound_url = f"{stack.messenger_url}/webhooks/twilio/inbound"
    form = {"MessageSid": "SM" + "a" * 32, "From": SMS_OK, "To": "+15005550006", "Body": "STOP"}
    good = twilio_signature(token, inbound_url, form)

    tampered = form | {"From": "+14155550199"}
    for body, signature in [(tampered, good), (form, ""), (form, good[:-4] + "AAA=")]:
        answer = await stack.messenger.post(
            "/webhooks/twilio/inbound", data=body, headers={"X-Twilio-Signature": signature}
        )
        assert answer.status_code == 403
    status_form = {"MessageSid": "SM" + "b" * 32, "MessageStatus": "failed", "ErrorCode": "30007"}
    answer = await stack.messenger.post(
        f"/webhooks/twilio/status?proposal_id={decision.proposal_id}",
        data=status_form,
        headers={"X-Twilio-Signature": good},
    )
    assert answer.status_code == 403
    # SREs see each refusal on /metrics, by endpoint and reason.
    scrape = (await stack.messenger.get("/metrics")).text
    assert (
        'parley_webhook_rejections_total{endpoint="twilio_inbound",reason="bad_signature"} 3.0'
        in scrape
    )
    assert (
        'parley_webhook_rejections_total{endpoint="twilio_status",reason="bad_signature"} 1.0'
        in scrape
    )
    assert await stack.rows("SELECT * FROM messenger.suppressions") == []
    assert await stack.rows("SELECT * FROM messenger.inbound_messages") == []
    assert [r["status"] for r in await stack.rows("SELECT status FROM messenger.receipts")] == [
        "delivered"
    ]

    # The genuine post, twice (a provider's retry): one effect, the same answer.
    answers = [
        await stack.messenger.post(
            "/webhooks/twilio/inbound", data=form, headers={"X-Twilio-Signature": good}
        )
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].text == answers[1].text
    assert len(await stack.rows("SELECT * FROM messenger.inbound_messages")) == 1


def _sign(private_pem: str, timestamp: str, body: bytes) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


async def test_sendgrid_events_good_tampered_and_replayed(stack: Stack) -> None:
    decision = a_decision(channel=Channel.EMAIL)
    await stack.decide(decision)
    sent = await stack.report_of(decision.proposal_id, "sent")
    await stack.report_of(decision.proposal_id, "delivered")
    event = {
        "email": decision.proposal.address,
        "timestamp": int(time.time()),
        "event": "unsubscribe",
        "sg_event_id": "evt-unsub-1",
        "sg_message_id": f"{sent.provider_message_id}.filter0001",
    }
    body = json.dumps([event]).encode()
    now = str(int(time.time()))

    async def post(payload: bytes, timestamp: str, signature: str) -> httpx.Response:
        return await stack.messenger.post(
            "/webhooks/sendgrid/events",
            content=payload,
            headers={
                "Content-Type": "application/json",
                "X-Twilio-Email-Event-Webhook-Signature": signature,
                "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
            },
        )

    signature = _sign(stack.keys.private_pem, now, body)
    tampered = body.replace(b"unsubscribe", b"delivered__")
    stale = str(int(time.time()) - 3600)
    refused = [
        await post(tampered, now, signature),
        await post(body, stale, _sign(stack.keys.private_pem, stale, body)),  # a replay
        await post(body, now, "not base64!"),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403]
    assert await stack.rows("SELECT * FROM messenger.suppressions") == []

    accepted = await post(body, now, signature)
    assert accepted.json() == {"received": 1, "matched": 1}
    assert (await post(body, now, signature)).status_code == 200  # a retry, same effect
    (row,) = await stack.rows("SELECT scope, reason FROM messenger.suppressions")
    assert row["reason"] == "opt_out"
    changes = await stack.consent_changes(at_least=1)
    assert {c.event_id for c in changes} == {changes[0].event_id}


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def test_a_send_with_no_known_outcome_is_listed_for_ops_and_never_resent(
    kafka_settings: KafkaSettings, database_url: str, event_webhook_keys: EventWebhookKeys
) -> None:
    async with running_stack(
        kafka_settings, database_url, event_webhook_keys, send_timeout_seconds=0.5
    ) as stack:
        await stack.fault("twilio", "timeout", delay_seconds=2.0)
        decision = a_decision()
        await stack.decide(decision)
        await stack.report_of(decision.proposal_id, "unknown")
        await stack.decide(decision)  # redelivered: still nothing resent
        listed = (await stack.messenger.get("/v1/deliveries/unknown")).json()["deliveries"]
        assert [d["proposal_id"] for d in listed] == [str(decision.proposal_id)]
        assert "timed out" in listed[0]["detail"]
        await asyncio.sleep(2.5)
        assert len(await stack.messages()) == 1  # the stand-in did take it, once


async def test_template_checks_over_http(stack: Stack) -> None:
    ok = await stack.messenger.post(
        "/v1/template-checks",
        json={
            "template": "first-notice",
            "locale": "es",
            "channel": "sms",
            "variables": ["name", "balance", "creditor", "reference"],
        },
    )
    assert ok.json() == {"ok": True, "problems": []}
    missing = await stack.messenger.post(
        "/v1/template-checks",
        json={"template": "first-notice", "locale": "en", "channel": "email", "variables": []},
    )
    body = missing.json()
    assert body["ok"] is False
    assert {p["reason"].split("'")[1] for p in body["problems"]} == {
        "name",
        "balance",
        "creditor",
        "reference",
    }
    assert all(isinstance(p["line"], int) for p in body["problems"])
    invalid = await stack.messenger.post(
        "/v1/template-checks",
        json={"template": "first-notice", "locale": "en", "channel": "fax"},
    )
    assert invalid.status_code == 422
    assert "channel" in invalid.text


async def test_a_provider_nobody_answers_for_is_retried_then_given_up_on(
    kafka_settings: KafkaSettings, database_url: str, event_webhook_keys: EventWebhookKeys
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # connection refused: nothing was taken
    async with running_stack(
        kafka_settings, database_url, event_webhook_keys, provider_url=nowhere
    ) as stack:
        decision = a_decision()
        await stack.decide(decision)
        report = await stack.report_of(decision.proposal_id, "failed")
    assert report.error_code == "connect-error"
    assert "gave up after 4 attempts" in (report.detail or "")
