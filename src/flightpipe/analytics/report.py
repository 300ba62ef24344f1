"""The HTML report of one run: KPIs, charts, model metrics, data checks, earlier runs.

Layout under ``<storage base>/reports`` (``settings.reports_dir`` by default)::

    <run_id>/index.html, <chart>.png..., summary.json
    latest -> <run_id>          (symlink, replaced atomically)

A run is built in a hidden temporary folder and renamed into place, so a reader (or the
``latest`` link) never sees a half-written run; building the same ``run_id`` again replaces
it, which keeps a retried task idempotent.

With the storage base on an object store the run is built the same way in
``settings.reports_dir`` (a local working copy) and then published to
``<base>/reports/<run_id>/``: its files one PUT each, ``index.html`` last (a run without
one is not a run), then the object ``<base>/reports/LATEST`` holding the run id.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import uuid
from dataclasses import asdict
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import jinja2
import psycopg

from flightpipe import storage
from flightpipe.analytics import queries as q
from flightpipe.analytics.catalog import CHARTS, Chart, chart_for
from flightpipe.settings import Settings
from flightpipe.warehouse.db import connect

log = logging.getLogger(__name__)

LATEST: Final = "latest"
# On an object store, which has no links: one small object naming the newest run.
LATEST_OBJECT: Final = "LATEST"
INDEX: Final = "index.html"
KEEP_RUNS: Final = 50
TEMPLATES: Final = Path(__file__).parent / "templates"
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")


def new_run_id(now: datetime | None = None) -> str:
    """A UTC timestamp: sorts like time and reads like it."""
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def safe_run_id(run_id: str) -> str:
    """A folder name from any run id (an Airflow run id holds ':' and '+')."""
    cleaned = _UNSAFE.sub("_", run_id).strip("._")
    if not cleaned or cleaned == LATEST:
        raise ValueError(f"unusable report run id {run_id!r}")
    return cleaned


def run_dirs(reports_dir: Path) -> list[Path]:
    """Finished runs, newest first (by the time their report was written)."""
    if not reports_dir.is_dir():
        return []
    found = [
        p
        for p in reports_dir.iterdir()
        if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
        and (p / INDEX).is_file()
    ]  # fmt: skip
    return sorted(found, key=lambda p: ((p / INDEX).stat().st_mtime, p.name), reverse=True)


def point_latest(reports_dir: Path, run_id: str) -> Path:
    """Make ``latest`` point at ``run_id`` with one rename: never missing, never dangling."""
    link = reports_dir / LATEST
    tmp = reports_dir / f".{LATEST}.{uuid.uuid4().hex[:8]}"
    os.symlink(run_id, tmp, target_is_directory=True)
    os.replace(tmp, link)
    return link


def _publish(staging: Path, final: Path) -> None:
    old: Path | None = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        final.rename(old)
    staging.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _prune(reports_dir: Path, keep: int, current: str) -> None:
    for path in run_dirs(reports_dir)[keep:]:
        if path.name != current:
            shutil.rmtree(path, ignore_errors=True)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def collect(conn: psycopg.Connection) -> dict[str, Any]:
    """Everything the report shows besides the charts, read with SQL."""
    from flightpipe.ml.registry import serving_model

    model = serving_model(conn)
    checks = q.frame(conn, q.LATEST_CHECKS)
    return {
        "kpis": {k: _plain(v) for k, v in q.one(conn, q.KPIS).items()},
        "batch": {k: _plain(v) for k, v in q.one(conn, q.LATEST_BATCH).items()},
        "checks": checks.to_dict("records"),
        "checks_failed": int((~checks["passed"].astype(bool)).sum()) if len(checks) else 0,
        "rejects": q.frame(conn, q.REJECTS_BY_REASON).to_dict("records"),
        "model_runs": q.frame(conn, q.MODEL_RUNS, {"limit": 10}).to_dict("records"),
        "serving_model_run_id": model.model_run_id if model else None,
    }


def _quantity(value: float | None) -> str:
    """Counts as integers, measures with a few significant digits."""
    if value is None:
        return "–"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4g}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v, digits=1: "–" if v is None else f"{100 * v:.{digits}f} %"
    env.filters["num"] = lambda v, digits=0: "–" if v is None else f"{v:,.{digits}f}"
    env.filters["qty"] = _quantity
    return env


def _chart_info(chart: Chart) -> dict[str, Any]:
    return {
        "key": chart.key,
        "file": chart.path.name,
        "title": chart.title,
        "width_px": chart.width_px,
        "height_px": chart.height_px,
    }


def draw_charts(settings: Settings, run_id: str | None = None) -> dict[str, Any]:
    """Draw the charts of a run into ``<reports_dir>/<run_id>/``; return a JSON-able digest.

    The first half of a report for an orchestrator that runs charts and report as two
    tasks: :func:`build_report` with ``reuse_charts=True`` then publishes these PNGs. The
    folder is not listed as a run until its ``index.html`` exists.
    """
    started = time.perf_counter()
    run = safe_run_id(run_id) if run_id else new_run_id()
    folder = build_dir(settings) / run
    charts = _draw(settings, folder)
    return {
        "run_id": run,
        "folder": str(folder),
        "charts": [_chart_info(c) for c in charts],
        "seconds": round(time.perf_counter() - started, 3),
    }


def _draw(settings: Settings, folder: Path) -> list[Chart]:
    # Imported here: matplotlib is not needed to publish charts drawn by draw_charts.
    from flightpipe.analytics.charts import build_charts

    return build_charts(settings, folder)


def _reuse_or_draw(settings: Settings, final: Path, staging: Path, reuse: bool) -> list[Chart]:
    if reuse and all((final / spec.filename).is_file() for spec in CHARTS):
        staging.mkdir(parents=True)
        for spec in CHARTS:
            shutil.copy2(final / spec.filename, staging / spec.filename)
        return [chart_for(spec, staging) for spec in CHARTS]
    return _draw(settings, staging)


def build_report(
    settings: Settings,
    run_id: str | None = None,
    *,
    reuse_charts: bool = False,
    keep_runs: int = KEEP_RUNS,
) -> Path:
    """Write the report of one run (charts included); return its ``index.html``.

    ``run_id`` defaults to the current UTC time; pass the orchestrator's run id to make a
    retry overwrite the same run. With ``reuse_charts`` the PNGs already drawn for this run
    by :func:`draw_charts` are used (they are drawn if any is missing). ``latest`` then
    points at this run, and only the newest ``keep_runs`` runs are kept.
    """
    started = time.perf_counter()
    reports_dir = build_dir(settings)
    reports_dir.mkdir(parents=True, exist_ok=True)
    run = safe_run_id(run_id) if run_id else new_run_id()
    final = reports_dir / run
    staging = reports_dir / f".{run}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        charts = _reuse_or_draw(settings, final, staging, reuse_charts)
        with connect(settings, "reader") as conn:
            conn.read_only = True
            context = collect(conn)
        previous = [
            {
                "run_id": p.name,
                "href": f"../{p.name}/{INDEX}",
                "written": datetime.fromtimestamp((p / INDEX).stat().st_mtime, UTC),
            }
            for p in run_dirs(reports_dir)
            if p.name != run
        ]
        generated = datetime.now(UTC)
        html = (
            _environment()
            .get_template("report.html.j2")
            .render(
                run_id=run,
                generated=generated,
                charts=[{**asdict(c), "file": c.path.name} for c in charts],
                previous=previous,
                **context,
            )
        )
        (staging / INDEX).write_text(html, encoding="utf-8")
        _write_summary(staging, run, generated, charts, context, time.perf_counter() - started)
        _publish(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    point_latest(reports_dir, run)
    _prune(reports_dir, keep_runs, run)
    if settings.s3_storage:
        publish_remote(settings, final)
    log.info("report %s written in %.1f s", final / INDEX, time.perf_counter() - started)
    return final / INDEX


def build_dir(settings: Settings) -> Path:
    """Where runs are built: the reports zone when it is a folder, else the local copy."""
    if settings.s3_storage:
        return settings.reports_dir
    return Path(storage.zone_url(settings, "reports"))


def publish_remote(settings: Settings, final: Path) -> str:
    """Copy a finished run to the reports zone on the object store; returns its URL."""
    fs, root = storage.zone_fs(settings, "reports")
    target = f"{root}/{final.name}"
    files = sorted(p for p in final.iterdir() if p.is_file() and p.name != INDEX)
    for path in [*files, final / INDEX]:
        fs.pipe_file(f"{target}/{path.name}", path.read_bytes())
    fs.pipe_file(f"{root}/{LATEST_OBJECT}", final.name.encode("utf-8"))
    return storage.url_of(fs, target)


def _write_summary(
    folder: Path,
    run: str,
    generated: datetime,
    charts: list[Chart],
    context: dict[str, Any],
    seconds: float,
) -> None:
    """The same figures for machines (e.g. a test or a notebook), next to the HTML."""
    summary = {
        "run_id": run,
        "generated": generated.isoformat(),
        "build_seconds": round(seconds, 3),
        "charts": [_chart_info(c) for c in charts],
        "kpis": context["kpis"],
        "checks_failed": context["checks_failed"],
        "serving_model_run_id": context["serving_model_run_id"],
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, default=str), "utf-8")
