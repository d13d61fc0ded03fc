"""Starts and stops the whole local stack: broker, PostgreSQL, provider stand-ins, services."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

from parley_cli.local.broker import LocalServiceError, TansuBroker
from parley_cli.local.ports import free_port
from parley_cli.local.postgres import EmbeddedPostgres

Progress = Callable[[str], None]


@dataclass
class ServiceProcess:
    name: str
    module: str
    port: int
    health_path: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # Append: a restarted service keeps the log of its earlier life.
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", self.module],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def is_ready(self) -> bool:
        try:
            return httpx.get(self.url + self.health_path, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def kill(self) -> None:
        """``kill -9``: no shutdown hooks, no offset commits; what the service made durable
        before the signal is all that survives."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self, grace: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # SIGTERM lets the service finish in-flight messages and commit offsets.
        self.process.terminate()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class LocalStack:
    """Everything Parley needs on one machine, on free loopback ports, logs in ``workdir``."""

    workdir: Path
    simulated_start: datetime | None = None
    progress: Progress = print
    broker: TansuBroker = field(init=False)
    postgres: EmbeddedPostgres = field(init=False)
    services: list[ServiceProcess] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.logs = self.workdir / "logs"
        self.broker = TansuBroker(workdir=self.workdir / "tansu")
        self.postgres = EmbeddedPostgres(workdir=self.workdir / "postgres")

    def url_of(self, name: str) -> str:
        return next(service.url for service in self.services if service.name == name)

    def start(self, timeout: float = 90.0) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.progress("starting the Kafka broker (Tansu)")
        self.broker.start()
        self.progress(f"broker ready at {self.broker.bootstrap_servers}")
        self.progress("starting PostgreSQL")
        self.postgres.start()
        self.progress("PostgreSQL ready")
        self.services = self._plan_services()
        for service in self.services:
            self.progress(f"starting {service.name} on port {service.port}")
            service.start()
        self._wait_until_ready(timeout)

    def _plan_services(self) -> list[ServiceProcess]:
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PARLEY_", "TWILIO_"))
        }
        base.update(
            {
                "PARLEY_KAFKA__BOOTSTRAP_SERVERS": self.broker.bootstrap_servers,
                "PARLEY_DATABASE_URL": self.postgres.url(),
                "PYTHONUNBUFFERED": "1",
                # Short local runs: read consumer lag often enough to see it move.
                "PARLEY_LAG_PROBE_INTERVAL_SECONDS": "2",
            }
        )
        if self.simulated_start is not None:
            base["PARLEY_SIMULATED_START"] = self.simulated_start.isoformat()
        sandbox_port, consent_port, messenger_port = free_port(), free_port(), free_port()
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        consent_url = f"http://127.0.0.1:{consent_port}"
        messenger_url = f"http://127.0.0.1:{messenger_port}"
        plan = [
            (
                "sandbox",
                "parley_sandbox",
                sandbox_port,
                "/_sandbox/messages",
                {
                    "PARLEY_SANDBOX_HTTP_PORT": str(sandbox_port),
                    # A simulated reply (STOP, HELP) reaches this stack's messenger.
                    "PARLEY_SANDBOX_TWILIO_INBOUND_URL": f"{messenger_url}/webhooks/twilio/inbound",
                },
            ),
            ("consent", "parley_consent", consent_port, "/health", {}),
            (
                "messenger",
                "parley_messenger",
                messenger_port,
                "/health",
                {
                    "PARLEY_TWILIO__BASE_URL": sandbox_url,
                    "PARLEY_SENDGRID__HOST": sandbox_url,
                    # Links and status callbacks must name this stack's messenger, not the
                    # default port, which may belong to something else on the machine.
                    "PARLEY_PUBLIC_BASE_URL": messenger_url,
                    "PARLEY_CONSENT_URL": consent_url,
                },
            ),
            (
                "scheduler",
                "parley_scheduler",
                free_port(),
                "/health",
                {"PARLEY_MESSENGER_URL": messenger_url},
            ),
        ]
        services = []
        for name, module, port, health, extra in plan:
            env = {**base, "PARLEY_HTTP_PORT": str(port), **extra}
            services.append(
                ServiceProcess(name, module, port, health, env, self.logs / f"{name}.log")
            )
        return services

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(self.services)
        while waiting:
            for service in list(waiting):
                if service.exited():
                    raise LocalServiceError(
                        f"{service.name} exited during start-up; see its log at {service.log_path}"
                    )
                if service.is_ready():
                    self.progress(f"{service.name} ready at {service.url}")
                    waiting.remove(service)
            if waiting and time.monotonic() > deadline:
                names = ", ".join(s.name for s in waiting)
                logs = ", ".join(str(s.log_path) for s in waiting)
                raise LocalServiceError(f"{names} not ready after {timeout:.0f} s; see {logs}")
            time.sleep(0.3)

    def stop(self, remove_data: bool = False) -> None:
        for service in reversed(self.services):
            self.progress(f"stopping {service.name}")
            service.stop()
        self.progress("stopping PostgreSQL and the broker")
        self.postgres.stop()
        self.broker.stop()
        if remove_data:
            shutil.rmtree(self.workdir / "postgres", ignore_errors=True)
