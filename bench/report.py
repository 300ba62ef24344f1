"""RESULTS.md from results.json: machine facts, ratios to the raw limits, scaling, Airflow."""

from __future__ import annotations

from typing import Any


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _met(value: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[value]


def _machine(m: dict[str, Any]) -> list[str]:
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


def _stages(r: dict[str, Any]) -> list[str]:
    year = r["scaling"]["12 months"]
    st, raw, ratios, met = year["stages"], r.get("raw", {}), r["ratios"], r["targets_met"]
    events = year["events"]
    pp, cp = raw.get("producer_performance"), raw.get("consumer_performance")
    dm, rc = raw.get("dask_in_memory"), raw.get("raw_copy")
    rows = [
        (
            "produce (5 producer processes)",
            st["produce"],
            f"{events / st['produce']['seconds']:,.0f} ev/s",
            "ProducerPerformance, same count and record size, acks=all, lz4, idempotent",
            f"{pp['records_per_second']:,} rec/s ({pp['seconds']:.2f} s)" if pp else "-",
            ratios.get("produce"),
            met.get("produce_ratio"),
        ),
        (
            "consume (group of 3 into Parquet)",
            st["consume"],
            f"{events / st['consume']['seconds']:,.0f} ev/s",
            "ConsumerPerformance on the same flights topic",
            f"{cp['records_per_second']:,} rec/s ({cp['seconds']:.2f} s)" if cp else "-",
            ratios.get("consume"),
            met.get("consume_ratio"),
        ),
        (
            "transform (Dask, from landing)",
            st["transform"],
            f"{events / st['transform']['seconds']:,.0f} ev/s",
            "same Dask graph, input already in worker memory",
            f"{dm['seconds']:.2f} s" if dm else "-",
            ratios.get("transform"),
            met.get("transform_ratio"),
        ),
        (
            "load (COPY staging, upserts, checks)",
            st["load"],
            f"{st['load']['rows_loaded'] / st['load']['seconds']:,.0f} rows/s",
            "raw binary COPY of the final fact rows into empty tables",
            f"{rc['seconds']:.2f} s ({rc['rows']:,} rows)" if rc else "-",
            ratios.get("load"),
            met.get("load_ratio"),
        ),
    ]
    lines = [
        "## Whole year end to end, no Airflow (isolated pipeline)",
        "",
        f"**{year['wall_seconds']:.2f} s** for {events:,} events "
        f"({year['events_per_second']:,} events/s end to end). Target ≤ "
        f"{r['targets']['end_to_end_seconds']:.0f} s: {_met(met['end_to_end_seconds'])}.",
        "",
        "| stage | seconds | throughput | peak RSS MB | raw limit | raw | ratio | ≥ 0.5 |",
        "|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for name, s, rate, limit, raw_text, ratio, ok in rows:
        lines.append(
            f"| {name} | {s['seconds']:.2f} | {rate} | {s['peak_rss_mb']:.0f} | {limit} | "
            f"{raw_text} | {_f(ratio)} | {_met(ok)} |"
        )
    timings = st["load"].get("timings", {})
    lines += [
        "",
        "Ratio = stage throughput / raw-limit throughput (= raw seconds / stage seconds): "
        "1.0 means the stage runs at its raw limit. Peak RSS: harness process plus its children "
        "(producer and consumer processes); Dask workers, broker and PostgreSQL are separate "
        "services and not included. Transform and load share one call, hence one peak.",
        "",
        "Inside transform + load (load()'s own timings, s): "
        + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()),
        "",
    ]
    return lines


def _naive(r: dict[str, Any]) -> list[str]:
    nv = r.get("naive")
    if not nv:
        return []
    year = r["scaling"]["12 months"]
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
    ours = {k: v["seconds"] for k, v in year["stages"].items()}
    for step, seconds in nv["sample_seconds"].items():
        lines.append(
            f"| {step} | {seconds:.2f} | {nv['year_seconds_extrapolated'][step]:,.1f} | "
            f"{ours.get(step, 0):.2f} |"
        )
    speedup = r["ratios"].get("speedup_vs_naive")
    lines += [
        f"| **total** | {nv['sample_total_seconds']:.2f} | "
        f"{nv['year_total_seconds_extrapolated']:,.1f} | {year['wall_seconds']:.2f} |",
        "",
        f"flightpipe is **{_f(speedup, 1)}×** faster than the naive pipeline "
        f"(target ≥ {r['targets']['speedup_vs_naive']:.0f}×: "
        f"{_met(r['targets_met'].get('speedup_vs_naive'))}).",
        "",
    ]
    return lines


def _scaling(r: dict[str, Any]) -> list[str]:
    lines = [
        "## Scaling (no Airflow, each span in its own isolated pipeline)",
        "",
        "| span | events | wall s | µs/event | produce s | consume s | transform s | load s "
        "| peak RSS MB (max stage) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, run in r["scaling"].items():
        st = run["stages"]
        peak = max(s["peak_rss_mb"] for s in st.values())
        lines.append(
            f"| {label} | {run['events']:,} | {run['wall_seconds']:.2f} | "
            f"{1e6 * run['wall_seconds'] / run['events']:.1f} | {st['produce']['seconds']:.2f} | "
            f"{st['consume']['seconds']:.2f} | {st['transform']['seconds']:.2f} | "
            f"{st['load']['seconds']:.2f} | {peak:.0f} |"
        )
    lines += [
        "",
        "Linear or better (µs/event does not grow with the span, 10 % noise allowed): "
        f"{_met(r['targets_met'].get('scaling_linear_or_better'))}.",
        "",
    ]
    return lines


def _airflow(r: dict[str, Any]) -> list[str]:
    a = r.get("airflow")
    if not a:
        return []
    year = r["scaling"]["12 months"]
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
        f"* chain (trigger → last of reports/ml done): **{a['chain_wall_seconds']:.1f} s**; "
        f"trigger → warehouse done: {a['ingest_to_warehouse_wall_seconds']:.1f} s "
        f"(no Airflow: {year['wall_seconds']:.1f} s)",
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


def markdown(r: dict[str, Any]) -> str:
    lines = ["# flightpipe benchmark results", "", "Generated by `make bench`.", ""]
    lines += _machine(r["machine"])
    if "12 months" in r["scaling"]:
        lines += _stages(r)
        lines += _naive(r)
    lines += _scaling(r)
    lines += _airflow(r)
    met = r["targets_met"]
    lines += ["## Targets", "", "| target | result |", "|---|---|"]
    lines += [f"| {name} | {_met(ok)} |" for name, ok in met.items()]
    if r.get("errors"):
        lines += ["", "Errors: " + "; ".join(r["errors"])]
    lines.append("")
    return "\n".join(lines)
