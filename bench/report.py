"""RESULTS.md from results.json: machine facts, ratios to the raw limits, scaling, Airflow."""

from __future__ import annotations

from typing import Any


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _met(value: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[value]


def machine_lines(m: dict[str, Any]) -> list[str]:
    v = m["versions"]
    load = ", ".join(str(x) for x in m["load_average_at_start"])
    return [
        f"Run {m['date']} on {m['cores']} cores, {m['memory_gib']} GiB, {m['platform']}; "
        f"load average at start {load} (1/5/15 min). "
        f"Kafka {v['kafka']} (librdkafka {v['librdkafka']}), PostgreSQL {v['postgresql']}, "
        f"Python {v['python']}, Dask {v['dask']}, pandas {v['pandas']}, pyarrow {v['pyarrow']}, "
        f"psycopg {v['psycopg']}, Airflow {v['apache-airflow']}.",
        "",
    ]


def _noisy(flag: bool | None) -> str:
    return " **noisy**" if flag else ""


def _stages(r: dict[str, Any]) -> list[str]:
    sm, met, t = r["summary"], r["targets_met"], r["targets"]
    reps = r["year_runs"]
    rows = [
        ("ingest: producers (5 processes, beside the members)", sm["producing_seconds"],
         "ProducerPerformance, same count and sizes, acks=all, lz4, idempotent",
         sm["producer_performance_seconds"], "produce"),
        ("ingest: consumer members alone (3 processes into Parquet)", sm["consume_only_seconds"],
         "ConsumerPerformance on the same flights topic", sm["consumer_performance_seconds"],
         "consume"),
        ("transform (Dask, landing to clean zone)", sm["transform_seconds"],
         "the same cleaning in DuckDB, one process, same landing files",
         sm["duckdb_transform_seconds"], "transform"),
        ("load + checks (staging, upserts, data checks)", sm["load_seconds"],
         "binary COPY of the final fact rows into empty tables", sm["raw_copy_seconds"], "load"),
    ]  # fmt: skip
    lines = [
        "## Whole year end to end, no Airflow (isolated pipeline)",
        "",
        f"**{_f(sm['wall_seconds'])} s** median of {len(reps)} runs (ingest "
        f"{_f(sm['ingest_seconds'])} s as one flow, transform {_f(sm['transform_seconds'])} s, "
        f"load {_f(sm['load_seconds'])} s). Target ≤ {t['end_to_end_seconds']:.0f} s: "
        f"{_met(met['end_to_end_seconds'])}.",
        "",
        "| stage | median s | raw limit | median s | ratio (median) | target | |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for name, ours, limit, raw, key in rows:
        lines.append(
            f"| {name} | {_f(ours)} | {limit} | {_f(raw)} | {_f(sm[f'{key}_ratio'])} | "
            f"≥ {t[f'{key}_ratio']} | {_met(met[f'{key}_ratio'])} |"
        )
    lines += [
        "",
        "Ratio = throughput of the stage / throughput of its raw limit, for the same work "
        "(1.0: at the raw limit), per run, then the median. The transform's ratio is DuckDB's "
        "seconds over Dask's: 0.5 means Dask takes twice as long. Pipeline and limits alternate "
        "(run 1, its limits, run 2, its limits, ...).",
        "",
        "| run | load avg before → after | wall s | ingest s | producers done s | transform s "
        "| load s | ratios produce / consume / transform / load |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for i, rep in enumerate(reps, 1):
        st, ra = rep["run"]["stages"], rep["ratios"]
        ratios = " / ".join(_f(ra[k]) for k in ("produce", "consume", "transform", "load"))
        lines.append(
            f"| {i}{_noisy(rep['noisy'])} | {rep['load_before'][0]} → {rep['load_after'][0]} | "
            f"{rep['run']['wall_seconds']:.2f} | {st['ingest']['seconds']:.2f} | "
            f"{st['ingest']['producing_seconds']:.2f} | {st['transform']['seconds']:.2f} | "
            f"{st['load']['seconds']:.2f} | {ratios} |"
        )
    timings = reps[-1]["run"]["stages"]["load"].get("timings", {}) if reps else {}
    lines += [
        "",
        "Inside the last run's load (its own timings, s): "
        + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()),
        "",
    ]
    return lines


def _naive(r: dict[str, Any]) -> list[str]:
    nv = r.get("naive")
    if not nv or not r["year_runs"]:
        return []
    year = r["year_runs"][-1]["run"]
    lines = [
        "## Against the naive pipeline",
        "",
        f"Naive = one produce + flush per message, one auto-commit consumer polling one message "
        f"at a time, pandas transform, one INSERT + COMMIT per row. **Timed on the first "
        f"{nv['sample_flights']:,} flights and extrapolated linearly** (× {nv['scale_to_year']}) "
        "to the 336,776 flights of the year; weather and reference events are left out of it.",
        "",
        "| step | naive sample s | naive year s (extrapolated) | flightpipe year s |",
        "|---|---:|---:|---:|",
    ]
    st = year["stages"]
    # The naive steps are sequential; ours overlap produce and consume in one ingest flow.
    ours = {
        "produce": st["ingest"]["producing_seconds"],
        "consume": st["ingest"]["seconds"] - st["ingest"]["producing_seconds"],
        "transform": st["transform"]["seconds"],
        "load": st["load"]["seconds"],
    }
    for step, seconds in nv["sample_seconds"].items():
        lines.append(
            f"| {step} | {seconds:.2f} | {nv['year_seconds_extrapolated'][step]:,.1f} | "
            f"{ours.get(step, 0):.2f} |"
        )
    speedup = r["summary"].get("speedup_vs_naive")
    lines += [
        f"| **total** | {nv['sample_total_seconds']:.2f} | "
        f"{nv['year_total_seconds_extrapolated']:,.1f} | {year['wall_seconds']:.2f} |",
        "",
        "Our consume row is what the members needed after the producers were done (they run "
        "beside them). The speed-up uses the median whole-year wall time.",
        "",
        f"flightpipe is **{_f(speedup, 1)}×** faster than the naive pipeline "
        f"(target ≥ {r['targets']['speedup_vs_naive']:.0f}×: "
        f"{_met(r['targets_met'].get('speedup_vs_naive'))}).",
        "",
    ]
    return lines


def _scaling(r: dict[str, Any]) -> list[str]:
    runs = dict(r["scaling"])
    if r["year_runs"]:
        runs["12 months"] = r["year_runs"][-1]["run"]
    if len(runs) < 2:
        return []
    lines = [
        "## Scaling (no Airflow, each span in its own isolated pipeline, one run each)",
        "",
        "| span | events | wall s | µs/event | ingest s | transform s | load s "
        "| peak memory MB (PSS, max stage) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, run in runs.items():
        st = run["stages"]
        peak = max(s["peak_memory_mb"] for s in st.values())
        lines.append(
            f"| {label}{_noisy(run.get('noisy'))} | {run['events']:,} | "
            f"{run['wall_seconds']:.2f} | {1e6 * run['wall_seconds'] / run['events']:.1f} | "
            f"{st['ingest']['seconds']:.2f} | {st['transform']['seconds']:.2f} | "
            f"{st['load']['seconds']:.2f} | {peak:.0f} |"
        )
    lines += [
        "",
        "Fixed costs (process start-up, Dask and PostgreSQL round trips) dominate the short "
        "spans: their µs/event is higher.",
        "",
    ]
    return lines


def _one_day(r: dict[str, Any]) -> list[str]:
    cycles = (r.get("airflow") or {}).get("one_day") or []
    if not cycles:
        return []
    sm, t = r["summary"], r["targets"]
    lines = [
        "## One-day cycle through Airflow (live deployment)",
        "",
        f"Trigger `flightpipe_ingest` for one day of 2013, until `flightpipe_load` has "
        f"published the warehouse: **{_f(sm['one_day_cycle_seconds'], 1)} s** median of "
        f"{len(cycles)} (target ≤ {t['one_day_cycle_seconds']:.0f} s: "
        f"{_met(r['targets_met']['one_day_cycle_seconds'])}).",
        "",
        "| cycle | day | trigger → landing published s | → clean published s | → warehouse "
        "published s | queued → start s | load avg |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for i, c in enumerate(cycles, 1):
        lines.append(
            f"| {i}{_noisy(c.get('noisy'))} | {c['day']} | {c['trigger_to_landing_seconds']:.1f} | "
            f"{c['trigger_to_clean_seconds']:.1f} | {c['trigger_to_warehouse_seconds']:.1f} | "
            f"{c['start_delay_seconds']:.1f} | {c['load_before'][0]} |"
        )
    lines.append("")
    return lines


def _airflow(r: dict[str, Any]) -> list[str]:
    a = (r.get("airflow") or {}).get("whole_year")
    if not a:
        return []
    wall = r["summary"].get("wall_seconds")
    lines = [
        "## Whole year through Airflow (live deployment, REST API)",
        "",
        "Trigger `flightpipe_ingest` with `whole_year`, then the Asset-triggered "
        "`flightpipe_transform` and `flightpipe_load`, then `flightpipe_reports` and "
        "`flightpipe_ml`. Uses the live "
        "topics and warehouse (which may already hold these rows: then the upserts change "
        "nothing). Overhead = chain wall time − time during which at least one task of the "
        "chain was running (the gaps: queueing, scheduling, Asset hand-offs, task start-up).",
        "",
        f"* chain (trigger → last of reports/ml done): **{a['chain_wall_seconds']:.1f} s** "
        f"(target ≤ {r['targets']['airflow_year_seconds']:.0f} s: "
        f"{_met(r['targets_met']['airflow_year_seconds'])}); "
        f"trigger → warehouse done: {a['ingest_to_warehouse_wall_seconds']:.1f} s "
        f"(no Airflow: {_f(wall, 1)} s)",
        f"* tasks busy: {a['task_busy_seconds']:.1f} s; **Airflow overhead "
        f"{a['overhead_seconds']:.1f} s ({100 * (a['overhead_share'] or 0):.0f} % of the chain)**",
        "",
        "| DAG | state | queued → end s | queued → start s | busy s | sum of tasks s | "
        "longest tasks |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for dag_id, d in a["dags"].items():
        longest = sorted(d["tasks"].items(), key=lambda kv: -kv[1])[:3]
        lines.append(
            f"| {dag_id} | {d['state']} | {d['queued_to_end_seconds']:.1f} | "
            f"{d['start_delay_seconds']:.1f} | {d['task_busy_seconds']:.1f} | "
            f"{d['task_sum_seconds']:.1f} | " + ", ".join(f"{k} {v:.1f}" for k, v in longest) + " |"
        )
    lines.append("")
    return lines


HISTORY = "## History"


def history(previous: str) -> str:
    """The hand-written part of an earlier RESULTS.md (before/after figures), kept as is."""
    at = previous.find(HISTORY)
    return previous[at:] if at >= 0 else ""


def markdown(r: dict[str, Any], kept: str = "") -> str:
    lines = ["# flightpipe benchmark results", "", "Generated by `make bench`.", ""]
    lines += machine_lines(r["machine"])
    end = r.get("load_average_at_end")
    lines += [
        f"Load average at the end: {', '.join(map(str, end or []))}. "
        + (
            "**Noisy: the 1-minute load average at the start exceeded the core count; "
            "do not trust these figures.**"
            if r.get("noisy")
            else "Quiet at the start (1-minute load average ≤ cores)."
        ),
        "",
    ]
    lines += _stages(r)
    lines += _naive(r)
    lines += _scaling(r)
    lines += _one_day(r)
    lines += _airflow(r)
    met = r["targets_met"]
    lines += ["## Targets", "", "| target | goal | result |", "|---|---:|---|"]
    lines += [f"| {name} | {r['targets'][name]} | {_met(ok)} |" for name, ok in met.items()]
    if r.get("errors"):
        lines += ["", "Errors: " + "; ".join(r["errors"])]
    lines.append("")
    if kept:
        lines += [kept.rstrip(), ""]
    return "\n".join(lines)
