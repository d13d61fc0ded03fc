"""The README documents every setting, under the environment variable that sets it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from parley_consent.settings import ConsentSettings
from parley_messenger.settings import MessengerSettings
from parley_sandbox.settings import SandboxSettings
from parley_scheduler.settings import SchedulerSettings
from pydantic import BaseModel
from pydantic_settings import BaseSettings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _variables(model: type[BaseModel], prefix: str) -> Iterator[str]:
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _variables(annotation, f"{prefix}{name.upper()}__")
        else:
            yield f"{prefix}{name.upper()}"


@pytest.mark.parametrize(
    "settings", [SchedulerSettings, ConsentSettings, MessengerSettings, SandboxSettings]
)
def test_every_setting_is_documented(settings: type[BaseSettings]) -> None:
    prefix = str(settings.model_config.get("env_prefix", ""))
    missing = [name for name in _variables(settings, prefix) if f"`{name}`" not in README]
    assert missing == []


def test_the_two_commands_come_first() -> None:
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split()[0:2] for line in first_block.strip().splitlines()] == [
        ["make", "demo"],
        ["make", "test"],
    ]
