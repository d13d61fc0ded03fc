"""The messenger's pure rules, without I/O."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from parley_messenger.domain.dispatch import validity_period_seconds, why_not_dispatchable
from parley_messenger.domain.model import SendRecord, SendStatus, provider_for, report_for
from parley_messenger.domain.rendering import (
    MessageLinks,
    RenderedContent,
    RenderError,
    compose,
    email_footer,
    sms_footer,
    status_callback_url,
    template_candidates,
    unsubscribe_url,
)
from parley_shared.events import Channel, DeliveryStatus

from tests.messenger.factories import NOW, a_decision

LINKS = MessageLinks(
    unsubscribe="https://p.example/unsubscribe/1?token=t",
    status_callback="https://p.example/webhooks/twilio/status?proposal_id=1",
)


def test_template_files_are_tried_from_the_most_specific_locale() -> None:
    assert template_candidates("first-notice", Channel.SMS, "es_MX") == (
        "first-notice/sms.es-mx.j2",
        "first-notice/sms.es.j2",
        "first-notice/sms.en.j2",
    )
    assert template_candidates("first-notice", Channel.EMAIL, "en") == ("first-notice/email.en.j2",)


def test_an_odd_locale_falls_back_to_the_default() -> None:
    assert template_candidates("first-notice", Channel.SMS, "../../etc") == (
        "first-notice/sms.en.j2",
    )


@pytest.mark.parametrize("name", ["../secrets", "First Notice", "", "a/b", "x" * 65])
def test_template_names_cannot_leave_the_templates_directory(name: str) -> None:
    with pytest.raises(RenderError):
        template_candidates(name, Channel.SMS, "en")


def test_the_sms_footer_discloses_and_offers_stop() -> None:
    footer = sms_footer("en")
    assert "We are a debt collector attempting to collect a debt" in footer
    assert "Reply STOP to stop texts to this number." in footer
    assert "STOP" in sms_footer("es-US")
    assert "cobrador de deudas" in sms_footer("es-US")
    assert sms_footer("fr") == sms_footer("en")


def test_the_email_footer_discloses_and_links_the_unsubscribe_page() -> None:
    link = unsubscribe_url("https://parley.example/", uuid.UUID(int=1), "sig")
    assert link == (
        "https://parley.example/unsubscribe/00000000-0000-0000-0000-000000000001?token=sig"
    )
    footer = email_footer("en", link)
    assert "We are a debt collector attempting to collect a debt" in footer
    assert link in footer


def test_an_approval_is_good_until_its_lawful_window_closes() -> None:
    assert why_not_dispatchable(NOW, NOW + timedelta(minutes=5)) is None
    assert why_not_dispatchable(NOW, NOW) is not None
    assert why_not_dispatchable(NOW, NOW - timedelta(seconds=1)) is not None
    # Under a second left: even the shortest ValidityPeriod could outlast the window.
    assert why_not_dispatchable(NOW, NOW + timedelta(milliseconds=999)) is not None
    assert why_not_dispatchable(NOW, None) is not None


@pytest.mark.parametrize(
    ("left", "expected"),
    [
        (timedelta(seconds=1), 1),
        (timedelta(seconds=90, milliseconds=900), 90),  # rounded down, never past the window
        (timedelta(hours=2), 7200),
        (timedelta(hours=10), 36_000),
        (timedelta(days=3), 36_000),  # Twilio's maximum
        (timedelta(milliseconds=10), 1),  # Twilio's minimum
    ],
)
def test_validity_period_is_the_time_left_clamped_to_twilios_range(
    left: timedelta, expected: int
) -> None:
    assert validity_period_seconds(NOW, NOW + left) == expected


def test_an_sms_gets_the_footer_and_a_validity_period() -> None:
    decision = a_decision(channel=Channel.SMS, lawful_until=NOW + timedelta(minutes=30))
    message = compose(
        decision, RenderedContent(body="Hello."), now=NOW, links=LINKS, max_sms_segments=6
    )
    assert message.body == f"Hello.\n\n{sms_footer('en')}"
    assert message.validity_period == 1800
    assert message.status_callback == LINKS.status_callback
    assert message.to == decision.proposal.address
    assert message.subject is None


def test_an_email_gets_the_footer_unsubscribe_headers_and_custom_args() -> None:
    decision = a_decision(channel=Channel.EMAIL, locale="es")
    message = compose(
        decision,
        RenderedContent(body="Hola.", subject="Asunto"),
        now=NOW,
        links=LINKS,
        max_sms_segments=6,
    )
    link = LINKS.unsubscribe
    assert message.body == f"Hola.\n\n{email_footer('es', link)}"
    assert message.subject == "Asunto"
    assert message.headers == {
        "List-Unsubscribe": f"<{link}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert message.custom_args == {
        "proposal_id": str(decision.proposal_id),
        "debtor_id": decision.debtor_id,
    }
    assert message.validity_period is None


def test_a_message_keeps_personal_data_out_of_its_repr() -> None:
    decision = a_decision(channel=Channel.EMAIL)
    message = compose(
        decision,
        RenderedContent(body="Dear Ada", subject="Ada's account"),
        now=NOW,
        links=LINKS,
        max_sms_segments=6,
    )
    text = repr(message)
    assert decision.proposal.address not in text
    assert "Ada" not in text


def test_reports_have_stable_ids_per_outcome() -> None:
    record = SendRecord(
        proposal_id=uuid.uuid4(),
        debtor_id="d-1",
        channel=Channel.SMS,
        status=SendStatus.SENT,
        provider=provider_for(Channel.SMS),
        claimed_at=NOW,
        provider_message_id="SM" + "0" * 32,
        finished_at=NOW + timedelta(seconds=1),
    )
    report = report_for(record)
    assert report.status is DeliveryStatus.SENT
    assert report.provider == "twilio"
    assert report.occurred_at == NOW + timedelta(seconds=1)
    assert report_for(record).event_id == report.event_id
    failed = report_for(record.__class__(**{**record.__dict__, "status": SendStatus.FAILED}))
    assert failed.event_id != report.event_id
    with pytest.raises(ValueError, match="no outcome"):
        report_for(record.__class__(**{**record.__dict__, "status": SendStatus.CLAIMED}))


def test_a_status_callback_url_names_its_proposal() -> None:
    assert status_callback_url("https://p.example/", uuid.UUID(int=2)) == (
        "https://p.example/webhooks/twilio/status?proposal_id=00000000-0000-0000-0000-000000000002"
    )


def test_an_sms_over_the_segment_limit_is_not_composed() -> None:
    decision = a_decision(channel=Channel.SMS)
    long_body = RenderedContent(body="a" * 300)  # 300 + footer: 3 GSM-7 segments
    message = compose(decision, long_body, now=NOW, links=LINKS, max_sms_segments=3)
    assert message.body.startswith("a" * 300)
    with pytest.raises(RenderError, match="3 GSM-7 segments, over the limit of 2"):
        compose(decision, long_body, now=NOW, links=LINKS, max_sms_segments=2)
