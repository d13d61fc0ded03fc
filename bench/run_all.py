"""Every Parley benchmark in one command, written up in ``docs/performance.md`` with plots.

Run from the repository root:

    .tools/bin/uv run --no-sync python bench/run_all.py            # the full run
    .tools/bin/uv run --no-sync python bench/run_all.py --quick    # small sizes, a smoke test

It measures, in order (each step prints its progress; a step that fails is reported as
failed in the document and the others still run):

1. end to end (``e2e_throughput.py``, in this process): the raw broker pass-through and
   N reminders through the scheduler, consent and messenger to the stand-ins, at each
   end-to-end size, then proposal → acceptance latency at half the measured throughput;
   then ``throughput_floor.py``: the least CPU a reminder can cost on this machine,
   against what the 25 % target leaves it;
2. ``decide`` over a growing number of proposals (in this process, one core);
3. the existing scripts, each with ``--json``: ``decide_throughput.py``,
   ``scheduler_plan.py`` (at every growth size: planning rate, peak memory and the raw
   produce of the same count), ``consent_kafka_throughput.py``,
   ``delivery_throughput.py``, ``webhook_rate.py`` and ``optout_race.py``;
4. the report: ``bench/report.py`` turns the collected JSON into the document and plots
   (``python bench/report.py RESULTS.json`` rebuilds them without measuring again).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import e2e_throughput  # noqa: E402
import report  # noqa: E402

STEPS = (
    "e2e",
    "throughput_floor",
    "decide_growth",
    "decide_throughput",
    "scheduler_plan",
    "consent_kafka",
    "delivery",
    "webhook_rate",
    "optout_race",
)


def say(line: str) -> None:
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    print(f"[{stamp}] {line}", flush=True)


def _git(*arguments: str) -> str:
    """Read-only git queries (commit, whether the tree has changes)."""
    git = shutil.which("git") or "git"
    done = subprocess.run(  # noqa: S603 - fixed read-only arguments
        [git, *arguments], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


def machine() -> dict[str, Any]:
    memory = psutil.virtual_memory()
    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit or "unknown",
        "uncommitted_changes": bool(dirty),
        "cores": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "ram_gib": round(memory.total / 2**30, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "load_average_at_start": list(os.getloadavg()),
    }


class Runner:
    """Runs the steps, records each one's command, duration and outcome."""

    def __init__(self, results: dict[str, Any], scratch: Path) -> None:
        self.results = results
        self.scratch = scratch
        results.setdefault("commands", [])
        results.setdefault("failures", {})

    def step(self, name: str, command: str, action: Callable[[], Any]) -> Any:
        say(f"== {name}: {command}")
        started = time.perf_counter()
        try:
            value = action()
        except Exception as error:  # one failed step must not lose the rest
            seconds = time.perf_counter() - started
            say(f"!! {name} failed after {seconds:.0f} s: {error}")
            self.results["failures"][name] = f"{type(error).__name__}: {error}"[:2000]
            self.results["commands"].append(
                {"step": name, "command": command, "seconds": seconds, "ok": False}
            )
            return None
        seconds = time.perf_counter() - started
        say(f"== {name} done in {seconds:.0f} s")
        self.results["commands"].append(
            {"step": name, "command": command, "seconds": seconds, "ok": True}
        )
        return value

    def script(self, name: str, arguments: list[str]) -> dict[str, Any] | None:
        """Runs ``bench/<script>`` with ``--json``, streaming its output with a prefix."""
        output = self.scratch / f"{name}-{len(self.results['commands'])}.json"
        script = arguments[0]
        command = [sys.executable, str(BENCH / script), *arguments[1:], "--json", str(output)]
        shown = " ".join(["python", f"bench/{script}", *arguments[1:], "--json", "PATH"])

        def run() -> dict[str, Any]:
            process = subprocess.Popen(  # noqa: S603 - our own scripts
                command,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert process.stdout is not None
            tail: list[str] = []
            for line in process.stdout:
                print(f"    | {line.rstrip()}", flush=True)
                tail = [*tail[-19:], line.rstrip()]
            code = process.wait()
            if code != 0 and not output.exists():
                raise RuntimeError(f"exit code {code}; last output: " + " / ".join(tail[-5:]))
            loaded: dict[str, Any] = json.loads(output.read_text())
            if code != 0:
                loaded["exit_code"] = code
            return loaded

        value: dict[str, Any] | None = self.step(name, shown, run)
        return value


def decide_growth(sizes: list[int]) -> list[dict[str, float]]:
    """Time to decide N proposals on one core, for each N (inputs built beforehand and
    cycled, as in ``decide_throughput.py``)."""
    from decide_throughput import _case
    from parley_consent.domain import decide, default_rule_set

    rng = random.Random(7)
    rules = default_rule_set()
    cases = [_case(rng, index) for index in range(min(max(sizes), 20_000))]
    for case in cases[:2000]:
        decide(*case, rules)  # warm the look-up caches, as a running service would be
    points = []
    for size in sizes:
        started = time.process_time()
        for index in range(size):
            decide(*cases[index % len(cases)], rules)
        seconds = time.process_time() - started
        points.append({"n": size, "seconds": seconds, "per_second": size / seconds})
        say(f"  decide x {size:,}: {seconds:.2f} s CPU ({size / seconds:,.0f}/s)")
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument(
        "--e2e-reminders",
        type=int,
        nargs="+",
        help="end-to-end sizes, the largest is the headline (default 1000 10000 100000)",
    )
    parser.add_argument(
        "--growth-sizes",
        type=int,
        nargs="+",
        help="sizes for decide and scheduler planning (default 10000 100000 1000000)",
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=STEPS, help="steps to leave out")
    parser.add_argument(
        "--args",
        nargs=2,
        action="append",
        default=[],
        metavar=("STEP", "ARGUMENTS"),
        help='replace a script step\'s size arguments, e.g. --args optout_race "--reminders 2000"',
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--images", type=Path, default=ROOT / "docs" / "images" / "performance")
    args = parser.parse_args()
    quick = args.quick
    e2e_sizes = sorted(args.e2e_reminders or ([60, 150] if quick else [1_000, 10_000, 100_000]))
    default_growth = [1_000, 3_000] if quick else [10_000, 100_000, 1_000_000]
    growth = sorted(args.growth_sizes or default_growth)
    latency_seconds = 3.0 if quick else 60.0
    invocation = "python bench/run_all.py " + shlex.join(sys.argv[1:])

    results: dict[str, Any] = {
        "machine": machine(),
        "invocation": invocation.strip(),
        "quick": quick,
        "skipped": list(args.skip),
    }
    mode = "quick" if quick else "full"
    say(f"Parley benchmarks ({mode}); commit {results['machine']['commit']}")
    started = time.perf_counter()
    args.images.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="parley-bench-all-") as directory:
        runner = Runner(results, Path(directory))
        chosen = {step: shlex.split(arguments) for step, arguments in args.args}

        def sized(step: str, default: list[str]) -> list[str]:
            return chosen.get(step, default)

        wanted = [step for step in STEPS if step not in args.skip]
        if "e2e" in wanted:
            results["e2e"] = runner.step(
                "e2e",
                "python bench/e2e_throughput.py --reminders "
                + " ".join(str(n) for n in e2e_sizes)
                + f" --latency-seconds {latency_seconds:g}",
                lambda: e2e_throughput.run(e2e_sizes, latency_seconds, 0.5, say),
            )
        if "throughput_floor" in wanted:
            floor_sizes = ["--messages", "2000", "--calls", "300"] if quick else []
            results["throughput_floor"] = runner.script(
                "throughput_floor",
                ["throughput_floor.py", *sized("throughput_floor", floor_sizes)],
            )
        if "decide_growth" in wanted:
            results["decide_growth"] = runner.step(
                "decide_growth", "decide() x N in bench/run_all.py", lambda: decide_growth(growth)
            )
        if "decide_throughput" in wanted:
            results["decide_throughput"] = runner.script(
                "decide_throughput",
                [
                    "decide_throughput.py",
                    *sized("decide_throughput", ["--seconds", "1" if quick else "10"]),
                ],
            )
        if "scheduler_plan" in wanted:
            results["scheduler_plan"] = [
                runner.script("scheduler_plan", ["scheduler_plan.py", "--accounts", str(size)])
                for size in growth
            ]
        if "consent_kafka" in wanted:
            results["consent_kafka"] = runner.script(
                "consent_kafka",
                [
                    "consent_kafka_throughput.py",
                    *sized("consent_kafka", ["--proposals", "200" if quick else "5000"]),
                ],
            )
        if "delivery" in wanted:
            results["delivery"] = runner.script(
                "delivery",
                [
                    "delivery_throughput.py",
                    *sized("delivery", ["--messages", "200" if quick else "2000"]),
                ],
            )
        if "webhook_rate" in wanted and (BENCH / "webhook_rate.py").exists():
            sizes = ["--requests", "100", "--seed-reminders", "40"] if quick else []
            sizes = sized("webhook_rate", sizes)
            results["webhook_rate"] = runner.script("webhook_rate", ["webhook_rate.py", *sizes])
        if "optout_race" in wanted and (BENCH / "optout_race.py").exists():
            sizes = ["--reminders", "200", "--opt-outs", "20"] if quick else []
            sizes = sized("optout_race", sizes)
            results["optout_race"] = runner.script("optout_race", ["optout_race.py", *sizes])
    results["total_seconds"] = time.perf_counter() - started
    data = args.images / "results.json"
    data.write_text(json.dumps(results, indent=1, default=str))
    report.write(results, args.out, args.images)
    say(f"wrote {args.out} and plots in {args.images} ({results['total_seconds']:.0f} s in all)")
    if results["failures"]:
        say("failed steps: " + ", ".join(sorted(results["failures"])))
        sys.exit(1)


if __name__ == "__main__":
    main()
