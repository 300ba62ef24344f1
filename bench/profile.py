"""Profile the stages with pyinstrument, each run in this process so the profiler sees it.

``python -m bench.profile [--days N]``: in an isolated pipeline, profiles one flights
producer (``produce_role``), one consumer member that consumes everything alone
(``consume_member``) and ``load()`` (the Dask part shows as waiting on the cluster). Text
and HTML reports go to ``bench/out/profile-<stage>.{txt,html}``.

Run it on a quiet machine, not next to ``make bench``: both need the two cores.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from pyinstrument import Profiler

from bench.common import OUT_DIR, children_log, isolated, say
from flightpipe.ingest import ROLES
from flightpipe.ingest.consume import consume_member, snapshot
from flightpipe.ingest.produce import produce_all, produce_role
from flightpipe.replay import ReplaySlice
from flightpipe.settings import Settings
from flightpipe.warehouse.load import load


def profiled(name: str, call: Callable[[], Any]) -> Any:
    profiler = Profiler(interval=0.001)
    started = time.perf_counter()
    profiler.start()
    try:
        return call()
    finally:
        profiler.stop()
        say(f"{name}: {time.perf_counter() - started:.2f} s")
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        text = profiler.output_text(unicode=True, color=False, show_all=False)
        (OUT_DIR / f"profile-{name}.txt").write_text(text, encoding="utf-8")
        (OUT_DIR / f"profile-{name}.html").write_text(profiler.output_html(), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description="Profile produce, consume and load.")
    parser.add_argument("--days", type=int, default=None, help="Days from Jan 1 (default: year).")
    args = parser.parse_args()
    replay = ReplaySlice(date(2013, 1, 1), args.days) if args.days else None
    base = Settings()
    with children_log(OUT_DIR / "profile-children.log"), isolated(base, "profile") as settings:
        say("profiling produce_role(flights-EWR) in process ...")
        profiled("produce", lambda: produce_role("flights-EWR", replay, settings=settings))
        others = [r for r in ROLES if r != "flights-EWR"]
        produce_all(replay, roles=others, settings=settings)
        until = snapshot(settings)
        say("profiling one consumer member that consumes everything ...")
        profiled("consume", lambda: consume_member(settings, until, member="landing-0"))
        say("profiling load() ...")
        profiled("load", lambda: load(settings))
    say(f"reports in {OUT_DIR}")


if __name__ == "__main__":
    main()
