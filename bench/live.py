"""Live mode's freshness and lag, measured on the running deployment (`make live`).

    uv run python -m bench.live [--minutes 10]

Watches for ``--minutes``: every 10 s it samples the landing group's total lag (Kafka), and at
the end it reads ``meta.freshness`` for the flights of the batches committed in the window
(producer send time to queryable in ``mart``). Reports p50 / p95 of those batches (and p95 of
the window's first and last quarter of batches: the loads keep up when it does not grow), the
lag at the start and end of the window, and the load average. Results: ``bench/out/live.json``
and ``bench/LIVE.md``; `make bench` runs this when the deployment is in live mode.
Targets (2 cores, default speed): p95 ≤ 10 s; at 10× the default speed the lag does not grow
over 10 minutes (start it with ``FLIGHTPIPE_REPLAY_SPEED=4800 make live``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import noisy, say
from bench.report import machine_lines
from flightpipe.ingest.lag import lag_by_partition
from flightpipe.live import clock
from flightpipe.settings import Settings
from flightpipe.warehouse.db import connect

OUT = Path(__file__).resolve().parent / "out" / "live.json"
SAMPLE_EVERY = 10.0

FRESHNESS_SQL = """
SELECT f.p50_s, f.p95_s, f.rows
FROM meta.freshness AS f
JOIN meta.load_batches AS b USING (batch_id)
WHERE f.topic = 'flights' AND b.finished_at >= %(since)s
ORDER BY b.batch_id
"""


def total_lag(settings: Settings) -> int:
    return sum(p.lag for p in lag_by_partition(settings))


def watch(settings: Settings, minutes: float) -> dict[str, Any]:
    now = clock.read(settings)
    if now is None or now.mode != "live":
        raise SystemExit("error: live mode is off; start it with `make live`")
    with connect(settings, "reader") as conn:
        since = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    load_before = os.getloadavg()
    lags = []
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        lags.append(total_lag(settings))
        say(f"lag {lags[-1]:,} records; {(deadline - time.monotonic()) / 60:.1f} min left")
        time.sleep(min(SAMPLE_EVERY, max(0.0, deadline - time.monotonic())))
    lags.append(total_lag(settings))
    with connect(settings, "reader") as conn:
        rows = conn.execute(FRESHNESS_SQL, {"since": since}).fetchall()
    p50s = [float(r[0]) for r in rows if r[0] is not None]
    p95s = [float(r[1]) for r in rows if r[1] is not None]
    # Whether the loads keep up: freshness of the window's first batches against its last.
    edge = max(1, len(p95s) // 4)
    return {
        "minutes": minutes,
        "speed": now.speed,
        "batches": len(rows),
        "flights": sum(int(r[2]) for r in rows),
        "p50_s_median": statistics.median(p50s) if p50s else None,
        "p95_s_median": statistics.median(p95s) if p95s else None,
        "p95_s_max": max(p95s) if p95s else None,
        # The batch p95 that 95 % of the batches stay under: the slow loads, not the typical.
        "p95_s_95th_batch": statistics.quantiles(p95s, n=20)[-1] if len(p95s) > 1 else None,
        "p95_s_first_quarter": statistics.median(p95s[:edge]) if p95s else None,
        "p95_s_last_quarter": statistics.median(p95s[-edge:]) if p95s else None,
        "lag_first": lags[0],
        "lag_last": lags[-1],
        "lag_max": max(lags),
        "load_before": round(load_before[0], 2),
        "load_after": round(os.getloadavg()[0], 2),
        "noisy": noisy(load_before),
    }


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


def markdown(result: dict[str, Any], machine: dict[str, Any]) -> str:
    """``bench/LIVE.md``: the figures of one watch, next to the targets."""
    r = result
    noisy = (
        "**Noisy: the 1-minute load average at the start exceeded the core count** (the live "
        "stack alone can do that on two cores)."
        if r["noisy"]
        else "Quiet at the start (1-minute load average ≤ cores)."
    )
    rows = [
        ("batches / flights loaded in the window", f"{r['batches']:,} / {r['flights']:,}", ""),
        ("freshness p50, median of batches", _seconds(r["p50_s_median"]), ""),
        ("freshness p95, median of batches", _seconds(r["p95_s_median"]), "≤ 10 s"),
        ("freshness p95, 95th percentile of batches", _seconds(r["p95_s_95th_batch"]), ""),
        ("freshness p95, worst batch", _seconds(r["p95_s_max"]), ""),
        (
            "p95, first → last quarter of batches",
            f"{_seconds(r['p95_s_first_quarter'])} → {_seconds(r['p95_s_last_quarter'])}",
            "does not grow",
        ),
        (
            "landing lag, start → end (worst)",
            f"{r['lag_first']:,} → {r['lag_last']:,} ({r['lag_max']:,}) records",
            "does not grow",
        ),
    ]
    lines = [
        "# flightpipe live-mode results",
        "",
        "Generated by `make bench` while `make live` runs (or `python -m bench.live`).",
        "",
        *machine_lines(machine),
        f"Watched {r['minutes']:g} minutes at {r['speed']:g}x; load average at the end "
        f"{r['load_after']}. {noisy}",
        "",
        "| figure | value | target |",
        "|---|---:|---:|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
        "",
        "Targets on 2 cores: p95 ≤ 10 s at the default speed (480x); at 10x "
        "(`FLIGHTPIPE_REPLAY_SPEED=4800 make live`) the lag does not grow. Earlier runs and "
        "what changed between them: `bench/RESULTS.md`, History.",
        "",
    ]
    return "\n".join(lines)


def measure(settings: Settings, minutes: float) -> dict[str, Any]:
    """Watch, then write ``bench/out/live.json`` and ``bench/LIVE.md``."""
    from bench.common import BENCH_DIR, machine_facts

    machine = machine_facts(settings)
    result = watch(settings, minutes)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    (BENCH_DIR / "LIVE.md").write_text(markdown(result, machine), encoding="utf-8")
    say(json.dumps(result))
    say("written: bench/LIVE.md, bench/out/live.json")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="watch this long (10)")
    args = parser.parse_args()
    measure(Settings(), args.minutes)


if __name__ == "__main__":
    main()
