"""Connection pool limits shared by the provider clients."""

from __future__ import annotations

import httpx

# Idle connections are dropped before servers commonly close them (5 s is a usual idle
# timeout): reusing one the server has just closed fails after the request may have left,
# which the messenger must then report as `unknown` instead of sent.
KEEPALIVE_EXPIRY_SECONDS = 4.0


def provider_limits(connections: int) -> httpx.Limits:
    """As many connections kept alive as sends can be in flight (httpx keeps 20): past
    that, every send would open and close a connection of its own."""
    idle = max(connections, 20)
    return httpx.Limits(
        max_connections=max(idle, 100),
        max_keepalive_connections=idle,
        keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
    )
