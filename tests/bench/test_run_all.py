"""The performance harness: one command measures on the real stack and writes the report
with its numbers and plots (quick sizes here; no timing is asserted)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.bench.race_support import load_bench

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"
report = load_bench("report")


def _images_linked(document: str, folder: Path) -> list[Path]:
    return [folder / link for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", document)]


def test_quick_run_writes_the_report_with_numbers_and_plots(tmp_path: Path) -> None:
    out, images = tmp_path / "performance.md", tmp_path / "images"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run_all.py"),
            "--quick",
            "--e2e-reminders",
            "20",
            "50",
            "--growth-sizes",
            "200",
            "500",
            # Each of these starts a stack of its own; they have their own tests.
            "--skip",
            "scheduler_plan",
            "consent_kafka",
            "delivery",
            "webhook_rate",
            "optout_race",
            "--out",
            str(out),
            "--images",
            str(images),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    results = json.loads((images / "results.json").read_text())
    largest = results["e2e"]["runs"][-1]["throughput"]
    assert (largest["reminders"], largest["accepted"]) == (50, 50)
    assert (largest["missing"], largest["duplicated"]) == (0, 0)
    assert largest["per_second"] > 0
    assert results["e2e"]["runs"][-1]["baseline"]["per_second"] > 0
    latency = results["e2e"]["latency"]
    assert latency["missing"] == 0
    assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert results["decide_throughput"]["summary"]["per_second"] > 0
    assert [point["n"] for point in results["decide_growth"]] == [200, 500]

    floor = results["throughput_floor"]["summary"]
    parts = ("kafka", "contract")
    one_text = sum(floor[f"{part}_ms_per_reminder"] for part in parts)
    one_text += floor["sdk_client_cpu_ms"] + floor["provider_server_cpu_ms"]
    assert floor["floor_ms_per_reminder"] == pytest.approx(one_text)
    assert 0 < floor["mix_floor_ms_per_reminder"] < floor["floor_ms_per_reminder"]
    assert floor["budget_ms_per_reminder"] == pytest.approx(
        1000 * floor["cores"] / (0.25 * floor["raw_per_second"])
    )
    assert floor["target_reachable"] == (
        floor["mix_floor_ms_per_reminder"] <= floor["budget_ms_per_reminder"]
    )

    document = out.read_text()
    assert results["machine"]["commit"] in document
    assert "every reminder was accepted exactly once" in document
    assert f"{largest['per_second']:,.1f} reminders/s" in document
    assert f"p50 {latency['p50_ms']:,.0f} ms" in document
    assert "decisions/s" in document
    assert "Skipped on request" in document
    assert f"**{floor['mix_floor_ms_per_reminder']:.3f}**" in document
    assert f"at most **{floor['best_possible_ratio']:.1%}**" in document
    linked = _images_linked(document, out.parent)
    assert {path.name for path in linked} >= {"latency.png", "growth.png", "rates.png"}
    for path in linked:
        assert path.read_bytes().startswith(PNG), path


def _results(**extra: Any) -> dict[str, Any]:
    return {
        "machine": {
            "date": "2026-11-24T10:00:00+00:00",
            "commit": "abc123",
            "cores": 2,
            "cpu": "x86_64",
            "ram_gib": 8.0,
            "python": "3.11.7",
            "os": "Linux",
            "load_average_at_start": [0.5, 0.4, 0.3],
        },
        "invocation": "python bench/run_all.py",
        "commands": [{"step": "webhook_rate", "command": "x", "seconds": 3.0, "ok": True}],
        "failures": {},
        **extra,
    }


def test_another_scripts_summary_becomes_a_table_and_its_histogram_a_plot(
    tmp_path: Path,
) -> None:
    results = _results(
        webhook_rate={
            "summary": {"twilio_status_per_s": 812.5, "twilio_status_refused": 0},
            "histogram": [0.01, 0.02, 0.02, 0.05],
        },
        failures={"delivery": "RuntimeError: exit code 1"},
    )
    out = tmp_path / "docs" / "performance.md"
    report.write(results, out, tmp_path / "docs" / "images")
    document = out.read_text()
    assert "| twilio_status_per_s | 812 |" in document
    assert "| twilio_status_refused | 0 |" in document
    assert "`delivery`: RuntimeError: exit code 1" in document
    (histogram,) = [p for p in _images_linked(document, out.parent) if "webhook" in p.name]
    assert histogram.read_bytes().startswith(PNG)


def test_a_missed_target_is_reported_as_missed(tmp_path: Path) -> None:
    run = {
        "reminders": 1000,
        "baseline": {"messages": 1000, "seconds": 0.1, "per_second": 10_000.0},
        "throughput": {
            "reminders": 1000,
            "accepted": 1000,
            "missing": 0,
            "duplicated": 1,
            "seconds": 10.0,
            "per_second": 100.0,
            "first_acceptance_seconds": 1.0,
            "import_seconds": 1.0,
        },
        "ratio_to_baseline": 0.01,
    }
    latency = {
        "reminders": 40,
        "offered_rate": 50.0,
        "p50_ms": 100.0,
        "p95_ms": 150.0,
        "p99_ms": 200.0,
        "max_ms": 250.0,
        "mean_ms": 110.0,
        "missing": 0,
        "duplicated": 0,
        "latencies_ms": [100.0] * 39 + [250.0],
    }
    out = tmp_path / "performance.md"
    report.write(
        _results(e2e={"runs": [run], "latency": latency, "load_fraction": 0.5}),
        out,
        tmp_path / "images",
    )
    document = out.read_text()
    assert "1.00% of the raw pass-through" in document
    assert "**missed**" in document
    assert "NOT every reminder was accepted exactly once" in document
