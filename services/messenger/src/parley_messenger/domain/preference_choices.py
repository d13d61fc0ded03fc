"""What each choice on the preference page means as a consent change.

Pure: the page's handler supplies the debtor, the moment and the submission id. The
event id derives from the submission id, so a form sent twice (a double click, a
reload) is one event, which the consent service records once.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from enum import StrEnum

from parley_shared.events import (
    Channel,
    ConsentChanged,
    ConsentChangeKind,
    ConsentSource,
    ContactPreferences,
    HoldKind,
)

HARDSHIP_PAUSE = timedelta(days=30)
# The lawful window the page offers times inside (FDCPA: 08:00 to 21:00 local time).
LAWFUL_EARLIEST = time(8, 0)
LAWFUL_LATEST = time(21, 0)
LANGUAGES = ("en", "es")
CHOICE_NAMESPACE = uuid.UUID("0f6f1a2e-6a55-4c1e-9b7e-5d2f3c8a9b10")


class Choice(StrEnum):
    STOP_TEXTS = "stop-texts"
    STOP_EMAILS = "stop-emails"
    STOP_ALL = "stop-all"
    HARDSHIP = "hardship"
    DISPUTE = "dispute"
    PREFERENCES = "preferences"


class InvalidChoice(ValueError):
    """A form field the page cannot accept; the message names the field."""


def event_id_for(debtor_id: str, choice: Choice, submission: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(CHOICE_NAMESPACE, f"{debtor_id}|{choice.value}|{submission}")


def consent_change_for(
    choice: Choice,
    debtor_id: str,
    submission: uuid.UUID,
    now: datetime,
    preferences: ContactPreferences | None = None,
) -> ConsentChanged:
    """The event one choice stands for."""
    common = {
        "event_id": event_id_for(debtor_id, choice, submission),
        "occurred_at": now,
        "debtor_id": debtor_id,
        "source": ConsentSource.PREFERENCE_PAGE,
        "evidence": f"preference page form {submission}",
    }
    if choice is Choice.STOP_TEXTS:
        return ConsentChanged(kind=ConsentChangeKind.OPT_OUT, channel=Channel.SMS, **common)
    if choice is Choice.STOP_EMAILS:
        return ConsentChanged(kind=ConsentChangeKind.OPT_OUT, channel=Channel.EMAIL, **common)
    if choice is Choice.STOP_ALL:
        # Channel and address empty: every channel, every address of this debtor.
        return ConsentChanged(kind=ConsentChangeKind.OPT_OUT, **common)
    if choice is Choice.HARDSHIP:
        return ConsentChanged(
            kind=ConsentChangeKind.HOLD,
            hold_kind=HoldKind.HARDSHIP,
            starts_at=now,
            ends_at=now + HARDSHIP_PAUSE,
            details={"follow_up": "requested"},
            **common,
        )
    if choice is Choice.DISPUTE:
        return ConsentChanged(
            kind=ConsentChangeKind.HOLD, hold_kind=HoldKind.DISPUTE, starts_at=now, **common
        )
    if preferences is None:
        raise InvalidChoice("preferences: nothing was chosen")
    return ConsentChanged(kind=ConsentChangeKind.PREFERENCE, preferences=preferences, **common)


def _time_field(name: str, value: str) -> time | None:
    if not value:
        return None
    try:
        chosen = time.fromisoformat(value)
    except ValueError as error:
        raise InvalidChoice(f"{name}: {value!r} is not a time like 09:00") from error
    if not LAWFUL_EARLIEST <= chosen <= LAWFUL_LATEST:
        raise InvalidChoice(f"{name}: choose a time between 08:00 and 21:00")
    return chosen


def preferences_from_form(
    channel: str, weekdays: list[str], earliest: str, latest: str, language: str
) -> ContactPreferences:
    """The preference form's fields, checked; empty fields mean "no preference"."""
    preferred: Channel | None = None
    if channel:
        try:
            preferred = Channel(channel)
        except ValueError as error:
            raise InvalidChoice(f"channel: {channel!r} is not sms or email") from error
    days: tuple[int, ...] | None = None
    if weekdays:
        try:
            days = tuple(sorted({int(day) for day in weekdays}))
        except ValueError as error:
            raise InvalidChoice("weekdays: days are numbers 1 (Monday) to 7 (Sunday)") from error
        if not all(1 <= day <= 7 for day in days):
            raise InvalidChoice("weekdays: days are numbers 1 (Monday) to 7 (Sunday)")
    start = _time_field("earliest", earliest)
    end = _time_field("latest", latest)
    if start is not None and end is not None and end <= start:
        raise InvalidChoice("latest: must be later than earliest")
    if language and language not in LANGUAGES:
        raise InvalidChoice(f"language: choose one of {', '.join(LANGUAGES)}")
    return ContactPreferences(
        preferred_channel=preferred,
        weekdays=days,
        earliest=start,
        latest=end,
        locale=language or None,
    )


def page_language(requested: str | None, *fallbacks: str | None) -> str:
    """The first of the asked-for language and the known ones the page speaks."""
    for candidate in (requested, *fallbacks):
        if candidate:
            language = candidate.strip().lower().replace("_", "-").split("-")[0]
            if language in LANGUAGES:
                return language
    return LANGUAGES[0]
