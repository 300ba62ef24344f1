"""Charts and the HTML report, drawn from a real warehouse.

The warehouse is a throwaway database loaded by the warehouse's own code (every 12th flight
of 2013), with a trained model and a few Airflow task timings, so every chart has content.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import psycopg
import pytest
from matplotlib import image as mpimg
from test_ml import throwaway_warehouse

from flightpipe.analytics.charts import CHARTS, DRAW, new_figure, placeholder, save
from flightpipe.analytics.report import (
    LATEST,
    build_report,
    draw_charts,
    point_latest,
    run_dirs,
    safe_run_id,
)
from flightpipe.ml.predict import predict
from flightpipe.ml.train import train
from flightpipe.settings import Settings

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
AIRFLOW_RUN_ID = "scheduled__2013-06-01T00:00:00+00:00"


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img" and values.get("src"):
            self.images.append(str(values["src"]))
        if tag == "a" and values.get("href"):
            self.hrefs.append(str(values["href"]))


def links_of(index: Path) -> Links:
    parser = Links()
    parser.feed(index.read_text(encoding="utf-8"))
    return parser


def distinct_colours(png: Path) -> int:
    pixels = mpimg.imread(png)
    rgb = (pixels[..., :3] * 255).astype(np.uint32)
    return len(np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]))


def record_task_runs(settings: Settings) -> None:
    """Two Airflow runs, one with a mapped task, as the DAGs record them."""
    start = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    rows = []
    for run in range(2):
        run_id = f"scheduled__{run}"
        t = start + timedelta(minutes=5 * run)
        for task, seconds, maps in (("produce", 4.0, 3), ("consume", 6.5, 2), ("load", 3.0, 1)):
            for index in range(maps):
                rows.append(("flightpipe_ingest", run_id, task, index if maps > 1 else -1, t,
                              t + timedelta(seconds=seconds + index)))  # fmt: skip
            t += timedelta(seconds=seconds + maps)
    with psycopg.connect(settings.warehouse_dsn) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO meta.task_runs (dag_id, run_id, task_id, map_index, started_at,"
            " ended_at, state) VALUES (%s, %s, %s, %s, %s, %s, 'success')",
            rows,
        )


@dataclass
class Built:
    settings: Settings
    first: Path
    second: Path


@pytest.fixture(scope="module")
def built(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    for settings in throwaway_warehouse(stack, tmp_path_factory.mktemp("analytics"), 12):
        train(settings, max_train_rows=20_000)
        predict(settings)
        record_task_runs(settings)
        first = build_report(settings)
        os.utime(first, (first.stat().st_atime, first.stat().st_mtime - 60))
        # The second run as an orchestrator runs it: charts task, then report task.
        drawn = draw_charts(settings, AIRFLOW_RUN_ID)
        assert json.loads(json.dumps(drawn))["run_id"] == safe_run_id(AIRFLOW_RUN_ID)
        second = build_report(settings, AIRFLOW_RUN_ID, reuse_charts=True)
        yield Built(settings, first, second)


@pytest.mark.services
def test_every_chart_is_a_real_png_of_its_size(built: Built) -> None:
    summary = json.loads((built.second.parent / "summary.json").read_text())
    assert [c["key"] for c in summary["charts"]] == [spec.key for spec in CHARTS]
    for chart in summary["charts"]:
        png = built.second.parent / chart["file"]
        assert png.read_bytes()[:8] == PNG_SIGNATURE, png.name
        height, width = mpimg.imread(png).shape[:2]
        assert (width, height) == (chart["width_px"], chart["height_px"]), png.name
        assert distinct_colours(png) > 200, f"{png.name} looks blank"


@pytest.mark.services
def test_report_links_every_chart_and_every_link_resolves(built: Built) -> None:
    links = links_of(built.second)
    folder = built.second.parent
    assert sorted(links.images) == sorted(spec.filename for spec in CHARTS)
    for target in [*links.images, *links.hrefs]:
        if target.startswith("#"):
            continue
        assert (folder / target).resolve().is_file(), target
    # The second run links the first one.
    assert f"../{built.first.parent.name}/index.html" in links.hrefs


@pytest.mark.services
def test_report_shows_kpis_model_and_checks(built: Built) -> None:
    html = built.second.read_text(encoding="utf-8")
    with psycopg.connect(built.settings.warehouse_dsn) as conn:
        row = conn.execute("SELECT count(*), max(model_run_id) FROM dw.fact_flight,"
                           " (SELECT max(model_run_id) AS model_run_id FROM ml.model_runs) m"
                           " GROUP BY m.model_run_id").fetchone()  # fmt: skip
    assert row is not None
    flights, _ = row
    assert f"{flights:,}" in html
    assert "HistGradientBoostingClassifier" in html and "LogisticRegression" in html
    assert "orphan_fk.fact_flight.airline_key" in html
    summary = json.loads((built.second.parent / "summary.json").read_text())
    assert summary["kpis"]["flights"] == flights
    assert summary["checks_failed"] == 0


@pytest.mark.services
def test_latest_points_at_the_newest_run(built: Built) -> None:
    reports = built.settings.reports_dir
    latest = reports / LATEST
    assert latest.is_symlink()
    assert os.readlink(latest) == safe_run_id(AIRFLOW_RUN_ID) == built.second.parent.name
    assert (latest / "index.html").is_file()
    assert [p.name for p in run_dirs(reports)] == [
        built.second.parent.name,
        built.first.parent.name,
    ]
    assert not [p for p in reports.iterdir() if p.name.startswith(".")], "temporary files left"


@pytest.mark.services
def test_rebuilding_a_run_replaces_it(built: Built) -> None:
    again = build_report(built.settings, AIRFLOW_RUN_ID)
    assert again == built.second
    assert len(run_dirs(built.settings.reports_dir)) == 2


def test_every_chart_has_a_drawing() -> None:
    assert set(DRAW) == {spec.key for spec in CHARTS}
    assert len({spec.filename for spec in CHARTS}) == len(CHARTS)


@pytest.mark.services
def test_empty_warehouse_gives_placeholders(stack: Settings, tmp_path: Path) -> None:
    for settings in throwaway_warehouse(stack, tmp_path, None):
        index = build_report(settings, "empty")
        links = links_of(index)
        assert sorted(links.images) == sorted(spec.filename for spec in CHARTS)
        for name in links.images:
            png = index.parent / name
            assert png.read_bytes()[:8] == PNG_SIGNATURE
            assert distinct_colours(png) > 20, f"{name} has no placeholder"
        assert "This is the first run." in index.read_text(encoding="utf-8")


def test_placeholder_chart_has_the_declared_size(tmp_path: Path) -> None:
    fig = new_figure(5.0)
    placeholder(fig.add_subplot())
    save(fig, tmp_path / "empty.png")
    height, width = mpimg.imread(tmp_path / "empty.png").shape[:2]
    assert (width, height) == (1200, 500)


def test_safe_run_id_and_latest_link(tmp_path: Path) -> None:
    assert safe_run_id(AIRFLOW_RUN_ID) == "scheduled__2013-06-01T00_00_00_00_00"
    with pytest.raises(ValueError):
        safe_run_id("../")
    with pytest.raises(ValueError):
        safe_run_id(LATEST)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        point_latest(tmp_path, name)
        assert os.readlink(tmp_path / LATEST) == name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", LATEST]
