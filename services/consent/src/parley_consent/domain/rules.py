"""The contact rules as versioned data: one YAML file per jurisdiction in ``parley_consent/rules``.

A country file holds the federal or national rules (lawful hours, candidate time zones,
caps, address eligibility, holds); region and city files add stricter layers on top.
Everything a compliance officer may change is data here, validated on load, so a change
to a window or a cap is a reviewed data change that bumps ``ruleset.yaml``'s version.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import time
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from parley_shared.events import AddressProvenance, Channel, HoldKind, MessageKind
from pydantic import BaseModel, ConfigDict, Field, model_validator

# Not legal rules: the service's own reasons for refusing or narrowing contact.
NO_RULES_FOR_COUNTRY = "PARLEY-NO-JURISDICTION"
CAMPAIGN_WINDOW = "PARLEY-CAMPAIGN-WINDOW"
ADDRESS_INVALID = "PARLEY-ADDRESS-INVALID"


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LocalWindow(_Data):
    """Hours of the day, on the local wall clock, when contact is allowed: [opens, closes)."""

    opens: time
    closes: time

    @model_validator(mode="after")
    def _opens_before_closing(self) -> LocalWindow:
        if self.opens >= self.closes:
            raise ValueError("opens must be earlier than closes")
        return self

    def describe(self) -> str:
        return f"{self.opens:%H:%M}-{self.closes:%H:%M}"


class TimeRule(LocalWindow):
    rule_id: str


class Cap(_Data):
    """At most ``max`` contacts in any ``days`` consecutive local calendar days."""

    rule_id: str
    max: int = Field(ge=0)
    days: int = Field(ge=1, le=366)
    # None: every medium counts towards the cap and the cap applies to every medium.
    channels: tuple[Channel, ...] | None = None

    def covers(self, channel: Channel) -> bool:
        return self.channels is None or channel in self.channels

    def describe_media(self) -> str:
        if self.channels is None:
            return "contacts across all media"
        return " and ".join(f"{channel.value} messages" for channel in self.channels)


class AddressRule(_Data):
    """What must be known about an address before it may be used on ``channel``."""

    rule_id: str
    channel: Channel
    provenance: tuple[AddressProvenance, ...] | None = None
    employer_provided_needs: tuple[AddressProvenance, ...] | None = None
    consent_required: bool = False
    written_consent_required: bool = False
    confirmed_within_days: int | None = Field(default=None, ge=1)


class AutomatedCap(_Data):
    max: int = Field(ge=0)
    days: int = Field(ge=1, le=366)


class HoldRule(_Data):
    rule_id: str
    # Message kinds a hold still allows, listed explicitly; each use is recorded.
    permitted: tuple[MessageKind, ...] = ()
    # Instead of stopping automated contact, the hold limits it (0 means human contact only).
    automated_cap: AutomatedCap | None = None


class JurisdictionRules(_Data):
    """One jurisdiction's file. A country file has no region; a region file may name cities."""

    id: str
    name: str
    country: str = Field(min_length=2, max_length=2)
    region: str | None = None
    cities: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    unknown_zone_rule: str | None = None
    opt_out_rule: str | None = None
    preference_rule: str | None = None
    time_windows: tuple[TimeRule, ...] = ()
    caps: tuple[Cap, ...] = ()
    address_rules: tuple[AddressRule, ...] = ()
    holds: dict[HoldKind, HoldRule] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _country_files_are_complete(self) -> JurisdictionRules:
        if self.region is None:
            missing = [
                name
                for name in ("zones", "opt_out_rule", "preference_rule", "time_windows")
                if not getattr(self, name)
            ]
            if missing:
                raise ValueError(f"a country file needs {', '.join(missing)}")
        unknown = [zone for zone in self.zones if not _is_zone(zone)]
        if unknown:
            raise ValueError(f"unknown time zones: {', '.join(unknown)}")
        return self


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Jurisdiction:
    """The layers that apply to one debtor: the country's rules, then stricter ones."""

    country: JurisdictionRules
    layers: tuple[JurisdictionRules, ...]

    @functools.cached_property
    def ids(self) -> list[str]:
        return [layer.id for layer in self.layers]

    @functools.cached_property
    def time_rules(self) -> list[TimeRule]:
        return [window for layer in self.layers for window in layer.time_windows]

    @functools.cached_property
    def _caps(self) -> dict[Channel, list[Cap]]:
        return {
            channel: [cap for layer in self.layers for cap in layer.caps if cap.covers(channel)]
            for channel in Channel
        }

    @functools.cached_property
    def _address_rules(self) -> dict[Channel, list[AddressRule]]:
        return {
            channel: [
                rule
                for layer in self.layers
                for rule in layer.address_rules
                if rule.channel is channel
            ]
            for channel in Channel
        }

    def caps_for(self, channel: Channel) -> list[Cap]:
        return self._caps[channel]

    def address_rules_for(self, channel: Channel) -> list[AddressRule]:
        return self._address_rules[channel]

    def hold_rule(self, kind: HoldKind) -> HoldRule:
        """The most specific layer's rule for ``kind``; a hold no file mentions still vetoes."""
        for layer in reversed(self.layers):
            if kind in layer.holds:
                return layer.holds[kind]
        return HoldRule(rule_id=f"PARLEY-HOLD-{kind.value.upper()}")

    @property
    def opt_out_rule(self) -> str:
        return self.country.opt_out_rule or NO_RULES_FOR_COUNTRY

    @property
    def preference_rule(self) -> str:
        return self.country.preference_rule or NO_RULES_FOR_COUNTRY


@dataclass(frozen=True)
class RuleSet:
    version: str
    jurisdictions: tuple[JurisdictionRules, ...]
    # Resolved layers per (country, region, city): the rule set never changes once loaded.
    _resolved: dict[tuple[str, str | None, str | None], Jurisdiction | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def jurisdiction_for(
        self, country: str, region: str | None, city: str | None
    ) -> Jurisdiction | None:
        key = (country, region, city)
        if key not in self._resolved:
            self._resolved[key] = self._resolve(country, region, city)
        return self._resolved[key]

    def _resolve(self, country: str, region: str | None, city: str | None) -> Jurisdiction | None:
        country = country.strip().upper()
        region = region.strip().upper() if region else None
        city = city.strip().lower() if city else None
        national = next(
            (j for j in self.jurisdictions if j.country == country and j.region is None), None
        )
        if national is None:
            return None
        layers = [national]
        for candidate in self.jurisdictions:
            if candidate.country != country or candidate.region is None:
                continue
            if candidate.region != region:
                continue
            if candidate.cities and city not in candidate.cities:
                continue
            layers.append(candidate)
        # Cities after their region so the most specific layer comes last.
        layers.sort(key=lambda layer: (layer.region is not None, bool(layer.cities)))
        return Jurisdiction(country=national, layers=tuple(layers))


class RuleSetError(ValueError):
    """A rule file is missing a field or holds a value the rules cannot use."""


def parse_rule_set(version: str, documents: Mapping[str, Mapping[str, Any]]) -> RuleSet:
    """Build a rule set from already-parsed documents, named by file for error messages."""
    jurisdictions: list[JurisdictionRules] = []
    for name, document in sorted(documents.items()):
        try:
            jurisdictions.append(JurisdictionRules.model_validate(document))
        except ValueError as error:
            raise RuleSetError(f"{name}: {error}") from error
    _check_unique(jurisdiction.id for jurisdiction in jurisdictions)
    return RuleSet(version=version, jurisdictions=tuple(jurisdictions))


def _check_unique(ids: Iterable[str]) -> None:
    seen: set[str] = set()
    for jurisdiction_id in ids:
        if jurisdiction_id in seen:
            raise RuleSetError(f"jurisdiction {jurisdiction_id} is defined twice")
        seen.add(jurisdiction_id)


def load_rule_set_from(directory: Path) -> RuleSet:
    manifest = yaml.safe_load((directory / "ruleset.yaml").read_text())
    if not isinstance(manifest, dict) or not isinstance(manifest.get("version"), str):
        raise RuleSetError("ruleset.yaml: a string 'version' is required")
    documents = {
        path.name: yaml.safe_load(path.read_text())
        for path in directory.glob("*.yaml")
        if path.name != "ruleset.yaml"
    }
    return parse_rule_set(manifest["version"], documents)


@functools.cache
def default_rule_set() -> RuleSet:
    """The rule set shipped in the package (parsed once per process)."""
    with resources.as_file(resources.files("parley_consent") / "rules") as directory:
        return load_rule_set_from(directory)
