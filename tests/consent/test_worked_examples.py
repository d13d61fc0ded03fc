"""Every worked example of contact-rules.md, as a JSON case through ``evaluate_case``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from parley_consent.domain.evaluation import evaluate_case

NEW_YORK = ZoneInfo("America/New_York")


def iso(instant: datetime) -> str:
    return instant.isoformat()


def utc_text(instant: datetime) -> str:
    """How the decision JSON writes an instant: UTC with a Z."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def case(
    now: datetime, history: list[dict[str, Any]] | None = None, **fields: Any
) -> dict[str, Any]:
    proposal: dict[str, Any] = {
        "debtor_id": "d-1",
        "proposal_id": str(uuid.uuid4()),
        "campaign_id": "c-1",
        "campaign_version": 1,
        "step": 0,
        "channel": "sms",
        "address": "+12125550100",
        "country": "US",
        "template": "reminder-1",
        "address_facts": {
            "provenance": "consumer_consented",
            "consent_evidence": "form-1",
            "confirmed_at": iso(now - timedelta(days=3)),
        },
    }
    debtor = fields.pop("debtor", {})
    proposal.update(fields)
    return {"proposal": proposal, "debtor": debtor, "history": history or [], "now": iso(now)}


def eastern(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=NEW_YORK)


def rule_ids(decision: dict[str, Any]) -> list[str]:
    return [reason["rule_id"] for reason in decision["reasons"]]


# 1. Phone 212 (New York), address Los Angeles.


def test_1_new_york_phone_los_angeles_address_at_1030_eastern_defers_to_1100_eastern() -> None:
    decision = evaluate_case(case(eastern("2026-06-10T10:30"), postal_code="90001"))
    assert decision["verdict"] == "deferred"
    assert decision["defer_until"] == utc_text(eastern("2026-06-10T11:00"))
    assert rule_ids(decision) == ["US-F-TZ", "US-F-TIME"]
    assert sorted(decision["evidence"]["zones"]) == ["America/Los_Angeles", "America/New_York"]


def test_1_same_debtor_at_2105_eastern_is_refused_until_1100_eastern_next_day() -> None:
    decision = evaluate_case(case(eastern("2026-06-10T21:05"), postal_code="90001"))
    assert decision["verdict"] == "deferred"
    assert "US-F-TIME" in rule_ids(decision)
    assert decision["defer_until"] == utc_text(eastern("2026-06-11T11:00"))


# 2. Daylight saving starts on Sunday 2026-03-08 in New York.


def test_2_saturday_before_dst_1230z_is_0730_est_and_defers_to_1300z() -> None:
    decision = evaluate_case(
        case(datetime(2026, 3, 7, 12, 30, tzinfo=UTC), time_zone="America/New_York")
    )
    assert decision["verdict"] == "deferred"
    assert decision["defer_until"] == "2026-03-07T13:00:00Z"


def test_2_sunday_of_dst_1230z_is_0830_edt_and_allowed() -> None:
    decision = evaluate_case(
        case(datetime(2026, 3, 8, 12, 30, tzinfo=UTC), time_zone="America/New_York")
    )
    assert decision["verdict"] == "approved"


# 3. Approved at 20:59:30 local, dispatched at 21:00:10.


def test_3_approval_at_205930_is_lawful_only_until_2100() -> None:
    decision = evaluate_case(case(eastern("2026-06-10T20:59:30"), time_zone="America/New_York"))
    assert decision["verdict"] == "approved"
    assert decision["lawful_until"] == utc_text(eastern("2026-06-10T21:00"))


def test_3_recheck_at_dispatch_210010_refuses_and_defers_to_0800_next_day() -> None:
    decision = evaluate_case(case(eastern("2026-06-10T21:00:10"), time_zone="America/New_York"))
    assert decision["verdict"] == "deferred"
    assert rule_ids(decision) == ["US-F-TIME"]
    assert decision["defer_until"] == utc_text(eastern("2026-06-11T08:00"))


# 4. "stop emailing me" received by SMS.


def test_4_stop_emailing_me_by_sms_vetoes_email_under_us_f_medium() -> None:
    now = eastern("2026-06-10T12:00")
    opted_out = {"opt_outs": [{"channel": "email", "occurred_at": iso(now - timedelta(hours=1))}]}
    email = evaluate_case(
        case(
            now,
            debtor=opted_out,
            channel="email",
            address="dana@example.com",
            time_zone="America/New_York",
            address_facts={"provenance": "consumer_used"},
        )
    )
    assert email["verdict"] == "vetoed"
    assert rule_ids(email) == ["US-F-MEDIUM"]


def test_4_the_same_opt_out_leaves_sms_allowed() -> None:
    now = eastern("2026-06-10T12:00")
    opted_out = {"opt_outs": [{"channel": "email", "occurred_at": iso(now - timedelta(hours=1))}]}
    sms = evaluate_case(case(now, debtor=opted_out, time_zone="America/New_York"))
    assert sms["verdict"] == "approved"


# 5. Massachusetts: texts on Monday and Wednesday, a third on Friday.


def test_5_third_text_on_friday_is_refused_under_us_ma_until_the_monday_text_ages_out() -> None:
    monday, wednesday = eastern("2026-06-08T12:00"), eastern("2026-06-10T12:00")
    history = [
        {"channel": "sms", "sent_at": iso(sent), "proposal_id": str(uuid.uuid4())}
        for sent in (monday, wednesday)
    ]
    decision = evaluate_case(
        case(eastern("2026-06-12T12:00"), history, region="MA", time_zone="America/New_York")
    )
    assert decision["verdict"] == "deferred"
    assert rule_ids(decision) == ["US-MA"]
    # Monday's text counts for seven local days, Monday to Sunday.
    assert decision["defer_until"] == utc_text(eastern("2026-06-15T08:00"))
    assert {"rule_id": "US-MA", "count": 2, "max": 2, "days": 7, "media": ["sms"]} in decision[
        "evidence"
    ]["counts"]
