from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Registered here so `-m faults` selects the harness (the suite runs --strict-markers).
    config.addinivalue_line(
        "markers", "faults: the fault harness: a long run through the real stack under faults"
    )
