"""Hostile input: every HTTP endpoint of the three services, fuzzed from its own OpenAPI
document with schemathesis, against the running service on the real broker and PostgreSQL.

- Any request, valid or not, never gets a 5xx.
- Requests that break the schema (schemathesis' negative mode) change nothing: the row
  counts of every table in the service's schema are the same before and after each one.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from parley_cli.local.broker import TansuBroker
from parley_cli.local.ports import free_port
from parley_cli.local.postgres import EmbeddedPostgres
from parley_consent.bootstrap import create_app as create_consent
from parley_consent.settings import ConsentSettings
from parley_messenger.bootstrap import create_app as create_messenger
from parley_messenger.settings import MessengerSettings
from parley_scheduler.bootstrap import create_app as create_scheduler
from parley_scheduler.settings import SchedulerSettings
from parley_shared.settings import KafkaSettings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

EXAMPLES_PER_OPERATION = 25
SERVICES: dict[str, Callable[[dict[str, Any]], FastAPI]] = {
    "scheduler": lambda common: create_scheduler(SchedulerSettings(**common)),
    "consent": lambda common: create_consent(ConsentSettings(**common)),
    "messenger": lambda common: create_messenger(MessengerSettings(**common)),
}


class ServedApp:
    """A service served by uvicorn on its own thread and event loop, so schemathesis'
    synchronous HTTP calls reach a real server."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve()))

    def __enter__(self) -> ServedApp:
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the service did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


@pytest.fixture(scope="module", params=sorted(SERVICES))
def served(
    request: pytest.FixtureRequest, local_broker: TansuBroker, local_postgres: EmbeddedPostgres
) -> Iterator[tuple[str, ServedApp]]:
    service = str(request.param)
    run = uuid.uuid4().hex[:8]
    database = f"fuzz_{service}_{run}"
    local_postgres.psql(f'CREATE DATABASE "{database}"')
    common: dict[str, Any] = {
        "kafka": KafkaSettings(
            bootstrap_servers=local_broker.bootstrap_servers,
            topic_prefix=f"f{run}.",
            group_prefix=f"f{run}",
            partitions=1,
            session_timeout_ms=3000,
            heartbeat_interval_ms=500,
        ),
        "database_url": local_postgres.url(database),
        "lag_probe_interval_seconds": 0,
    }
    with ServedApp(SERVICES[service](common)) as served_app:
        served_app.database = database  # type: ignore[attr-defined]
        yield service, served_app


def _row_counts(postgres: EmbeddedPostgres, database: str, schema: str) -> str:
    """Row counts of every table in the schema, as psql prints them (one query built from
    the catalogue, run with \\gexec)."""
    command = (
        f"\\c {database}\n"
        "SELECT string_agg(format('SELECT %L AS table_name, count(*) FROM %I.%I', "
        "table_name, table_schema, table_name), ' UNION ALL ') || ' ORDER BY 1' "
        f"FROM information_schema.tables WHERE table_schema = '{schema}' "
        "AND table_type = 'BASE TABLE' \\gexec"
    )
    output = postgres.psql(command)
    assert "ERROR" not in output, output
    return output


def _operations(url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the service publishes no operations"
    return operations


def _fuzz(operation: Any, mode: GenerationMode, check: Callable[[Any], None]) -> bool:
    """Run ``check`` on generated cases; False when the operation has no input to break
    (e.g. a GET without parameters has no negative cases)."""

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        check(case)

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        return False
    return True


def test_no_request_gets_a_server_error(served: tuple[str, ServedApp]) -> None:
    _, app = served
    for operation in _operations(app.url):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(
                operation,
                mode,
                lambda case: case.call_and_validate(
                    base_url=app.url, checks=[not_a_server_error], timeout=30
                ),
            )


def test_invalid_requests_change_nothing(
    served: tuple[str, ServedApp], local_postgres: EmbeddedPostgres
) -> None:
    service, app = served
    database: str = app.database  # type: ignore[attr-defined]

    def refused_without_effect(case: Any) -> None:
        before = _row_counts(local_postgres, database, service)
        response = case.call(base_url=app.url, timeout=30)
        assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code}"
        if 400 <= response.status_code < 500:
            assert _row_counts(local_postgres, database, service) == before, (
                f"{case.method} {case.path} was refused ({response.status_code}) "
                "but changed stored data"
            )

    fuzzed = [
        _fuzz(operation, GenerationMode.NEGATIVE, refused_without_effect)
        for operation in _operations(app.url)
    ]
    assert any(fuzzed), "no operation takes input that could be broken"


def test_the_row_counts_see_the_service_tables(
    served: tuple[str, ServedApp], local_postgres: EmbeddedPostgres
) -> None:
    """The no-change check is only as good as its view of the tables."""
    service, app = served
    counts = _row_counts(local_postgres, app.database, service)  # type: ignore[attr-defined]
    assert "alembic_version" in counts
    assert len([line for line in counts.splitlines() if "|" in line]) >= 3
