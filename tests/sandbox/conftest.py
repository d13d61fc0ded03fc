from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from parley_sandbox.app import create_app
from parley_sandbox.settings import SandboxSettings

from tests.support.apps import serve_http


@pytest.fixture
def sandbox_settings() -> SandboxSettings:
    return SandboxSettings()


@pytest.fixture
async def sandbox_url(sandbox_settings: SandboxSettings) -> AsyncIterator[str]:
    """The stand-ins on a real loopback port: the SDKs only speak real HTTP."""
    async with serve_http(create_app(sandbox_settings)) as base_url:
        yield base_url
