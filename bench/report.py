"""Writes ``docs/performance.md`` and its plots from the results ``run_all.py`` collected.

Rebuild the document from saved results without measuring again:
``uv run --no-sync python bench/report.py docs/images/performance/results.json``
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.25


# What each script's histogram holds, in words a reader of the report needs.
HISTOGRAM_AXES = {
    "webhook_rate": "time to handle one signed webhook (ms)",
    "optout_race": "opt-out acknowledged → last send to that address (ms; below 0: sent before)",
}


def _n(value: Any, digits: int = 0) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if abs(value) >= 10 or digits else f"{value:,.2f}"
    return str(value)


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(path, start).replace(os.sep, "/")


def plot_latency(latencies_ms: list[float], path: Path, title: str) -> None:
    figure, axis = plt.subplots(figsize=(7, 3.8))
    axis.hist(latencies_ms, bins=min(60, max(10, len(latencies_ms) // 20)), color="#3b6ea5")
    for name, fraction, style in (("p50", 0.5, "--"), ("p99", 0.99, ":")):
        value = sorted(latencies_ms)[max(0, round(fraction * len(latencies_ms)) - 1)]
        axis.axvline(value, color="black", linestyle=style, label=f"{name} {value:,.0f} ms")
    axis.set_xlabel("proposal → accepted by the stand-in (ms)")
    axis.set_ylabel("reminders")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_growth(series: dict[str, list[tuple[int, float]]], path: Path) -> None:
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name, points in series.items():
        if points:
            xs, ys = zip(*sorted(points), strict=True)
            axis.plot(xs, ys, marker="o", label=name)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("reminders / accounts / messages (N)")
    axis.set_ylabel("seconds for N")
    axis.set_title("How each cost grows with N (log-log; a slope of 1 is linear)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_rates(rates: list[tuple[str, float]], path: Path) -> None:
    figure, axis = plt.subplots(figsize=(7, 0.5 * len(rates) + 1.5))
    names = [name for name, _ in rates]
    values = [value for _, value in rates]
    axis.barh(names, values, color="#3b6ea5")
    axis.set_xscale("log")
    axis.set_xlabel("per second (log scale)")
    axis.invert_yaxis()
    for index, value in enumerate(values):
        axis.text(value, index, f" {value:,.0f}", va="center", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _summary_of(entry: Any) -> dict[str, Any]:
    if isinstance(entry, dict):
        summary = entry.get("summary")
        return summary if isinstance(summary, dict) else {}
    return {}


def floor_section(floor: dict[str, Any]) -> list[str]:
    """How far the target is from what this machine allows (``throughput_floor.py``)."""
    reachable = floor["target_reachable"]
    lines = [
        "## The floor: what the target leaves each reminder",
        "",
        f"At {TARGET_RATIO:.0%} of the raw pass-through ({floor['raw_per_second']:,.0f} msg/s "
        f"in this step), {floor['cores']} cores leave each reminder "
        f"**{floor['budget_ms_per_reminder']:.3f} ms of CPU**, for every process together. "
        "`throughput_floor.py` measures the parts no design can leave out, each at its "
        "cheapest: the reminder's Kafka records (1.5 times the raw pass-through's CPU per "
        "message, broker and clients), writing and validating its three events, and for a "
        "text one request through the messenger's own twilio SDK sender to a provider that "
        "answers with fixed bytes. Twilio's Messages API takes one recipient per request; "
        "an email is charged nothing for its request, as if it shared one with 1,000 others. "
        "Everything else (decide, templates, the send ledger, tracing, the scheduler) "
        "counts as free.",
        "",
    ]
    lines += _table(
        ["part", "CPU ms per reminder"],
        [
            ["Kafka: 3 records written, 5 read", f"{floor['kafka_ms_per_reminder']:.3f}"],
            ["events: written and validated", f"{floor['contract_ms_per_reminder']:.3f}"],
            ["twilio SDK request, client side", f"{floor['sdk_client_cpu_ms']:.3f}"],
            [
                "(for comparison: a bare aiohttp POST)",
                f"({floor['bare_post_client_cpu_ms']:.3f})",
            ],
            ["provider answering with fixed bytes", f"{floor['provider_server_cpu_ms']:.3f}"],
            ["**one text**", f"**{floor['floor_ms_per_reminder']:.3f}**"],
            [
                f"**the benchmark's mix ({floor['sms_share']:.0%} texts)**",
                f"**{floor['mix_floor_ms_per_reminder']:.3f}**",
            ],
            [f"budget at {TARGET_RATIO:.0%}", f"{floor['budget_ms_per_reminder']:.3f}"],
        ],
    )
    lines += [
        f"With everything else free, this machine could reach at most "
        f"**{floor['best_possible_ratio']:.1%}** of the raw pass-through. "
        + (
            "The target is within that reach."
            if reachable
            else "The target is out of reach here while every text is one twilio SDK request; "
            "the gap between this floor and the measured CPU per reminder above is what "
            "tuning can still win."
        ),
        "",
    ]
    return lines


def write(results: dict[str, Any], out: Path, images: Path) -> None:
    images.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    here = out.parent
    info = results["machine"]
    failures: dict[str, str] = results.get("failures", {})
    lines = [
        "# Performance",
        "",
        "<!-- Generated by bench/run_all.py (bench/report.py); do not edit by hand. -->",
        "",
        f"Generated by `{results['invocation']}` on {info['date']}"
        + (
            " (**quick mode: small sizes, a smoke test, not a measurement**)"
            if results.get("quick")
            else ""
        )
        + ".",
        "",
        *_table(
            ["", ""],
            [
                [
                    "commit",
                    f"`{info['commit']}`"
                    + (" + uncommitted changes" if info.get("uncommitted_changes") else ""),
                ],
                [
                    "machine",
                    f"{info['cores']} cores ({info['cpu']}), {info['ram_gib']} GiB RAM, "
                    f"{info['os']}",
                ],
                ["Python", info["python"]],
                [
                    "load average at start (1, 5, 15 min)",
                    ", ".join(f"{v:.1f}" for v in info["load_average_at_start"]),
                ],
                ["whole run", f"{results.get('total_seconds', 0):,.0f} s"],
            ],
        ),
        "Every rate below is compared with a baseline measured in the same run on the same "
        "machine: with other work on the machine the absolute numbers fall, the ratios much "
        "less. A load average above the core count at the start means the numbers are low.",
        "",
    ]
    rates: list[tuple[str, float]] = []
    growth: dict[str, list[tuple[int, float]]] = {}

    # Headline -------------------------------------------------------------------------------
    e2e = results.get("e2e")
    headline_rows: list[list[str]] = []
    if e2e:
        top = e2e["runs"][-1]
        thr, base = top["throughput"], top["baseline"]
        ratio = top["ratio_to_baseline"]
        verdict = "met" if ratio >= TARGET_RATIO else "**missed**"
        headline_rows += [
            [
                f"end to end, {thr['reminders']:,} reminders",
                f"{thr['per_second']:,.1f} reminders/s, all accepted in {thr['seconds']:,.1f} s",
                f"{ratio:.2%} of the raw pass-through ({base['per_second']:,.0f} msg/s); "
                f"target ≥ {TARGET_RATIO:.0%}: {verdict}",
            ],
        ]
        lat = e2e["latency"]
        headline_rows.append(
            [
                f"latency at {lat['offered_rate']:,.1f} reminders/s offered",
                f"p50 {lat['p50_ms']:,.0f} ms, p95 {lat['p95_ms']:,.0f} ms, "
                f"p99 {lat['p99_ms']:,.0f} ms, max {lat['max_ms']:,.0f} ms",
                f"{e2e['load_fraction']:.0%} of the measured throughput",
            ]
        )
    floor = _summary_of(results.get("throughput_floor"))
    if floor:
        headline_rows.append(
            [
                "least CPU a reminder can cost here",
                f"{floor['mix_floor_ms_per_reminder']:.3f} ms (Kafka, events, one Twilio "
                f"request per text), against {floor['budget_ms_per_reminder']:.3f} ms at "
                f"{TARGET_RATIO:.0%}",
                f"at best {floor['best_possible_ratio']:.1%} of the raw pass-through, with "
                "everything else free: the target is "
                + ("within reach" if floor["target_reachable"] else "**out of reach here**"),
            ]
        )
    decide = _summary_of(results.get("decide_throughput"))
    if decide:
        headline_rows.append(
            ["`decide` (pure, one core)", f"{decide['per_second']:,.0f} decisions/s", ""]
        )
    plans = [p for p in results.get("scheduler_plan") or [] if p]
    if plans:
        big = _summary_of(plans[-1])
        headline_rows.append(
            [
                f"scheduler planning, {big['accounts']:,} accounts",
                f"{big['planned_per_second']:,.0f} accounts/s, "
                f"peak memory {big['peak_rss_mib']:,.0f} MiB",
                f"{big['ratio_to_raw_produce']:.1%} of raw produce of the same count",
            ]
        )
    consent = _summary_of(results.get("consent_kafka"))
    if consent:
        headline_rows.append(
            [
                f"consent service over Kafka, {consent['proposals']:,} proposals",
                f"{consent['consent_per_second']:,.0f} decisions/s",
                f"{consent['ratio_to_raw']:.1%} of its raw pass-through",
            ]
        )
    webhooks = _summary_of(results.get("webhook_rate"))
    if webhooks:
        headline_rows.append(
            [
                "webhooks (messenger)",
                f"Twilio status {webhooks.get('twilio_status_per_s', 0):,.0f}/s, "
                f"SendGrid events {webhooks.get('sendgrid_events_per_s', 0):,.0f}/s",
                f"{webhooks.get('twilio_status_ratio_to_live', 0):.1%} / "
                f"{webhooks.get('sendgrid_events_ratio_to_live', 0):.1%} "
                "of a plain liveness request",
            ]
        )
    race = _summary_of(results.get("optout_race"))
    if race:
        headline_rows.append(
            [
                "opt-out race",
                f"{race.get('violations_over_limit', '?')} sends more than 1 s "
                "after an acknowledged opt-out",
                f"max acknowledged → last send {race.get('delta_max_s', 'n/a')} s",
            ]
        )
    lines += ["## Summary", ""]
    lines += (
        _table(["what", "result", "compared with"], headline_rows)
        if headline_rows
        else ["Nothing was measured.", ""]
    )
    if failures:
        lines += ["**Failed steps** (their numbers are missing below):", ""]
        lines += [
            f"- `{name}`: {reason.splitlines()[0][:300]}" for name, reason in failures.items()
        ]
        lines += [""]
    if results.get("skipped"):
        lines += [
            "Skipped on request: " + ", ".join(f"`{s}`" for s in results["skipped"]) + ".",
            "",
        ]

    # End to end ------------------------------------------------------------------------------
    if e2e:
        lines += [
            "## End to end",
            "",
            "The local stack (`parley_cli.local.stack.LocalStack`): Tansu broker, embedded "
            "PostgreSQL, the provider stand-ins and the scheduler, consent and messenger as "
            "separate processes, every invariant on. The services run on a simulated clock "
            "(a Tuesday 17:00 UTC) at which every debtor (New York, Chicago, London; three in "
            "four by text, one in four by email) is inside the lawful window, so every reminder "
            "is approved. Accounts are imported through the scheduler's API (timed apart), an "
            "SMS and an email campaign are activated, and one tick is requested; the time runs "
            "from that request to the last acceptance the stand-ins recorded "
            "(`/_sandbox/messages`); the tick answers once the scheduler has stored and "
            "published every proposal, while consent and messenger already work on the first "
            "ones. Twilio status callbacks are off in the stand-in "
            "(webhooks are measured on their own below). The baseline is "
            "`kafka_baseline.raw_pass_through` (produce → consume → produce → consume with "
            "aiokafka, no processing) of the same number of messages on the same broker, "
            "just before.",
            "",
        ]
        messengers = e2e.get("messenger_processes", 1)
        if messengers > 1:
            lines += [
                f"The messenger ran as {messengers} processes in one consumer group, as a "
                "deployment scales it (it costs the most CPU per reminder); the other "
                "services ran one process each.",
                "",
            ]
        rows = []
        for run in e2e["runs"]:
            thr = run["throughput"]
            rows.append(
                [
                    _n(run["reminders"]),
                    f"{thr['seconds']:,.1f}",
                    f"{thr['per_second']:,.1f}",
                    f"{run['baseline']['per_second']:,.0f}",
                    f"{run['ratio_to_baseline']:.2%}",
                    f"{thr['first_acceptance_seconds']:,.1f}",
                    f"{thr['tick_seconds']:,.1f}" if "tick_seconds" in thr else "",
                    f"{thr['import_seconds']:,.1f}",
                    f"{thr['accepted']:,} / {thr['missing']:,} / {thr['duplicated']:,}",
                ]
            )
            growth.setdefault("end to end (all services)", []).append(
                (run["reminders"], thr["seconds"])
            )
            growth.setdefault("raw pass-through (2 hops)", []).append(
                (run["reminders"], run["baseline"]["seconds"])
            )
        lines += _table(
            [
                "reminders",
                "seconds, tick → last accepted",
                "reminders/s",
                "raw pass-through msg/s",
                "ratio",
                "first accepted after (s)",
                "tick answered after (s)",
                "import (s, not counted)",
                "accepted / missing / duplicated",
            ],
            rows,
        )
        top = e2e["runs"][-1]["throughput"]
        rates.append(("end to end (reminders)", top["per_second"]))
        rates.append(("raw pass-through", e2e["runs"][-1]["baseline"]["per_second"]))
        cpu = top.get("cpu_ms_per_reminder", {})
        if cpu:
            lines += [
                "CPU time per reminder during the largest run (user + system; much less "
                "disturbed by other load than wall time). The last row is the rest of what "
                "the machine did meanwhile: the broker, PostgreSQL and the bench itself.",
                "",
            ]
            cpu_rows = [[name, f"{value:.2f}"] for name, value in sorted(cpu.items())]
            if "other_cpu_ms_per_reminder" in top:
                cpu_rows.append(
                    ["broker, PostgreSQL, bench", f"{top['other_cpu_ms_per_reminder']:.2f}"]
                )
                total = sum(cpu.values()) + top["other_cpu_ms_per_reminder"]
                cpu_rows.append(["**all**", f"**{total:.2f}**"])
            lines += _table(["process", "CPU ms per reminder"], cpu_rows)
            if "busy_cores" in top:
                lines += [
                    f"The machine's {top['cores']} cores were {top['busy_cores']:.2f} cores "
                    "busy on average during that run: the throughput is what the CPU per "
                    "reminder above allows on this machine.",
                    "",
                ]
        every = all(
            run["throughput"]["missing"] == 0 and run["throughput"]["duplicated"] == 0
            for run in e2e["runs"]
        )
        lines += [
            "Exactly once: every debtor has a distinct address, and the stand-ins' own records "
            "were counted per address two seconds after the last expected acceptance: "
            + (
                "**every reminder was accepted exactly once.**"
                if every
                else "**NOT every reminder was accepted exactly once (see the table).**"
            ),
            "",
        ]
        lat = e2e["latency"]
        picture = images / "latency.png"
        plot_latency(
            lat["latencies_ms"],
            picture,
            f"{lat['reminders']:,} reminders at {lat['offered_rate']:,.1f}/s",
        )
        lines += [
            "### Latency at a fixed load",
            "",
            f"{lat['reminders']:,} `ReminderProposed` events, built by the scheduler's own "
            "`build_proposal`, published straight to `outreach.proposals` at a fixed rate "
            f"({lat['offered_rate']:,.1f}/s offered, {e2e['load_fraction']:.0%} of the "
            "throughput above) with a W3C `traceparent` header, as the scheduler's publisher "
            "sends them; the scheduler's planning is not in this path. Latency is the "
            "stand-in's receive time minus the event's `occurred_at`.",
            "",
        ]
        lines += _table(
            ["p50", "p95", "p99", "max", "mean", "missing / duplicated"],
            [
                [
                    f"{lat['p50_ms']:,.0f} ms",
                    f"{lat['p95_ms']:,.0f} ms",
                    f"{lat['p99_ms']:,.0f} ms",
                    f"{lat['max_ms']:,.0f} ms",
                    f"{lat['mean_ms']:,.0f} ms",
                    f"{lat['missing']} / {lat['duplicated']}",
                ]
            ],
        )
        lines += [f"![latency histogram]({_relative(picture, here)})", ""]

    if floor:
        lines += floor_section(floor)

    # Components ------------------------------------------------------------------------------
    lines += ["## Components", ""]
    if decide:
        lines += [
            f"`decide` alone, pinned to one core, varied inputs: **{decide['per_second']:,.0f} "
            f"decisions/s** ({decide['decisions']:,} in {decide['seconds']:.1f} s of wall "
            "time; with other work on the machine the pinned core is shared, so this falls "
            "well below the CPU-time rate of the `decide` row in the growth table).",
            "",
        ]
        rates.append(("decide (one core)", decide["per_second"]))
    if plans:
        lines += [
            "Scheduler planning (`scheduler_plan.py`): one tick over N seeded accounts "
            "(stream from PostgreSQL, build proposals, store them in the outbox, publish with "
            "acks=all), against `raw_produce` of N messages of the same size.",
            "",
        ]
        rows = []
        for plan in plans:
            s = _summary_of(plan)
            rows.append(
                [
                    _n(s["accounts"]),
                    f"{s['seconds']:,.1f}",
                    f"{s['planned_per_second']:,.0f}",
                    f"{s['peak_rss_mib']:,.0f}",
                    f"{s['raw_produce_per_second']:,.0f}",
                    f"{s['ratio_to_raw_produce']:.1%}",
                ]
            )
            growth.setdefault("scheduler planning tick", []).append((s["accounts"], s["seconds"]))
            growth.setdefault("raw produce (1 hop)", []).append(
                (s["accounts"], s["baseline_seconds"])
            )
        lines += _table(
            [
                "accounts",
                "tick seconds",
                "accounts/s",
                "peak RSS MiB",
                "raw produce msg/s",
                "ratio",
            ],
            rows,
        )
        rates.append(("scheduler planning", _summary_of(plans[-1])["planned_per_second"]))
    if consent:
        lines += ["Consent service over Kafka (`consent_kafka_throughput.py`):", ""]
        lines += _table(
            ["measure", "value"], [[k, _n(v, 2 if "ratio" in k else 0)] for k, v in consent.items()]
        )
        rates.append(("consent service", consent["consent_per_second"]))
    delivery = _summary_of(results.get("delivery"))
    if delivery:
        lines += ["Messenger delivery path (`delivery_throughput.py`):", ""]
        lines += _table(
            ["measure", "value"],
            [[k, _n(v, 3 if "ratio" in k else 0)] for k, v in delivery.items()],
        )
    for name, title in (
        ("webhook_rate", "Webhook handling (`webhook_rate.py`)"),
        ("optout_race", "Opt-out race (`optout_race.py`)"),
    ):
        entry = results.get(name)
        summary = _summary_of(entry)
        if not summary:
            continue
        lines += [f"{title}:", ""]
        lines += _table(
            ["measure", "value"],
            [[k, _n(v, 3 if isinstance(v, float) and v < 10 else 0)] for k, v in summary.items()],
        )
        histogram = entry.get("histogram") if isinstance(entry, dict) else None
        if histogram:
            picture = images / f"{name}.png"
            figure, axis = plt.subplots(figsize=(7, 3.5))
            axis.hist([1000 * float(v) for v in histogram], bins=50, color="#3b6ea5")
            axis.set_xlabel(HISTOGRAM_AXES.get(name, "ms"))
            axis.set_ylabel("count")
            axis.set_title(title.split(" (")[0])
            figure.tight_layout()
            figure.savefig(picture, dpi=110)
            plt.close(figure)
            lines += [f"![{name} histogram]({_relative(picture, here)})", ""]

    # Growth ----------------------------------------------------------------------------------
    for point in results.get("decide_growth") or []:
        growth.setdefault("decide (CPU, one core)", []).append((point["n"], point["seconds"]))
    if growth:
        picture = images / "growth.png"
        plot_growth(growth, picture)
        lines += ["## Growth", "", "Seconds for N, per cost (wall time unless marked CPU)."]
        if e2e:
            rate = e2e["runs"][-1]["throughput"]["per_second"]
            lines[-1] += (
                " End to end stops at the headline size: at the rate measured above, "
                f"1,000,000 reminders through every service would take about "
                f"{1_000_000 / rate / 3600:,.1f} h, far past the harness's time budget."
            )
        lines += [""]
        sizes = sorted({n for points in growth.values() for n, _ in points})
        rows = []
        for name, points in growth.items():
            by_n = dict(points)
            rows.append([name] + [f"{by_n[n]:,.2f}" if n in by_n else "" for n in sizes])
        lines += _table(["cost"] + [f"N = {n:,}" for n in sizes], rows)
        lines += [f"![growth, log-log]({_relative(picture, here)})", ""]
    if rates:
        picture = images / "rates.png"
        plot_rates(rates, picture)
        lines += ["## Rates side by side", "", f"![rates]({_relative(picture, here)})", ""]

    # Commands --------------------------------------------------------------------------------
    lines += ["## Commands run", ""]
    lines += _table(
        ["step", "command", "seconds", "ok"],
        [
            [c["step"], f"`{c['command']}`", f"{c['seconds']:,.0f}", "yes" if c["ok"] else "**no**"]
            for c in results.get("commands", [])
        ],
    )
    lines += [
        "Raw results: " + f"[`results.json`]({_relative(images / 'results.json', here)}).",
        "",
    ]
    out.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--images", type=Path, default=ROOT / "docs" / "images" / "performance")
    args = parser.parse_args()
    write(json.loads(args.results.read_text()), args.out, args.images)


if __name__ == "__main__":
    main()
