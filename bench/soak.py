"""Soak run: watch the class-mode deployment for a while and record how it holds up.

`make soak` (default 30 min, SOAK_MINUTES=...). Nothing is triggered: the scheduled ingest
cycle (every FLIGHTPIPE_CYCLE_MINUTES) and the Asset-driven DAGs behind it do the work. At
every new ingest run the harness samples the memory of each supervised service (PSS of its
process tree) and the disk used by the data and run folders; at the end it reads every run
of the window from Airflow's API: failed runs (target 0), and per cycle the latency from the
ingest run's start to the end of the load run it led to (warehouse published).
Results: bench/SOAK.md and bench/soak.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import BENCH_DIR, say
from flightpipe.orchestration.airflow_api import DAG_IDS, AirflowApi
from flightpipe.settings import Settings
from flightpipe.stack import supervisor
from flightpipe.waiting import poll

INGEST, _TRANSFORM, LOAD, *_ = DAG_IDS
MIB = 1024 * 1024


def _ts(value: str | None) -> datetime | None:
    return None if not value else datetime.fromisoformat(value.replace("Z", "+00:00"))


def _disk(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _sample(settings: Settings, cycle: int) -> dict[str, Any]:
    memory = supervisor.resident_memory(settings)
    return {
        "cycle": cycle,
        "at": datetime.now(UTC).isoformat(),
        "memory_mib": {k: round(v / MIB, 1) for k, v in sorted(memory.items())},
        "data_mib": round(_disk(settings.data_dir) / MIB, 1),
        "run_mib": round(_disk(settings.run_dir) / MIB, 1),
        "free_disk_gib": round(shutil.disk_usage(settings.home).free / 1024**3, 2),
    }


def _runs_since(api: AirflowApi, dag_id: str, since: datetime) -> list[dict[str, Any]]:
    runs = api.runs(dag_id, limit=100)
    return [r for r in runs if (_ts(r.get("start_date")) or since) >= since]


def _latencies(ingests: list[dict[str, Any]], loads: list[dict[str, Any]]) -> list[float]:
    """Seconds from each ingest start to the end of the first load that started after it."""
    done = sorted(
        (s, e) for r in loads if (s := _ts(r.get("start_date"))) and (e := _ts(r.get("end_date")))
    )
    out = []
    for run in ingests:
        start = _ts(run.get("start_date"))
        after = [e for s, e in done if start and s >= start]
        if start and after:
            out.append((after[0] - start).total_seconds())
    return out


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 1)


def _growth(samples: list[dict[str, Any]], skip: int = 2) -> dict[str, float]:
    """Per service: memory at the last sample over memory after the first ``skip`` cycles."""
    if len(samples) <= skip:
        return {}
    base, last = samples[skip]["memory_mib"], samples[-1]["memory_mib"]
    return {k: round(last[k] / base[k] - 1, 3) for k in base if k in last and base[k] > 0}


def soak(settings: Settings, minutes: float) -> dict[str, Any]:
    api = AirflowApi(settings, identity="reader")  # reads only: the viewer login
    started = datetime.now(UTC)
    end = time.monotonic() + minutes * 60
    samples = [_sample(settings, 0)]
    seen: set[str] = set()
    load_at_start = _load()
    say(f"soak: watching for {minutes:g} min (load average {load_at_start})")
    while time.monotonic() < end:
        fresh = poll(
            lambda seen=seen: {r["dag_run_id"] for r in _runs_since(api, INGEST, started)} - seen,
            until=bool,
            timeout=max(1.0, min(60.0, end - time.monotonic())),
            interval=5,
        )
        if fresh:
            seen |= fresh
            samples.append(_sample(settings, len(seen)))
            mem = sum(samples[-1]["memory_mib"].values())
            say(f"cycle {len(seen)}: services {mem:.0f} MiB, data {samples[-1]['data_mib']} MiB")
    time.sleep(5)
    runs = {dag: _runs_since(api, dag, started) for dag in DAG_IDS}
    latencies = _latencies(runs[INGEST], runs[LOAD])
    return {
        "started": started.isoformat(),
        "minutes": minutes,
        "load_average": {"start": load_at_start, "end": _load()},
        "cycles": len(seen),
        "runs": {d: len(r) for d, r in runs.items()},
        "failed_runs": {d: sum(r["state"] == "failed" for r in rs) for d, rs in runs.items()},
        "cycle_latency_s": {
            "p50": _percentile(latencies, 0.5),
            "p95": _percentile(latencies, 0.95),
            "mean": round(statistics.fmean(latencies), 1) if latencies else None,
            "n": len(latencies),
        },
        "memory_growth_after_cycle_2": _growth(samples),
        "disk_growth_mib": {
            "data": round(samples[-1]["data_mib"] - samples[0]["data_mib"], 1),
            "run": round(samples[-1]["run_mib"] - samples[0]["run_mib"], 1),
        },
        "samples": samples,
    }


def _load() -> str:
    import os

    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def write(result: dict[str, Any]) -> None:
    (BENCH_DIR / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    lat = result["cycle_latency_s"]
    lines = [
        "# Soak run",
        "",
        f"Class mode watched for {result['minutes']:g} min from {result['started']}; "
        f"{result['cycles']} ingest runs (scheduled ones and any triggered by others in the "
        f"window). Load average (1, 5, 15 min) at the start: {result['load_average']['start']}; "
        f"at the end: {result['load_average']['end']}.",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        f"| failed runs | {sum(result['failed_runs'].values())} ({result['failed_runs']}) | 0 |",
        f"| cycle latency p50 / p95 (ingest start to load end) | {lat['p50']} s / {lat['p95']} s"
        f" (n={lat['n']}) | |",
        f"| disk growth, data / run | {result['disk_growth_mib']['data']} MiB / "
        f"{result['disk_growth_mib']['run']} MiB | |",
        "",
        "Memory per service (MiB, PSS of the process tree), growth from cycle 2 to the end "
        "(target: at most 10 %):",
        "",
        "| service | after cycle 2 | at the end | growth |",
        "|---|---|---|---|",
    ]
    samples = result["samples"]
    base = samples[min(2, len(samples) - 1)]["memory_mib"]
    for name, growth in sorted(result["memory_growth_after_cycle_2"].items()):
        last = samples[-1]["memory_mib"][name]
        lines.append(f"| {name} | {base[name]} | {last} | {growth:+.1%} |")
    (BENCH_DIR / "SOAK.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="How long to watch.")
    args = parser.parse_args()
    result = soak(Settings(), args.minutes)
    write(result)
    say(f"failed runs: {result['failed_runs']}; latency: {result['cycle_latency_s']}")
    say("results: bench/SOAK.md, bench/soak.json")


if __name__ == "__main__":
    main()
