"""A campaign's lifecycle (draft → active → paused → archived) and what a change changed."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    ACTIVATE = "activate"
    PAUSE = "pause"
    ARCHIVE = "archive"


_TARGET = {
    Action.ACTIVATE: CampaignStatus.ACTIVE,
    Action.PAUSE: CampaignStatus.PAUSED,
    Action.ARCHIVE: CampaignStatus.ARCHIVED,
}
_ALLOWED_FROM = {
    Action.ACTIVATE: {CampaignStatus.DRAFT, CampaignStatus.PAUSED},
    Action.PAUSE: {CampaignStatus.ACTIVE},
    Action.ARCHIVE: {CampaignStatus.DRAFT, CampaignStatus.ACTIVE, CampaignStatus.PAUSED},
    Action.UPDATE: {CampaignStatus.DRAFT, CampaignStatus.ACTIVE, CampaignStatus.PAUSED},
}


class LifecycleError(ValueError):
    """A change the campaign's current status does not allow."""


def check_allowed(action: Action, current: CampaignStatus) -> None:
    if current not in _ALLOWED_FROM[action]:
        allowed = ", ".join(sorted(status.value for status in _ALLOWED_FROM[action]))
        raise LifecycleError(
            f"cannot {action.value} a campaign that is {current.value} (only when {allowed})"
        )


def status_after(action: Action, current: CampaignStatus) -> CampaignStatus:
    check_allowed(action, current)
    return _TARGET.get(action, current)


def definition_changes(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """Every leaf that differs between two definitions, as {field, before, after}."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[dict[str, Any]] = []
        for key in sorted(set(before) | set(after)):
            found += definition_changes(
                before.get(key), after.get(key), f"{path}.{key}" if path else str(key)
            )
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        found = []
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            found += definition_changes(old, new, f"{path}.{index}")
        return found
    if before == after:
        return []
    return [{"field": path, "before": before, "after": after}]
