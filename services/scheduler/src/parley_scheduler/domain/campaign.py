"""Campaign definitions as operations teams write them (YAML), validated with clear errors."""

from __future__ import annotations

from typing import Any

import yaml
from parley_shared.events import Channel
from pydantic import BaseModel, ConfigDict, Field, ValidationError

_IDENTIFIER = r"^[a-z0-9][a-z0-9._-]*$"


class CampaignError(ValueError):
    """A campaign definition that cannot be used; ``problems`` name each field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid campaign: " + "; ".join(problems))
        self.problems = problems


class CampaignStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    day_offset: int = Field(ge=0, le=365)
    channel: Channel
    template: str = Field(pattern=_IDENTIFIER)


class Campaign(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_IDENTIFIER, max_length=64)
    version: int = Field(ge=1)
    name: str = Field(min_length=1)
    steps: list[CampaignStep] = Field(min_length=1)


def parse_campaign(text: str) -> Campaign:
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise CampaignError(
            [f"{where}not valid YAML ({getattr(error, 'problem', error)})"]
        ) from None
    if not isinstance(raw, dict):
        raise CampaignError(["the campaign must be a YAML mapping with id, version, name, steps"])
    try:
        return Campaign.model_validate(raw)
    except ValidationError as error:
        raise CampaignError([_problem(item, text) for item in error.errors()]) from None


def _problem(item: Any, text: str) -> str:
    path = ".".join(str(part) for part in item["loc"])
    line = _line_of(yaml.compose(text), item["loc"])
    where = f"line {line}, " if line else ""
    return f"{where}{path}: {item['msg']}"


def _line_of(node: yaml.Node | None, location: tuple[Any, ...]) -> int | None:
    """The line of the deepest YAML node the error's path reaches."""
    line = None
    for part in location:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            node = next((value for key, value in node.value if key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line
