"""The contact rules as data: rule ids, lawful hours and candidate time zones per country.

Rule ids come from ``shared/docs/contact-rules.md``; keeping them here as data (not
scattered through the logic) lets a rule-set version change them in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

US_F_TIME = "US-F-TIME"
US_F_TZ = "US-F-TZ"
US_F_MEDIUM = "US-F-MEDIUM"
UK_CONC79 = "UK-CONC79"
# Not a legal rule: no rules are configured for the debtor's country, so the service
# cannot show that contact is lawful and refuses it.
NO_RULES_FOR_COUNTRY = "PARLEY-NO-JURISDICTION"


@dataclass(frozen=True)
class LocalWindow:
    """Hours of the day, on the local wall clock, when contact is allowed: [opens, closes)."""

    opens: time
    closes: time

    def describe(self) -> str:
        return f"{self.opens:%H:%M}-{self.closes:%H:%M}"


@dataclass(frozen=True)
class Jurisdiction:
    country: str
    lawful_hours: LocalWindow
    time_rule_id: str
    opt_out_rule_id: str
    # Cited when the debtor's zone is unknown and every candidate zone must agree;
    # None where the country has a single zone.
    unknown_zone_rule_id: str | None
    # Every zone the debtor could be in when the proposal does not say.
    candidate_zones: tuple[str, ...]


EIGHT_TO_NINE = LocalWindow(opens=time(8, 0), closes=time(21, 0))

JURISDICTIONS: dict[str, Jurisdiction] = {
    "US": Jurisdiction(
        country="US",
        lawful_hours=EIGHT_TO_NINE,
        time_rule_id=US_F_TIME,
        opt_out_rule_id=US_F_MEDIUM,
        unknown_zone_rule_id=US_F_TZ,
        candidate_zones=(
            "America/New_York",
            "America/Chicago",
            "America/Denver",
            "America/Phoenix",
            "America/Los_Angeles",
            "America/Anchorage",
            "Pacific/Honolulu",
        ),
    ),
    "GB": Jurisdiction(
        country="GB",
        lawful_hours=EIGHT_TO_NINE,
        time_rule_id=UK_CONC79,
        opt_out_rule_id=UK_CONC79,
        unknown_zone_rule_id=None,
        candidate_zones=("Europe/London",),
    ),
}


def jurisdiction_for(country: str) -> Jurisdiction | None:
    return JURISDICTIONS.get(country.strip().upper())
