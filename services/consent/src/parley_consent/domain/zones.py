"""Where the debtor may be: candidate time zones from the evidence a proposal carries.

An explicit IANA zone settles it. Otherwise the postal code (US ZIP) and every known
phone number each name zones; when they disagree, every zone named is a candidate
(Reg F comment 6(b)(1)(i): only times convenient in all of them). With no evidence at
all, every zone of the country is a candidate.

Look-ups are memoised: they are pure functions of their argument, and the ZIP table
is loaded once instead of being scanned for each proposal.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import zipcodes
from phonenumbers import timezone as phone_timezones

_UNKNOWN_ZONE = "Etc/Unknown"


@dataclass(frozen=True)
class PostalPlace:
    zone: str | None
    state: str | None
    city: str | None


@dataclass(frozen=True)
class ZoneEvidence:
    """The candidate zones and, per kind of evidence, what it said (no personal data)."""

    zones: tuple[str, ...]
    sources: dict[str, list[str]]
    # True when the zones came from evidence about the debtor, False when they are every
    # zone of the country because nothing was known.
    located: bool


@functools.cache
def zone_info(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@functools.cache
def _zip_table() -> dict[str, PostalPlace]:
    return {
        entry["zip_code"]: PostalPlace(
            zone=entry.get("timezone") or None,
            state=entry.get("state") or None,
            city=entry.get("city") or None,
        )
        for entry in zipcodes.list_all()  # type: ignore[no-untyped-call]
    }


def postal_place(country: str, postal_code: str | None) -> PostalPlace | None:
    """The place a US ZIP code names (first five digits), or None when unknown."""
    if country.upper() != "US" or not postal_code:
        return None
    return _zip_table().get(postal_code.strip()[:5])


@functools.lru_cache(maxsize=65536)
def phone_zones(number: str) -> tuple[str, ...]:
    """Zones for an E.164 number; empty when the number or its zone is unknown."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ()
    return tuple(
        zone
        for zone in phone_timezones.time_zones_for_number(parsed)
        if zone != _UNKNOWN_ZONE and zone_info(zone) is not None
    )


def candidate_zones(
    *,
    time_zone: str | None,
    country: str,
    postal_code: str | None,
    phones: Sequence[str],
    country_zones: Sequence[str],
) -> ZoneEvidence:
    if time_zone and zone_info(time_zone) is not None:
        return ZoneEvidence(zones=(time_zone,), sources={"time_zone": [time_zone]}, located=True)
    sources: dict[str, list[str]] = {}
    found: list[str] = []
    place = postal_place(country, postal_code)
    if place is not None and place.zone and zone_info(place.zone) is not None:
        sources["postal_code"] = [place.zone]
        found.append(place.zone)
    for index, number in enumerate(dict.fromkeys(phones), start=1):
        zones = phone_zones(number)
        if zones:
            # Numbered, never the number itself: evidence is stored and shown to operators.
            sources[f"phone_{index}"] = list(zones)
            found.extend(zones)
    if found:
        return ZoneEvidence(zones=tuple(dict.fromkeys(found)), sources=sources, located=True)
    return ZoneEvidence(zones=tuple(country_zones), sources={}, located=False)
