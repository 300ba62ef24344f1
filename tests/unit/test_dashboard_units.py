"""The dashboard's pure parts and the freshness arithmetic, without services."""

from __future__ import annotations

import html.parser
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from flightpipe.dashboard import view
from flightpipe.dashboard.queries import ReplayClock, Snapshot, score
from flightpipe.settings import Settings
from flightpipe.stack import services
from flightpipe.warehouse.freshness import logical_topic, summarise

COMMIT = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


class Cells(html.parser.HTMLParser):
    """(data-fp of the enclosing table, data-key of the row, data-col) -> text."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str, str], str] = {}
        self.figures: dict[str, str] = {}
        self._table = self._row = self._col = self._figure = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            self._table = a.get("data-fp", "")
        elif tag == "tr":
            self._row = a.get("data-key", "")
        elif tag == "td":
            self._col = a.get("data-col", "")
        elif "data-fp" in a:
            self._figure = a["data-fp"]

    def handle_data(self, data: str) -> None:
        if self._col:
            self.cells[(self._table, self._row, self._col)] = data
        elif self._figure:
            self.figures[self._figure] = data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._col = ""
        elif tag == "div":
            self._figure = ""


def parse(fragment: str) -> Cells:
    parser = Cells()
    parser.feed(fragment)
    return parser


def test_summarise_matches_an_independent_percentile() -> None:
    ages = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    produced = pd.Series([COMMIT - timedelta(seconds=float(a)) for a in ages])
    fresh = summarise("flights", produced, COMMIT)
    assert fresh is not None
    # Linear interpolation between closest ranks, by hand: p50 is the middle value, p95 lies
    # 80% of the way from the 4th to the 5th value.
    assert fresh.p50_s == pytest.approx(3.0)
    assert fresh.p95_s == pytest.approx(4.0 + 0.8 * (100.0 - 4.0))
    assert fresh.max_s == pytest.approx(100.0) and fresh.rows == 5
    assert fresh.produced_first == COMMIT - timedelta(seconds=100)
    assert fresh.produced_last == COMMIT - timedelta(seconds=1)


def test_summarise_skips_rows_without_a_timestamp() -> None:
    assert summarise("weather", pd.Series([None, None], dtype="object"), COMMIT) is None
    one = summarise("weather", pd.Series([None, COMMIT - timedelta(seconds=7)]), COMMIT)
    assert one is not None and one.rows == 1
    assert one.p50_s == one.p95_s == one.max_s == pytest.approx(7.0)


def test_logical_topic_strips_any_prefix() -> None:
    assert logical_topic("t1234abcd-flights") == "flights"
    assert logical_topic("weather") == "weather"
    assert logical_topic("odd") == "odd"


def test_table_rows_carry_their_keys_and_escape_values() -> None:
    frame = pd.DataFrame({"origin": ["EWR", "<b>"], "flights": [1234, None]})
    fragment = view.table(
        "origins", frame, [("origin", "o", view.text), ("flights", "n", view.number)], "origin"
    )
    cells = parse(fragment).cells
    assert cells[("origins", "EWR", "flights")] == "1,234"
    assert cells[("origins", "<b>", "flights")] == view.MISSING
    assert "<b>" not in fragment.replace("&lt;b&gt;", "")
    assert "nothing yet" in view.table("x", frame.iloc[0:0], [], empty="nothing yet")


def test_formatting() -> None:
    assert view.number(1234567) == "1,234,567" and view.number(2.345, 1) == "2.3"
    assert view.number(None) == view.number(float("nan")) == view.MISSING
    assert view.percent(0.8123) == "81.2%" and view.percent(None) == view.MISSING
    assert view.when(date(2013, 1, 2)) == "2013-01-02"
    eastern = datetime(2013, 1, 1, 18, 59, tzinfo=ZoneInfo("America/New_York"))
    assert view.when(eastern) == "2013-01-01 23:59 UTC"
    assert view.yes_no(1) == "yes" and view.yes_no(0) == "no" and view.yes_no(None) == "–"


def snapshot_of(**parts: object) -> Snapshot:
    return Snapshot(taken_at=COMMIT, **parts)  # type: ignore[arg-type]


def test_headline_of_an_empty_warehouse_says_so() -> None:
    figures = parse(view.headline(snapshot_of(clock=None, dead_letters={}))).figures
    assert figures["replay-clock"] == view.MISSING
    assert figures["freshness-p50"] == view.MISSING
    assert figures["dead-letters-total"] == view.MISSING
    assert figures["rejected-total"] == "0"
    assert figures["landed-flights"] == view.MISSING


def test_headline_figures() -> None:
    snap = snapshot_of(
        clock=ReplayClock(date(2013, 1, 3), COMMIT, datetime(2013, 1, 2, 23, 59, tzinfo=UTC),
                          date(2013, 1, 2)),
        recent_flights=1800,
        landed_flights=2100,
        freshness=pd.DataFrame({"batch_id": [2, 1], "p50_s": [12.34, 5.0], "p95_s": [20.0, 6.0]}),
        rejected=pd.DataFrame({"topic": ["flights"], "reason": ["r"], "rows": [3]}),
        dead_letters={"flights": 2, "weather": 1},
    )  # fmt: skip
    fragment = view.headline(snap)
    figures = parse(fragment).figures
    assert figures["replay-clock"] == "2013-01-02 23:59 UTC"
    assert "New York: 2013-01-02 18:59" in fragment
    assert figures["current-day"] == "2013-01-02"
    assert figures["recent-flights"] == "1,800" and figures["landed-flights"] == "2,100"
    assert figures["freshness-p50"] == "12.3 s" and figures["freshness-p95"] == "20.0 s"
    assert figures["dead-letters-total"] == "3" and figures["rejected-total"] == "3"


def test_lag_table_keys_are_topic_and_partition() -> None:
    lags = pd.DataFrame(
        {"topic": ["p-flights"], "partition": [4], "end": [10], "committed": [None], "lag": [10]}
    )
    cells = parse(view.lag_table(snapshot_of(lags=lags))).cells
    assert cells[("lag", "p-flights/4", "lag")] == "10"
    assert cells[("lag", "p-flights/4", "committed")] == view.MISSING
    down = snapshot_of(errors={"kafka": "KafkaException: transport failure"})
    assert "Kafka did not answer" in view.lag_table(down)
    assert 'data-fp="error-kafka"' in view.status_line(down)


def test_score_counts_only_arrived_flights_as_labelled() -> None:
    frame = pd.DataFrame(
        {
            "model_run_id": [7, 7, 7],
            "full_date": [date(2013, 1, 1)] * 3,
            "predicted_label": [1, 0, 1],
            "actual_label": [1, 0, None],
        }
    )
    result = score(frame)
    assert (result.scored, result.labelled, result.predicted_late) == (3, 2, 2)
    assert (result.actually_late, result.correct, result.accuracy) == (1, 2, 1.0)
    assert score(frame.iloc[0:0]).model_run_id is None


def test_dashboard_is_a_supervised_program_on_its_port(tmp_path: object) -> None:
    settings = Settings(run_dir=tmp_path, dashboard_port=18050)  # type: ignore[arg-type]
    [prog] = [p for p in services.programs(settings, {}) if p.name == "dashboard"]
    assert prog.command[-1] == "dashboard"
    assert services.ports(settings)["dashboard"] == [(18050, "FLIGHTPIPE_DASHBOARD_PORT")]
    assert settings.dashboard_url == "http://127.0.0.1:18050"
