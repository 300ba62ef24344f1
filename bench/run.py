"""`make bench`: the whole benchmark in one run, as ratios measured side by side.

1. scaling: the pipeline without Airflow for 1, 3 and 12 months, each in an isolated
   pipeline (own topics, consumer group, data folder, throwaway database);
2. raw limits next to the 12-month run, on its data: Kafka ProducerPerformance and
   ConsumerPerformance, raw binary COPY of the final facts, Dask transform from memory;
3. the naive pipeline on a sample, extrapolated to the year;
4. optionally one whole-year cycle through the live Airflow deployment.

The machine is shared and has two cores, so absolute numbers move from run to run; the
ratios, measured minutes apart under the same load, are the result. Writes
``bench/results.json`` and ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench import airflow_cycle, limits, naive
from bench.common import BENCH_DIR, OUT_DIR, children_log, isolated, machine_facts, say
from bench.report import markdown
from bench.stages import SPANS, run_pipeline
from flightpipe.settings import Settings

TARGETS = {"end_to_end_seconds": 20.0, "stage_ratio": 0.5, "speedup_vs_naive": 20.0}


def _ratios(results: dict[str, Any]) -> dict[str, Any]:
    year = results["scaling"]["12 months"]
    st = year["stages"]
    raw = results["raw"]
    events = year["events"]
    out: dict[str, Any] = {}

    def put(name: str, value: float | None) -> None:
        out[name] = None if value is None else round(value, 3)

    pp, cp = raw.get("producer_performance"), raw.get("consumer_performance")
    put("produce", (events / st["produce"]["seconds"]) / pp["records_per_second"] if pp else None)
    put("consume", (events / st["consume"]["seconds"]) / cp["records_per_second"] if cp else None)
    dm, rc = raw.get("dask_in_memory"), raw.get("raw_copy")
    put("transform", dm["seconds"] / st["transform"]["seconds"] if dm else None)
    put("load", rc["seconds"] / st["load"]["seconds"] if rc else None)
    nv = results.get("naive")
    put(
        "speedup_vs_naive",
        nv["year_total_seconds_extrapolated"] / year["wall_seconds"] if nv else None,
    )
    return out


def _verdicts(results: dict[str, Any]) -> dict[str, bool | None]:
    ratios = results["ratios"]
    year = results["scaling"]["12 months"]
    verdicts: dict[str, bool | None] = {
        "end_to_end_seconds": year["wall_seconds"] <= TARGETS["end_to_end_seconds"]
    }
    for name in ("produce", "consume", "transform", "load"):
        value = ratios.get(name)
        verdicts[f"{name}_ratio"] = None if value is None else value >= TARGETS["stage_ratio"]
    speedup = ratios.get("speedup_vs_naive")
    verdicts["speedup_vs_naive"] = (
        None if speedup is None else speedup >= TARGETS["speedup_vs_naive"]
    )
    scaling = results["scaling"]
    per_event = [scaling[s]["wall_seconds"] / scaling[s]["events"] for s in SPANS if s in scaling]
    # Linear or better: a bigger span never costs more per event (10% noise allowance).
    verdicts["scaling_linear_or_better"] = all(
        later <= earlier * 1.10 for earlier, later in itertools.pairwise(per_event)
    )
    return verdicts


def _best_of(times: int, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A limit is the best the machine can do: on a shared box, keep the fastest try."""
    tries = [measure() for _ in range(times)]
    best = min(tries, key=lambda t: t["seconds"])
    return {**best, "tries_seconds": [t["seconds"] for t in tries]}


def _measure_raw(settings: Settings, year: dict[str, Any], results: dict[str, Any]) -> None:
    raw: dict[str, Any] = results.setdefault("raw", {})
    topic = settings.topic("flights")
    flights = year["stages"]["produce"]["flights"]
    perf_topic = settings.topic("perf")
    steps = [
        ("consumer_performance", lambda: limits.consumer_performance(settings, topic, flights)),
        ("producer_performance", lambda: limits.producer_performance(settings, perf_topic)),
        ("raw_copy", lambda: limits.raw_copy(settings)),
        ("dask_in_memory", lambda: _best_of(2, lambda: limits.dask_in_memory(settings))),
    ]  # fmt: skip
    try:
        for name, measure in steps:
            say(f"raw limit: {name} ...")
            raw[name] = measure()
            say(f"  {name}: {raw[name]}")
    finally:
        limits.delete_topic(settings, settings.topic("perf"))


def main() -> None:
    parser = argparse.ArgumentParser(description="flightpipe benchmarks (see bench/README.md)")
    parser.add_argument(
        "--airflow",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Also run one whole-year cycle through Airflow (default: when its API answers).",
    )
    parser.add_argument(
        "--naive-sample", type=int, default=3000, help="Flights the naive run times."
    )
    parser.add_argument("--skip-scaling", action="store_true", help="Only the 12-month run.")
    args = parser.parse_args()

    base = Settings()
    results: dict[str, Any] = {"machine": machine_facts(base), "targets": TARGETS, "scaling": {}}
    load1 = results["machine"]["load_average_at_start"][0]
    say(f"{os.cpu_count()} cores, load average {load1} at start")
    log = OUT_DIR / "children.log"
    log.unlink(missing_ok=True)
    started = time.perf_counter()
    errors: list[str] = []
    spans = {k: v for k, v in SPANS.items() if not (args.skip_scaling and k != "12 months")}
    with children_log(log):
        for label, replay in spans.items():
            say(f"end to end, {label}, isolated pipeline ...")
            with isolated(base, label.replace(" ", "")) as settings:
                year = run_pipeline(settings, replay, label)
                results["scaling"][label] = year
                if label != "12 months":
                    continue
                # Raw limits and the baseline in the same pipeline, right after its run.
                try:
                    _measure_raw(settings, year, results)
                except Exception as exc:  # a missing limit must not lose the other numbers
                    errors.append(f"raw limits: {exc!r}")
                    say(f"error: raw limits: {exc!r}\n{traceback.format_exc()}")
                say(f"naive pipeline, {args.naive_sample:,} flights ...")
                try:
                    results["naive"] = naive.run_naive(settings, args.naive_sample)
                except Exception as exc:
                    errors.append(f"naive: {exc!r}")
                    say(f"error: naive pipeline: {exc!r}\n{traceback.format_exc()}")

    use_airflow = args.airflow
    if use_airflow is None:
        use_airflow = airflow_cycle.available(base)
        if not use_airflow:
            say("Airflow API does not answer: skipping the Airflow cycle")
    if use_airflow:
        say("one whole-year cycle through Airflow (live deployment) ...")
        try:
            results["airflow"] = airflow_cycle.run_cycle(base)
            a = results["airflow"]
            say(
                f"  airflow chain {a['chain_wall_seconds']:.1f} s, "
                f"overhead {a['overhead_seconds']:.1f} s"
            )
        except Exception as exc:
            errors.append(f"airflow: {exc!r}")
            say(f"error: airflow cycle: {exc!r}")

    results["ratios"] = _ratios(results)
    results["targets_met"] = _verdicts(results)
    results["errors"] = errors
    results["harness_seconds"] = round(time.perf_counter() - started, 1)
    (BENCH_DIR / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (BENCH_DIR / "RESULTS.md").write_text(markdown(results), encoding="utf-8")
    say(f"done in {results['harness_seconds']:.0f} s: bench/RESULTS.md, bench/results.json")
    print(markdown(results), flush=True)


if __name__ == "__main__":
    main()
