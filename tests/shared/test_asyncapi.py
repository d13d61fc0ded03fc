"""The committed AsyncAPI documents are what FastStream generates now (`make asyncapi`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("service", ["scheduler", "consent", "messenger"])
def test_committed_asyncapi_document_is_current(service: str) -> None:
    generated = subprocess.run(
        [sys.executable, "-m", f"parley_{service}", "asyncapi"],
        check=True,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout
    committed = ROOT / "docs" / "asyncapi" / f"{service}.json"
    assert committed.is_file(), f"missing {committed}: run `make asyncapi`"
    assert json.loads(generated) == json.loads(committed.read_text()), (
        f"{committed} is stale: run `make asyncapi` and commit the result"
    )


def test_the_documents_describe_every_topic_of_the_flow() -> None:
    addresses = set()
    for document in (ROOT / "docs" / "asyncapi").glob("*.json"):
        for channel in json.loads(document.read_text())["channels"].values():
            addresses.add(channel["address"])
    assert {
        "outreach.proposals",
        "outreach.decisions",
        "outreach.deliveries",
        "consent.changes",
    } <= addresses
