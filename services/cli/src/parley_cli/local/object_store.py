"""A local S3 (moto's server) so the embedded broker can keep its data across a crash.

Tansu's in-memory storage loses every topic and offset when the process dies; with
``s3://`` storage against this server a ``kill -9`` of the broker loses nothing the broker
acknowledged. Used by the fault tests and benchmarks, not by the demo.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from parley_cli.local.broker import LocalServiceError
from parley_cli.local.ports import free_port, port_answers, wait_until

# moto accepts any credentials; these only have to be consistent between the server's
# clients (the broker and the bucket set-up).
ACCESS_KEY = "parley-local"
SECRET_KEY = "parley-local-secret"  # noqa: S105 - a throwaway local server's key
REGION = "eu-west-2"


@dataclass
class LocalObjectStore:
    workdir: Path
    bucket: str = "tansu"
    port: int = 0
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def storage_url(self) -> str:
        return f"s3://{self.bucket}/"

    def client_environment(self) -> dict[str, str]:
        """What an S3 client (the broker) needs to reach this store."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
        }

    def start(self, timeout: float = 30.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        if importlib.util.find_spec("moto") is None:
            raise LocalServiceError("moto is not installed (the moto[server] package)")
        log = (self.workdir / "moto.log").open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        # moto's server with indexed prefix listings (see s3_server): plain moto rescans
        # the whole bucket for each listing and slows the broker as its log grows.
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "parley_cli.local.s3_server",
                "-H",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not wait_until(lambda: port_answers(self.port), timeout):
            self.stop()
            raise LocalServiceError(f"the local S3 did not start; see {self.workdir / 'moto.log'}")
        self._create_bucket()

    def _create_bucket(self) -> None:
        # The local server does not check request signatures, so a plain S3 CreateBucket
        # request is enough; no AWS SDK needed in the command-line package.
        body = (
            "<CreateBucketConfiguration><LocationConstraint>"
            f"{REGION}</LocationConstraint></CreateBucketConfiguration>"
        )
        response = httpx.put(f"{self.endpoint}/{self.bucket}", content=body, timeout=10)
        if response.status_code >= 300:
            raise LocalServiceError(f"could not create the bucket: HTTP {response.status_code}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._process = None
