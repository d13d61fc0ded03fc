"""Fast checks of the pure parts: what each choice records, the form's checks, the link
and CSRF tokens, the rate limit, and the link's place in every message."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
from itsdangerous import Signer
from parley_messenger.adapters.preference_links import (
    LinkExpired,
    LinkInvalid,
    PreferenceLinks,
)
from parley_messenger.adapters.templates import TemplateRenderer
from parley_messenger.domain.preference_choices import (
    Choice,
    InvalidChoice,
    consent_change_for,
    page_language,
    preferences_from_form,
)
from parley_messenger.domain.preference_limits import SlidingWindowLimit
from parley_messenger.domain.rendering import (
    MessageLinks,
    RenderedContent,
    compose,
    email_footer,
    sms_footer,
)
from parley_messenger.domain.segments import count_segments
from parley_shared.events import (
    Channel,
    ConsentChangeKind,
    ConsentSource,
    ContactDecision,
    HoldKind,
    ReminderProposed,
    Verdict,
)

NOW = datetime(2026, 11, 24, 13, 30, tzinfo=UTC)
SUBMISSION = uuid.UUID("00000000-0000-4000-8000-000000000001")


def test_each_stop_narrows_to_its_channel_and_stop_all_to_none() -> None:
    kinds = {
        choice: consent_change_for(choice, "d-1", SUBMISSION, NOW)
        for choice in (Choice.STOP_TEXTS, Choice.STOP_EMAILS, Choice.STOP_ALL)
    }
    assert {c: (e.kind, e.channel, e.address) for c, e in kinds.items()} == {
        Choice.STOP_TEXTS: (ConsentChangeKind.OPT_OUT, Channel.SMS, None),
        Choice.STOP_EMAILS: (ConsentChangeKind.OPT_OUT, Channel.EMAIL, None),
        Choice.STOP_ALL: (ConsentChangeKind.OPT_OUT, None, None),
    }
    assert all(e.source is ConsentSource.PREFERENCE_PAGE for e in kinds.values())


def test_hardship_pauses_thirty_days_and_asks_for_a_person() -> None:
    change = consent_change_for(Choice.HARDSHIP, "d-1", SUBMISSION, NOW)
    assert (change.kind, change.hold_kind) == (ConsentChangeKind.HOLD, HoldKind.HARDSHIP)
    assert (change.starts_at, change.ends_at) == (NOW, NOW + timedelta(days=30))
    assert change.details == {"follow_up": "requested"}
    dispute = consent_change_for(Choice.DISPUTE, "d-1", SUBMISSION, NOW)
    assert (dispute.hold_kind, dispute.ends_at) == (HoldKind.DISPUTE, None)


def test_one_submission_is_one_event_and_another_is_another() -> None:
    again = consent_change_for(Choice.STOP_ALL, "d-1", SUBMISSION, NOW + timedelta(seconds=5))
    first = consent_change_for(Choice.STOP_ALL, "d-1", SUBMISSION, NOW)
    other = consent_change_for(Choice.STOP_ALL, "d-1", uuid.uuid4(), NOW)
    other_debtor = consent_change_for(Choice.STOP_ALL, "d-2", SUBMISSION, NOW)
    assert first.event_id == again.event_id
    assert len({first.event_id, other.event_id, other_debtor.event_id}) == 3


def test_the_preference_form_is_read_within_the_lawful_window() -> None:
    chosen = preferences_from_form("email", ["4", "2", "2"], "09:00", "17:30", "es")
    assert chosen.preferred_channel is Channel.EMAIL
    assert chosen.weekdays == (2, 4)
    assert (chosen.earliest, chosen.latest) == (time(9), time(17, 30))
    assert chosen.locale == "es"
    empty = preferences_from_form("", [], "", "", "")
    assert empty.model_dump(exclude_none=True) == {}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        (("fax", [], "", "", ""), "channel"),
        (("", ["0"], "", "", ""), "weekdays"),
        (("", ["monday"], "", "", ""), "weekdays"),
        (("", [], "07:30", "", ""), "earliest"),
        (("", [], "", "21:30", ""), "latest"),
        (("", [], "nine", "", ""), "earliest"),
        (("", [], "12:00", "11:00", ""), "latest"),
        (("", [], "", "", "fr"), "language"),
    ],
)
def test_a_bad_field_is_named(fields: tuple[str, list[str], str, str, str], named: str) -> None:
    with pytest.raises(InvalidChoice, match=f"^{named}:"):
        preferences_from_form(*fields)


def test_page_language_falls_back_to_what_is_known() -> None:
    assert page_language(None, None, "es-US") == "es"
    assert page_language("fr", "es") == "es"
    assert page_language(None) == "en"


def test_a_link_names_its_debtor_and_nothing_else_until_it_expires() -> None:
    links = PreferenceLinks("secret", max_age_seconds=3600)
    token = links.sign("debtor/with odd:chars")
    assert links.debtor_of(token) == "debtor/with odd:chars"
    assert "debtor" not in token  # not in clear, though not secret either
    with pytest.raises(LinkInvalid):
        PreferenceLinks("another secret", 3600).debtor_of(token)
    with pytest.raises(LinkInvalid):
        # A character inside the signature (the last one may only carry padding bits).
        links.debtor_of(token[:-10] + ("A" if token[-10] != "A" else "B") + token[-9:])
    with pytest.raises(LinkExpired):
        PreferenceLinks("secret", max_age_seconds=-1).debtor_of(token)


def test_an_unsubscribe_signature_does_not_open_the_page() -> None:
    unsubscribe = Signer("secret", salt="parley.unsubscribe", sep=".").sign("ZC0x").decode()
    with pytest.raises(LinkInvalid):
        PreferenceLinks("secret", 3600).debtor_of(unsubscribe)


def test_a_csrf_token_fits_one_link_and_one_form() -> None:
    links = PreferenceLinks("secret", 3600)
    token, other = links.sign("d-1"), links.sign("d-2")
    csrf = links.csrf_token(token, SUBMISSION)
    assert links.csrf_valid(token, SUBMISSION, csrf)
    assert not links.csrf_valid(other, SUBMISSION, csrf)
    assert not links.csrf_valid(token, uuid.uuid4(), csrf)
    assert not links.csrf_valid(token, SUBMISSION, "")


def test_the_rate_limit_slides_per_client() -> None:
    limit = SlidingWindowLimit(2, 60.0)
    assert [limit.allow("a", t) for t in (0.0, 1.0, 2.0)] == [True, True, False]
    assert limit.allow("b", 2.0)
    assert limit.allow("a", 60.5)  # the first request left the window


def test_the_rate_limit_stays_bounded_in_memory() -> None:
    limit = SlidingWindowLimit(1, 60.0, max_clients=3)
    for n in range(10):
        assert limit.allow(f"client-{n}", float(n))
    assert len(limit._hits) <= 3


def test_the_footers_carry_the_preference_link() -> None:
    link = "https://pay.parley.example/p/" + "x" * 67
    assert sms_footer("es", link).endswith(f"Sus opciones: {link}")
    assert sms_footer("en", link).endswith(f"Your choices: {link}")
    assert link in email_footer("en", "https://u.example/unsubscribe", link)
    assert link in email_footer("es", "https://u.example/unsubscribe", link)


def _sms(body: str, locale: str) -> ContactDecision:
    proposal = ReminderProposed(
        debtor_id="d-1",
        proposal_id=uuid.uuid4(),
        campaign_id="c",
        campaign_version=1,
        step=0,
        channel=Channel.SMS,
        address="+12125550100",
        template="t",
        locale=locale,
    )
    return ContactDecision(
        debtor_id="d-1",
        proposal_id=proposal.proposal_id,
        verdict=Verdict.APPROVED,
        rule_set_version="test",
        proposal=proposal,
        lawful_until=NOW + timedelta(hours=1),
    )


def test_an_sms_carries_the_link_when_it_fits_and_never_goes_over_the_limit() -> None:
    link = "https://pay.parley.example/p/" + "x" * 67
    links = MessageLinks(unsubscribe="u", status_callback="s", preferences=link)
    short = compose(
        _sms("Hello.", "en"), RenderedContent("Hello."), now=NOW, links=links, max_sms_segments=6
    )
    assert short.body.endswith(link)
    # A Spanish text already at six UCS-2 segments has no room: it goes without the link.
    long_body = "Información " * 15
    full = compose(
        _sms(long_body, "es"),
        RenderedContent(long_body),
        now=NOW,
        links=links,
        max_sms_segments=6,
    )
    assert link not in full.body
    assert "STOP" in full.body
    assert count_segments(full.body).segments <= 6


@pytest.mark.parametrize("locale", ["en", "es"])
def test_the_stock_first_notice_text_carries_the_preference_link(locale: str) -> None:
    """The shipped templates leave room for the system's disclosure, STOP line and link."""
    renderer = TemplateRenderer()
    variables = {
        "name": "Maria Example",
        "creditor": "Northwind Lending",
        "reference": "NW-2044-17",
        "balance": "$412.80",
    }
    content = renderer.render("first-notice", Channel.SMS, locale, variables)
    link = "https://pay.parley.example/p/" + "x" * 67
    links = MessageLinks(unsubscribe="u", status_callback="s", preferences=link)
    message = compose(_sms("", locale), content, now=NOW, links=links, max_sms_segments=6)
    assert message.body.endswith(link)
    assert message.body.count("cobrador de deudas" if locale == "es" else "debt collector") == 1
    assert count_segments(message.body).segments <= 6
