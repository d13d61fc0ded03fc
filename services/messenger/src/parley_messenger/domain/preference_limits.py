"""A sliding-window request limit per client, for the endpoints that take link tokens:
it slows anyone guessing tokens without getting in the way of a person."""

from __future__ import annotations

from collections import deque


class SlidingWindowLimit:
    def __init__(self, max_requests: int, window_seconds: float, max_clients: int = 10_000) -> None:
        self._max = max_requests
        self._window = window_seconds
        self._max_clients = max_clients
        self._hits: dict[str, deque[float]] = {}

    def allow(self, client: str, now: float) -> bool:
        """Count one request of ``client`` at ``now`` (monotonic seconds); False when it is
        over the limit (and then it is not counted)."""
        hits = self._hits.get(client)
        if hits is None:
            if len(self._hits) >= self._max_clients:
                self._forget_idle(now)
            hits = self._hits.setdefault(client, deque())
        while hits and hits[0] <= now - self._window:
            hits.popleft()
        if len(hits) >= self._max:
            return False
        hits.append(now)
        return True

    def _forget_idle(self, now: float) -> None:
        # Bounded memory: clients with nothing inside the window are dropped first, then
        # the oldest if every one is busy.
        for client in [c for c, h in self._hits.items() if not h or h[-1] <= now - self._window]:
            del self._hits[client]
        while len(self._hits) >= self._max_clients:
            del self._hits[next(iter(self._hits))]
