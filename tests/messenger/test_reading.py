"""Pure reading rules: inbound texts, template wording and length, retry timing, the
scopes an opt-out covers, and the signatures on links and webhooks."""

from __future__ import annotations

import base64
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from parley_messenger.adapters.signatures import SendGridWebhookVerifier, UnsubscribeLinks
from parley_messenger.adapters.templates import TemplateChecker
from parley_messenger.domain.keywords import Intent, read_inbound
from parley_messenger.domain.retry import RetryPolicy
from parley_messenger.domain.segments import count_segments
from parley_messenger.domain.suppression import (
    address_scope,
    debtor_scope,
    scopes_for_send,
    suppression_change,
)
from parley_messenger.domain.wording import wording_problems
from parley_shared.events import Channel, ConsentChanged, ConsentChangeKind, ConsentSource

from tests.messenger.factories import NOW

VARIABLES = ["name", "balance", "creditor", "reference"]


@pytest.mark.parametrize(
    "body",
    [
        "Stop texting me pls!!",
        "sToP",
        "No más",
        "please opt me out",
        "STOPALL",
        "STOP",
        "unsubscribe",
        "Quit",
        "  cancel ",
        "Don't text me again",
        "No me escriban más, por favor",
        "Basta",
    ],
)
def test_opt_outs_are_recognised_in_any_wording(body: str) -> None:
    reading = read_inbound(body)
    assert reading.intent is Intent.OPT_OUT
    assert reading.channel is Channel.SMS


@pytest.mark.parametrize(
    ("body", "intent"),
    [
        ("START", Intent.OPT_IN),
        ("unstop", Intent.OPT_IN),
        ("HELP", Intent.HELP),
        ("info", Intent.HELP),
        ("I will pay at the end of the month", Intent.NONE),
        ("Can we set up a payment plan?", Intent.NONE),
        ("", Intent.NONE),
    ],
)
def test_other_texts(body: str, intent: Intent) -> None:
    assert read_inbound(body).intent is intent


def test_an_opt_out_of_email_sent_by_text_is_about_email() -> None:
    reading = read_inbound("Please stop emailing me")
    assert (reading.intent, reading.channel) == (Intent.OPT_OUT, Channel.EMAIL)
    assert read_inbound("stop texts and emails").channel is Channel.SMS


def test_spanish_texts_get_spanish_replies() -> None:
    assert read_inbound("No más").language == "es"
    assert read_inbound("stop").language == "en"


def test_threatening_wording_is_found_with_its_line() -> None:
    source = (
        "Hello {{ name }},\n"
        "Pay now or we will take legal action.\n"
        "You could be arrested.\n"
        "Podría ir a la cárcel.\n"
        "FINAL NOTICE: act now!\n"
        "Thank you."
    )
    problems = wording_problems(source)
    assert [(p.line, p.reason.split(":")[0].split(" (")[0]) for p in problems] == [
        (2, "threatens suit"),
        (3, "threatens arrest"),
        (4, "threatens jail or criminal charges over a debt"),
        (5, "false urgency"),
    ]
    assert wording_problems("Hi {{ name }}, about account {{ reference }}.") == []


def write(directory: Path, name: str, text: str) -> None:
    (directory / name.split("/")[0]).mkdir(exist_ok=True)
    (directory / name).write_text(text)


def test_the_shipped_templates_pass_in_both_languages() -> None:
    checker = TemplateChecker(max_sms_segments=6)
    for channel in Channel:
        for locale in ("en", "es", "es-MX", "en-US"):
            assert checker.check("first-notice", locale, channel, VARIABLES) == []


def test_the_template_check_reports_each_problem(tmp_path: Path) -> None:
    write(tmp_path, "bad/sms.en.j2", "Hi {{ name }}.\nPay {{ amount }} or face arrest.\n")
    write(tmp_path, "bad/email.en.j2", "{% block subject %}Hi{% endblock %}")
    write(tmp_path, "broken/sms.en.j2", "Hi {{ name \n")
    write(tmp_path, "long/sms.en.j2", "{{ name }} " + "word " * 200)
    checker = TemplateChecker(tmp_path, max_sms_segments=3)

    problems = checker.check("bad", "en", Channel.SMS, ["name"])
    assert [(p.line, p.reason.split(":")[0].split(",")[0]) for p in problems] == [
        (2, "threatens arrest"),
        (2, "the template uses 'amount'"),
    ]
    (email,) = checker.check("bad", "en", Channel.EMAIL, [])
    assert email.reason == "an email template needs a 'body' block"
    (syntax,) = checker.check("broken", "en", Channel.SMS, ["name"])
    assert syntax.line is not None and syntax.reason.startswith("template syntax")
    (length,) = checker.check("long", "en", Channel.SMS, ["name"])
    assert "over the limit of 3" in length.reason
    (missing,) = checker.check("bad", "de", Channel.SMS, ["name", "amount"])
    assert missing.reason == "no sms template 'bad' for locale 'de'"
    (invalid,) = checker.check("../etc", "en", Channel.SMS, [])
    assert "invalid template name" in invalid.reason


def test_segments_follow_gsm_and_ucs2_rules() -> None:
    assert count_segments("a" * 160).segments == 1
    assert count_segments("a" * 161).segments == 2
    assert count_segments("{" * 80).units == 160  # extension characters take two septets
    assert count_segments("ó" * 70) == count_segments("ó" * 70).__class__("UCS-2", 70, 1)
    assert count_segments("ó" * 71).segments == 2
    assert count_segments("😀" * 36).segments == 2  # two UTF-16 units each


def test_retry_waits_grow_with_jitter_and_respect_the_window() -> None:
    policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=3.0)
    far = NOW + timedelta(hours=1)
    ceilings = [
        policy.delay_before(n, now=NOW, lawful_until=far, draw=lambda low, high: high)
        for n in (2, 3, 4, 5)
    ]
    assert ceilings == [1.0, 2.0, 3.0, None]  # capped, then out of attempts
    floor = policy.delay_before(2, now=NOW, lawful_until=far, draw=lambda low, high: low)
    assert floor == 0.0
    asked = policy.delay_before(2, now=NOW, lawful_until=far, retry_after=2.5)
    assert asked == 2.5  # the provider's Retry-After is a floor
    near = NOW + timedelta(seconds=2)
    assert policy.delay_before(2, now=NOW, lawful_until=near, retry_after=1.5) is None


def test_an_opt_out_scope_follows_the_change() -> None:
    def change(**fields: object) -> ConsentChanged:
        base: dict[str, object] = {
            "debtor_id": "d-1",
            "kind": ConsentChangeKind.OPT_OUT,
            "source": ConsentSource.OPERATOR,
            "evidence": "e",
            "occurred_at": NOW,
        }
        return ConsentChanged.model_validate(base | fields)

    every = suppression_change(change())
    assert every is not None and every.scope == debtor_scope("d-1", None)
    email = suppression_change(change(channel=Channel.EMAIL))
    assert email is not None and email.scope == "debtor:d-1:email"
    number = suppression_change(change(address="+15005550006"))
    assert number is not None and number.scope == address_scope(Channel.SMS, "+15005550006")
    mailbox = suppression_change(change(address="Ada@Example.com"))
    assert mailbox is not None and mailbox.scope == "address:email:ada@example.com"
    opt_in = suppression_change(change(kind=ConsentChangeKind.OPT_IN))
    assert opt_in is not None and not opt_in.suppressed
    assert suppression_change(change(kind=ConsentChangeKind.HOLD)) is None
    assert set(scopes_for_send("d-1", Channel.EMAIL, "ADA@example.com")) == {
        "debtor:d-1:*",
        "debtor:d-1:email",
        "address:email:ada@example.com",
    }


def test_unsubscribe_tokens_are_bound_to_their_proposal() -> None:
    links = UnsubscribeLinks("secret")
    proposal = uuid.uuid4()
    token = links.sign(proposal)
    assert links.valid(proposal, token)
    assert not links.valid(uuid.uuid4(), token)
    # A character in the middle: the last one of base64 can carry unused bits.
    middle = len(token) // 2
    tampered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    assert not links.valid(proposal, tampered)
    assert not UnsubscribeLinks("another secret").valid(proposal, token)


def test_event_webhook_signatures_are_checked_with_their_age() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    verifier = SendGridWebhookVerifier(public, max_age=600)
    body = b'[{"event": "delivered"}]'
    now = int(time.time())

    def signed(timestamp: int, payload: bytes = body) -> str:
        raw = private.sign(str(timestamp).encode() + payload, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(raw).decode()

    assert verifier.valid(body, signed(now), str(now))
    assert not verifier.valid(body + b" ", signed(now), str(now))
    assert not verifier.valid(body, signed(now - 601), str(now - 601))  # a replay
    assert not verifier.valid(body, "%%%", str(now))
    assert not verifier.valid(body, signed(now), "yesterday")
    assert not SendGridWebhookVerifier(None, max_age=600).valid(body, signed(now), str(now))
