"""`make bench`: the whole benchmark in one run, each stage next to its raw limit.

1. The whole year without Airflow, ``--repeat`` times (default 3), each time in a fresh
   isolated pipeline (own topics, consumer group, data folder, throwaway database), and
   right after each run, on its data, the raw limits: Kafka's ProducerPerformance and
   ConsumerPerformance, the consumer members alone, a binary COPY of the final facts, and
   the same cleaning in DuckDB (one process). Pipeline and limits alternate (A/B/A/B), and
   the medians are reported.
2. The naive pipeline on a sample, extrapolated to the year (once).
3. Scaling: 1 and 3 months (once each; ``--skip-scaling`` to leave out).
4. Through the live Airflow deployment: one-day cycles (``--cycles``, default 3) from
   trigger until the warehouse is published, and one whole-year chain until reports and ML.

When the deployment is in live mode (`make live`), `make bench` measures that instead: its
freshness and lag for ``--live-minutes`` (default 10), written to ``bench/LIVE.md`` (see
:mod:`bench.live`).

The load average is recorded before and after every run; a run that starts with the 1-minute
load average above the core count is marked noisy, and so is the whole benchmark. Writes
``bench/results.json`` and ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench import airflow_cycle, limits, live, naive
from bench.common import (
    BENCH_DIR,
    OUT_DIR,
    children_log,
    isolated,
    machine_facts,
    noisy,
    say,
    settle,
)
from bench.report import history, markdown
from bench.stages import SPANS, consume_only, run_pipeline
from flightpipe import preload
from flightpipe.settings import Settings

TARGETS = {
    "end_to_end_seconds": 12.0,
    "produce_ratio": 0.7,
    "consume_ratio": 0.5,
    "load_ratio": 0.3,
    # Dask's transform within 2x of the single-process engine: DuckDB / Dask >= 0.5.
    "transform_ratio": 0.5,
    "airflow_year_seconds": 45.0,
    "one_day_cycle_seconds": 20.0,
    "speedup_vs_naive": 40.0,
}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _try(errors: list[str], what: str, measure: Callable[[], Any]) -> Any:
    """One measurement; a failure is recorded and does not lose the others."""
    say(f"{what} ...")
    try:
        value = measure()
    except Exception as exc:
        errors.append(f"{what}: {exc!r}")
        say(f"error: {what}: {exc!r}\n{traceback.format_exc()}")
        return None
    say(f"  {what}: {_short(value)}")
    return value


def _short(value: Any) -> str:
    if isinstance(value, dict) and "seconds" in value:
        return f"{value['seconds']} s"
    return str(value)[:200]


def _limits(settings: Settings, year: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    """The raw limits on this run's data, right after the run."""
    from bench import anchor

    flights_topic = settings.topic("flights")
    flights = year["stages"]["ingest"]["flights"]
    perf_topic = settings.topic("perf")
    steps: dict[str, Callable[[], Any]] = {
        "producer_performance": lambda: limits.producer_performance(settings, perf_topic),
        "consumer_performance": lambda: limits.consumer_performance(
            settings, flights_topic, flights
        ),
        "consume_only": lambda: consume_only(settings),
        "raw_copy": lambda: limits.raw_copy(settings),
        "duckdb_transform": lambda: anchor.duckdb_transform(settings),
    }
    try:
        return {name: _try(errors, name, measure) for name, measure in steps.items()}
    finally:
        limits.delete_topic(settings, perf_topic)


def _ratios(rep: dict[str, Any]) -> dict[str, float | None]:
    """Raw-limit seconds over stage seconds, for equal work (1.0: at the raw limit)."""
    st, raw = rep["run"]["stages"], rep["raw"]
    events = rep["run"]["events"]
    pp, cp, alone = (
        raw.get("producer_performance"),
        raw.get("consumer_performance"),
        raw.get("consume_only"),
    )
    rc, duck = raw.get("raw_copy"), raw.get("duckdb_transform")

    def ratio(ours_rate: float | None, limit_rate: float | None) -> float | None:
        if not ours_rate or not limit_rate:
            return None
        return round(ours_rate / limit_rate, 3)

    producing = st["ingest"]["producing_seconds"]
    return {
        "produce": ratio(events / producing, pp and pp["records_per_second"]),
        "consume": ratio(
            alone and alone["landed"] / alone["seconds"], cp and cp["records_per_second"]
        ),
        "transform": ratio(1 / st["transform"]["seconds"], duck and 1 / duck["seconds"]),
        "load": ratio(1 / st["load"]["seconds"], rc and 1 / rc["seconds"]),
    }


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def _summary(results: dict[str, Any]) -> dict[str, Any]:
    reps = results["year_runs"]
    out: dict[str, Any] = {
        "wall_seconds": median([r["run"]["wall_seconds"] for r in reps]),
        "ingest_seconds": median([r["run"]["stages"]["ingest"]["seconds"] for r in reps]),
        "producing_seconds": median(
            [r["run"]["stages"]["ingest"]["producing_seconds"] for r in reps]
        ),
        "transform_seconds": median([r["run"]["stages"]["transform"]["seconds"] for r in reps]),
        "load_seconds": median([r["run"]["stages"]["load"]["seconds"] for r in reps]),
    }
    for name in ("produce", "consume", "transform", "load"):
        out[f"{name}_ratio"] = median([r["ratios"][name] for r in reps])
    for name in ("producer_performance", "consumer_performance", "consume_only", "raw_copy",
                 "duckdb_transform"):  # fmt: skip
        out[f"{name}_seconds"] = median([(r["raw"].get(name) or {}).get("seconds") for r in reps])
    nv = results.get("naive")
    if nv and out["wall_seconds"]:
        out["speedup_vs_naive"] = round(
            nv["year_total_seconds_extrapolated"] / out["wall_seconds"], 1
        )
    air = results.get("airflow") or {}
    out["one_day_cycle_seconds"] = median(
        [c["trigger_to_warehouse_seconds"] for c in air.get("one_day", [])]
    )
    year = air.get("whole_year")
    out["airflow_year_seconds"] = year["chain_wall_seconds"] if year else None
    return out


def _verdicts(summary: dict[str, Any]) -> dict[str, bool | None]:
    def at_most(name: str, key: str) -> bool | None:
        value = summary.get(key)
        return None if value is None else value <= TARGETS[name]

    def at_least(name: str, key: str) -> bool | None:
        value = summary.get(key)
        return None if value is None else value >= TARGETS[name]

    return {
        "end_to_end_seconds": at_most("end_to_end_seconds", "wall_seconds"),
        "produce_ratio": at_least("produce_ratio", "produce_ratio"),
        "consume_ratio": at_least("consume_ratio", "consume_ratio"),
        "transform_ratio": at_least("transform_ratio", "transform_ratio"),
        "load_ratio": at_least("load_ratio", "load_ratio"),
        "speedup_vs_naive": at_least("speedup_vs_naive", "speedup_vs_naive"),
        "one_day_cycle_seconds": at_most("one_day_cycle_seconds", "one_day_cycle_seconds"),
        "airflow_year_seconds": at_most("airflow_year_seconds", "airflow_year_seconds"),
    }


def _year_runs(base: Settings, args: argparse.Namespace, results: dict[str, Any]) -> None:
    errors = results["errors"]
    for i in range(args.repeat):
        settle()
        before = load_average()
        say(f"whole year, run {i + 1} of {args.repeat}, isolated pipeline (load {before[0]}) ...")
        with isolated(base, f"year{i}") as settings:
            run = run_pipeline(settings, None, "12 months")
            raw = _limits(settings, run, errors)
            if i == args.repeat - 1:
                results["naive"] = _try(
                    errors, f"naive pipeline, {args.naive_sample:,} flights",
                    lambda: naive.run_naive(settings, args.naive_sample),
                )  # fmt: skip
        rep = {"run": run, "raw": raw, "load_before": before, "load_after": load_average()}
        rep["noisy"] = noisy(before)
        rep["ratios"] = _ratios(rep)
        results["year_runs"].append(rep)


def _scaling(base: Settings, results: dict[str, Any]) -> None:
    for label, replay in SPANS.items():
        if replay is None:
            continue
        settle()
        before = load_average()
        say(f"scaling: {label}, isolated pipeline ...")
        with isolated(base, label.replace(" ", "")) as settings:
            run = run_pipeline(settings, replay, label)
        results["scaling"][label] = {**run, "load_before": before, "noisy": noisy(before)}


def _airflow(base: Settings, args: argparse.Namespace, results: dict[str, Any]) -> None:
    use = args.airflow
    if use is None:
        use = airflow_cycle.available(base)
        if not use:
            say("Airflow API does not answer: skipping the Airflow cycles")
    if not use:
        return
    air: dict[str, Any] = {"one_day": []}
    for i in range(args.cycles):
        day = _try(
            results["errors"], f"airflow: one-day cycle {i + 1} of {args.cycles}",
            lambda: airflow_cycle.one_day_cycle(base),
        )  # fmt: skip
        if day:
            air["one_day"].append(day)
    air["whole_year"] = _try(
        results["errors"], "airflow: whole-year chain", lambda: airflow_cycle.run_cycle(base)
    )
    results["airflow"] = air


def _live_mode(settings: Settings) -> bool:
    import psycopg

    from flightpipe.live import clock

    try:
        return clock.mode(settings) == "live"
    except psycopg.Error:  # no warehouse answering: nothing runs live, the class measures go on
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description="flightpipe benchmarks (see bench/README.md)")
    parser.add_argument(
        "--airflow",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Also run cycles through Airflow (default: when its API answers).",
    )
    parser.add_argument("--repeat", type=int, default=3, help="Whole-year runs (median).")
    parser.add_argument("--cycles", type=int, default=3, help="One-day Airflow cycles.")
    parser.add_argument(
        "--naive-sample", type=int, default=3000, help="Flights the naive run times."
    )
    parser.add_argument("--skip-scaling", action="store_true", help="Leave out 1 and 3 months.")
    parser.add_argument(
        "--live-minutes", type=float, default=10.0, help="Live mode: minutes to watch (10)."
    )
    args = parser.parse_args()

    base = Settings()
    if _live_mode(base):
        # The class measures need the cores and the replay cursor that live mode is using.
        say("the deployment is in live mode: measuring its freshness and lag (bench.live)")
        live.measure(base, args.live_minutes)
        return
    results: dict[str, Any] = {
        "machine": machine_facts(base),
        "targets": TARGETS,
        "year_runs": [],
        "scaling": {},
        "errors": [],
    }
    start_load = results["machine"]["load_average_at_start"]
    results["noisy"] = noisy(start_load)
    say(f"{os.cpu_count()} cores, load average {start_load[0]} at start")
    if results["noisy"]:
        say("warning: the machine is busy (load average above the core count): marked noisy")
    log = OUT_DIR / "children.log"
    log.unlink(missing_ok=True)
    # What Airflow's scheduler imports before it forks a task (flightpipe.preload): the runs
    # then time the pipeline, not this process's first imports of Dask and its neighbours.
    preload.import_modules(preload.TASKS)
    started = time.perf_counter()
    with children_log(log):
        _year_runs(base, args, results)
        if not args.skip_scaling:
            _scaling(base, results)
    _airflow(base, args, results)
    results["load_average_at_end"] = load_average()
    results["summary"] = _summary(results)
    results["targets_met"] = _verdicts(results["summary"])
    results["harness_seconds"] = round(time.perf_counter() - started, 1)
    (BENCH_DIR / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    md = BENCH_DIR / "RESULTS.md"
    kept = history(md.read_text(encoding="utf-8")) if md.exists() else ""
    md.write_text(markdown(results, kept), encoding="utf-8")
    say(f"done in {results['harness_seconds']:.0f} s: bench/RESULTS.md, bench/results.json")
    print(markdown(results), flush=True)


if __name__ == "__main__":
    main()
