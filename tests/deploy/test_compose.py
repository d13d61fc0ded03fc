"""docker-compose.yml cannot be run here (no container engine): check it statically."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from parley_consent.settings import ConsentSettings
from parley_messenger.settings import MessengerSettings
from parley_scheduler.settings import SchedulerSettings
from parley_shared.settings import ServiceSettings

from tests.support.settings import setting_exists

ROOT = Path(__file__).resolve().parents[2]
SETTINGS: dict[str, type[ServiceSettings]] = {
    "scheduler": SchedulerSettings,
    "consent": ConsentSettings,
    "messenger": MessengerSettings,
}


@pytest.fixture(scope="module")
def compose() -> dict[str, object]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_each_service_builds_from_its_own_dockerfile(compose: dict, service: str) -> None:
    build = compose["services"][service]["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).is_file()
    dockerfile = (ROOT / build["dockerfile"]).read_text()
    assert f'python", "-m", "parley_{service}"' in dockerfile


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_every_parley_variable_is_a_real_setting(compose: dict, service: str) -> None:
    environment = compose["services"][service]["environment"]
    names = [name for name in environment if name.startswith("PARLEY_")]
    assert names, "the service gets no Parley settings"
    unknown = [name for name in names if not setting_exists(SETTINGS[service], name)]
    assert unknown == []


def test_services_wait_for_healthy_kafka_and_postgres(compose: dict) -> None:
    for service in SETTINGS:
        depends = compose["services"][service]["depends_on"]
        assert depends["kafka"] == {"condition": "service_healthy"}
        assert depends["postgres"] == {"condition": "service_healthy"}


def test_kafka_runs_in_kraft_mode_without_topic_auto_creation(compose: dict) -> None:
    kafka = compose["services"]["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_the_messenger_has_no_sandbox_in_production(compose: dict) -> None:
    environment = compose["services"]["messenger"]["environment"]
    assert "PARLEY_TWILIO__BASE_URL" not in environment
    assert "PARLEY_SENDGRID__HOST" not in environment
    secrets = [v for k, v in environment.items() if "TOKEN" in k or "API_KEY" in k]
    assert secrets and all(re.fullmatch(r"\$\{[A-Z_]+:\?.+\}", value) for value in secrets)
