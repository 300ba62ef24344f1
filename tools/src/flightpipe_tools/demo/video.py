"""Record the demo video of a real pipeline run.

The recorder drives the running stack: it renders ``flightpipe status`` as a terminal, logs in
to the Airflow UI with headless Chromium (Playwright), triggers ``flightpipe_ingest`` through
the REST API and takes screenshots of its Grid while it runs, of its Graph and Gantt once done,
of the Dask dashboard while the Asset-triggered warehouse run transforms the data, of the
downstream runs, of two warehouse queries in psql and of the HTML report. Each screenshot
becomes a scene with a Spanish caption burned in; ffmpeg joins the scenes into an H.264 MP4
and the captions are also written as an ``.srt`` file.

Every wait has a timeout and the whole recording has a deadline, so it never hangs; a service
that is down is named in the error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from PIL import Image

from flightpipe.orchestration.airflow_api import AirflowApi, AirflowApiError
from flightpipe.settings import Settings
from flightpipe.waiting import poll
from flightpipe.warehouse.db import psql_environment
from flightpipe_tools.demo import frames

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

T = TypeVar("T")
Log = Callable[[str], None]

CHROMIUM_CANDIDATES: Final = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS: Final = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MAX_SECONDS: Final = 118.0
FPS: Final = 25
CRF: Final = 30
DOC_IMAGE_LIMIT: Final = 300_000
# Panel sizes (percent) of the Airflow DAG page, kept by the UI in localStorage.
PANEL_LAYOUTS: Final = {
    "react-resizable-panels:grid-ltr": [62, 38],
    "react-resizable-panels:graph-ltr": [78, 22],
}
MONTHS_ES: Final = (
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
)
KPI_SQL: Final = "SELECT * FROM mart.kpi;"
CARRIER_SQL: Final = (
    "SELECT carrier_code, airline, month, flights, on_time_rate, mean_arr_delay, rank_in_month\n"
    "  FROM mart.on_time_by_carrier_month\n"
    " ORDER BY year DESC, month DESC, rank_in_month\n"
    " LIMIT 10;"
)


class DemoError(RuntimeError):
    """The recording cannot go on; the message says why and what to do."""


@dataclass
class Scene:
    picture: Path
    caption: str
    seconds: float
    step: str


@dataclass
class DemoOptions:
    output: Path
    images_dir: Path | None
    start: str = "2013-06-01"
    days: int = 1
    timeout_minutes: float = 25.0
    keep_frames: Path | None = None


@dataclass
class DemoResult:
    video: Path
    captions: Path
    seconds: float
    size_bytes: int
    scenes: int
    images: list[Path] = field(default_factory=list)


# --- tools and services ----------------------------------------------------------------------
def find_chromium() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("chromium")
    if found:
        return found
    raise DemoError("Chromium was not found: `make video` installs it (Debian package chromium)")


def find_tool(name: str) -> str:
    exe = shutil.which(name)
    if not exe:
        raise DemoError(f"{name} was not found: `make video` installs it (Debian package ffmpeg)")
    return exe


def check_services(settings: Settings, timeout: float = 8.0) -> None:
    """Fail fast, naming every service that does not answer."""
    problems: list[str] = []
    try:
        response = httpx.get(f"{settings.airflow_base_url}/api/v2/monitor/health", timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        problems.append(f"Airflow at {settings.airflow_base_url} does not answer ({exc})")
    dask_url = f"http://127.0.0.1:{settings.dask_dashboard_port}/status"
    try:
        httpx.get(dask_url, timeout=timeout).raise_for_status()
    except httpx.HTTPError as exc:
        problems.append(f"the Dask dashboard at {dask_url} does not answer ({exc})")
    try:
        from flightpipe.warehouse.db import connect

        with connect(settings, "reader", connect_timeout=int(timeout)) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        problems.append(f"the PostgreSQL warehouse does not answer ({type(exc).__name__})")
    if not settings.airflow_admin_password:
        problems.append("no Airflow admin password in the secrets file")
    if problems:
        raise DemoError(
            "the stack is not ready: " + "; ".join(problems) + ". Start it with `make up`."
        )


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self, cap: float) -> float:
        return max(0.0, min(cap, self.end - time.monotonic()))


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def spanish_date(iso: str) -> str:
    day = date.fromisoformat(iso)
    return f"{day.day} de {MONTHS_ES[day.month - 1]} de {day.year}"


# --- assembly --------------------------------------------------------------------------------
def srt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{ms:03d}"


def srt_text(scenes: list[Scene]) -> str:
    """One cue per caption; consecutive scenes with the same caption share a cue."""
    cues: list[tuple[float, float, str]] = []
    clock = 0.0
    for scene in scenes:
        end = clock + scene.seconds
        if cues and cues[-1][2] == scene.caption:
            cues[-1] = (cues[-1][0], end, scene.caption)
        else:
            cues.append((clock, end, scene.caption))
        clock = end
    blocks = [
        f"{i}\n{srt_time(start)} --> {srt_time(end)}\n{text}\n"
        for i, (start, end, text) in enumerate(cues, 1)
    ]
    return "\n".join(blocks)


def fit_durations(scenes: list[Scene], limit: float = MAX_SECONDS) -> None:
    total = sum(s.seconds for s in scenes)
    if total > limit:
        factor = limit / total
        for scene in scenes:
            scene.seconds = round(scene.seconds * factor, 2)


def encode(scenes: list[Scene], work: Path, output: Path, ffmpeg: str, log: Log) -> None:
    """Burn the captions into full frames and join them with ffmpeg (H.264, yuv420p)."""
    listing = ["ffconcat version 1.0"]
    last = work / "frame-last.png"
    for i, scene in enumerate(scenes):
        frame = frames.captioned(Image.open(scene.picture), scene.caption, scene.step)
        path = work / f"frame-{i:03d}.png"
        frame.save(path)
        listing += [f"file '{path.name}'", f"duration {scene.seconds:.2f}"]
        last = path
    # The concat demuxer ignores the last duration unless the last file is listed again.
    listing.append(f"file '{last.name}'")
    (work / "scenes.ffconcat").write_text("\n".join(listing) + "\n", encoding="utf-8")
    partial = output.with_name(output.stem + ".partial.mp4")
    command = [
        ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        str(work / "scenes.ffconcat"),
        "-vf",
        f"fps={FPS},format=yuv420p",
        "-c:v",
        "libx264",
        "-preset",
        "slow",
        "-tune",
        "stillimage",
        "-crf",
        str(CRF),
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        "-metadata",
        "title=flightpipe demo",
        "-an",
        str(partial),
    ]
    log(f"encoding {len(scenes)} scenes with ffmpeg ...")
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=work)
    except subprocess.TimeoutExpired as exc:
        raise DemoError("ffmpeg did not finish within 10 minutes") from exc
    if result.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        raise DemoError(f"ffmpeg failed: {result.stderr.strip()[-800:]}")
    partial.replace(output)


def probe_duration(video: Path) -> float:
    ffprobe = shutil.which("ffprobe")
    if not ffprobe:
        return 0.0
    result = subprocess.run(
        [
            ffprobe,
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "default=noprint_wrappers=1:nokey=1",
            str(video),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        return float(result.stdout.strip())
    except ValueError:
        return 0.0


def save_doc_image(source: Path, target: Path, limit: int = DOC_IMAGE_LIMIT) -> Path:
    """Copy a screenshot for the README, reduced to a palette PNG when it is too large."""
    target.parent.mkdir(parents=True, exist_ok=True)
    image = Image.open(source).convert("RGB")
    image.save(target, optimize=True)
    if target.stat().st_size > limit:
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
    if target.stat().st_size > limit:
        image.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
    return target


# --- Dask ------------------------------------------------------------------------------------
def _epoch(value: str | None) -> float | None:
    parsed = _parse_time(value)
    return parsed.timestamp() if parsed else None


class DaskWatch:
    """Pictures of the Dask cluster while the warehouse run transforms the data.

    With a working dashboard (bokeh installed) these are screenshots of its status page. When
    the dashboard cannot draw (no bokeh), the same task stream is drawn from the scheduler's
    own records (its task-stream plugin), so the scene still shows the real work.
    """

    def __init__(self, settings: Settings, work: Path, log: Log) -> None:
        self.settings = settings
        self.work = work
        self.log = log
        self.url = f"http://127.0.0.1:{settings.dask_dashboard_port}/status"
        self.shots: list[Path] = []
        self.client: Any = None
        text = httpx.get(self.url, timeout=10).text
        self.dashboard = "needs bokeh" not in text.lower()
        if not self.dashboard:
            log(
                "note: the Dask dashboard needs bokeh, which is not installed; drawing the"
                " task stream from the scheduler instead"
            )
            from distributed import Client

            self.client = Client(settings.dask_address, timeout=20, set_as_default=False)
            # The first call registers the scheduler's task-stream plugin.
            self.client.get_task_stream(start=time.time())

    def capture(self, page: Page, path: Path) -> None:
        if self.dashboard:
            page.bring_to_front()
            page.screenshot(path=path)
            self.shots.append(path)

    def pictures(
        self, page: Page, warehouse: dict[str, Any], next_path: Callable[[], Path]
    ) -> list[Path]:
        if self.dashboard:
            last = next_path()
            self.capture(page, last)
            # The frames with the most drawn (largest files) tell the most, in time order.
            return sorted(sorted(self.shots, key=lambda p: p.stat().st_size)[-2:])
        return [self.task_stream(warehouse, next_path())]

    def task_stream(self, warehouse: dict[str, Any], path: Path) -> Path:
        from distributed.utils import key_split

        start = _epoch(warehouse.get("start_date")) or time.time() - 600
        stop = (_epoch(warehouse.get("end_date")) or time.time()) + 1
        records = self.client.get_task_stream(start=start - 1)
        names = {
            address: str(info.get("name", address))
            for address, info in self.client.scheduler_info()["workers"].items()
        }
        bars = []
        for record in records:
            for part in record.get("startstops", ()):
                if part.get("action") != "compute" or part["stop"] > stop:
                    continue
                worker = names.get(record.get("worker", ""), str(record.get("worker", "?")))
                lane = f"{worker} · hilo {record.get('thread', 0) % 1000}"
                bars.append(frames.Bar(lane, key_split(record["key"]), part["start"], part["stop"]))
        if not bars:
            self.log("  (no Dask tasks were recorded during the warehouse run)")
        seconds = max((b.stop for b in bars), default=0) - min((b.start for b in bars), default=0)
        summary = f"{len(bars)} tareas · {len({b.lane for b in bars})} hilos · {seconds:.1f} s"
        title = f"Dask · flujo de tareas (scheduler {self.settings.dask_address})"
        frames.task_stream_image(bars, title, summary).save(path)
        return path

    def close(self) -> None:
        if self.client is not None:
            self.client.close(timeout=10)


# --- the recorder ------------------------------------------------------------------------------
class Recorder:
    def __init__(self, settings: Settings, options: DemoOptions, work: Path, log: Log) -> None:
        self.settings = settings
        self.options = options
        self.work = work
        self.log = log
        self.api = AirflowApi(settings, timeout=20.0)
        self.deadline = Deadline(options.timeout_minutes * 60)
        self.scenes: list[Scene] = []
        self.shots: dict[str, Path] = {}
        self._count = 0

    # --- helpers -----------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        self._count += 1
        return self.work / f"shot-{self._count:03d}-{name}.png"

    def add(self, picture: Path, caption: str, seconds: float, step: str) -> None:
        self.scenes.append(Scene(picture, caption, seconds, step))

    def wait_for(
        self,
        what: str,
        check: Callable[[], T | None],
        timeout: float,
        every: float = 2.0,
        tick: Callable[[], None] | None = None,
    ) -> T:
        """Call ``check`` until it returns a value; ``tick`` runs between calls."""
        limit = self.deadline.left(timeout)

        def attempt() -> T | None:
            value = check()
            if value is None and tick is not None:
                tick()
            return value

        found = poll(attempt, until=lambda v: v is not None, timeout=limit, interval=every)
        if found is None:
            raise DemoError(f"timed out after {limit:.0f} s waiting for {what}")
        return found

    def terminal(self, name: str, lines: list[str], title: str) -> Path:
        path = self._path(name)
        frames.terminal_image(lines, title).save(path)
        return path

    # --- scenes ------------------------------------------------------------------------------
    def title_scene(self) -> None:
        path = self._path("title")
        frames.title_card(
            "flightpipe",
            "Un pipeline big data real, de punta a punta",
            [
                "Kafka  ·  Dask  ·  PostgreSQL  ·  Airflow 3",
                "336.776 vuelos de Nueva York (2013) repetidos como si ocurrieran ahora",
            ],
        ).save(path)
        self.add(path, "Demo grabada sobre una ejecución real del pipeline.", 4, "▶")

    def status_scene(self) -> None:
        self.log("rendering `flightpipe status` ...")
        env = {**os.environ, "COLUMNS": "100", "FORCE_COLOR": "1", "TERM": "xterm-256color"}
        env.pop("NO_COLOR", None)
        try:
            result = subprocess.run(
                [sys.executable, "-m", "flightpipe.cli", "status"],
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
            )
        except subprocess.TimeoutExpired as exc:
            raise DemoError("`flightpipe status` did not answer within 120 s") from exc
        if result.returncode != 0:
            raise DemoError(
                "`flightpipe status` reports an unhealthy service; fix it (`make up`) first:\n"
                + result.stdout[-1500:]
            )
        lines = ["\x1b[1;32m$\x1b[0m make up    \x1b[2m# ya arrancado\x1b[0m"]
        lines += ["\x1b[1;32m$\x1b[0m make status", *result.stdout.splitlines()]
        path = self.terminal("status", lines, "make status")
        self.add(
            path,
            "make up arranca Kafka, PostgreSQL, Dask y Airflow; make status los comprueba.",
            7,
            "1",
        )

    def login(self, page: Page) -> None:
        base = self.settings.airflow_base_url
        self.log("logging in to the Airflow UI ...")
        page.goto(f"{base}/auth/login?next=%2Fdags", wait_until="domcontentloaded")
        page.locator("input").nth(0).fill(self.settings.airflow_admin_user)
        page.locator("input[type=password]").fill(self.settings.airflow_admin_password)
        page.locator("button[type=submit]").click()
        try:
            page.wait_for_url(lambda url: "/auth/login" not in url, timeout=30_000)
        except Exception as exc:
            raise DemoError("Airflow UI login failed (user admin, see `make password`)") from exc
        page.evaluate(
            "layouts => { for (const [k, v] of Object.entries(layouts)) localStorage.setItem(k,"
            " JSON.stringify({'details-panel,main-panel': {expandToSizes: {}, layout: v}})) }",
            PANEL_LAYOUTS,
        )

    def airflow_shot(self, page: Page, name: str, path: str, view: str | None = None) -> Path:
        if view is not None:
            page.evaluate("v => localStorage.setItem('default_dag_view', JSON.stringify(v))", view)
        page.goto(f"{self.settings.airflow_base_url}{path}", wait_until="domcontentloaded")
        try:
            page.wait_for_load_state("networkidle", timeout=15_000)
        except Exception:
            self.log(f"  ({name}: the page kept loading; taking the screenshot anyway)")
        # Panels show skeleton placeholders until their data arrives (Gantt takes longest).
        try:
            page.wait_for_function(
                "() => !document.querySelector('.chakra-skeleton, [data-loading]')",
                timeout=12_000,
            )
        except Exception:
            self.log(f"  ({name}: some panel is still loading)")
        page.wait_for_timeout(2000 if view in ("graph", "gantt") else 1200)
        shot = self._path(name)
        page.screenshot(path=shot)
        return shot

    def dag_list_scene(self, page: Page) -> None:
        shot = self.airflow_shot(page, "dags", "/dags")
        self.add(shot, "Airflow 3: cuatro DAGs encadenados por Assets.", 5, "2")

    def trigger_ingest(self) -> dict[str, Any]:
        conf = {"start": self.options.start, "days": self.options.days}
        run_id = self.api.trigger("flightpipe_ingest", conf)
        self.log(f"triggered flightpipe_ingest {run_id} with {conf}")

        def started() -> dict[str, Any] | None:
            run = self.api.run("flightpipe_ingest", run_id)
            return run if run["state"] != "queued" else None

        # Another ingest run (the 3-minute cycle) may be active: ours waits for it.
        return self.wait_for("flightpipe_ingest to start", started, timeout=900, every=2)

    def downstream(self, dag_id: str, after: datetime) -> dict[str, Any] | None:
        """The first run of ``dag_id`` created after ``after``, Asset-triggered first."""
        later = [
            r
            for r in self.api.runs(dag_id, limit=25)
            if (_parse_time(r.get("run_after")) or after) > after
        ]
        later.sort(key=lambda r: r.get("run_after") or "")
        asset = [r for r in later if r.get("run_type") == "asset_triggered"]
        chosen = asset or later
        return chosen[0] if chosen else None

    def ingest_and_dask(
        self, page: Page, dask: Page, watch: DaskWatch
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Grid frames while the ingest run runs, Dask frames while the warehouse run runs."""
        run = self.trigger_ingest()
        run_id = run["dag_run_id"]
        started = _parse_time(run.get("start_date")) or datetime.now().astimezone()
        run_path = f"/dags/flightpipe_ingest/runs/{quote(run_id, safe='')}"
        date_text = spanish_date(self.options.start)
        caption = f"Lanzamos flightpipe_ingest por API REST: replay del {date_text} vía Kafka."
        grid: list[Path] = [self.airflow_shot(page, "ingest-grid", run_path, view="grid")]
        state: dict[str, Any] = {"ingest": run, "grid_at": time.monotonic(), "dask": 0}

        def poll() -> tuple[dict[str, Any], dict[str, Any]] | None:
            ingest = state["ingest"]
            if ingest["state"] not in ("success", "failed"):
                ingest = state["ingest"] = self.api.run("flightpipe_ingest", run_id)
                if time.monotonic() - state["grid_at"] >= 3:
                    state["grid_at"] = time.monotonic()
                    shot = self._path("ingest-grid")
                    page.screenshot(path=shot)
                    grid.append(shot)
            if ingest["state"] == "failed":
                raise DemoError(f"flightpipe_ingest {run_id} failed; see the Airflow UI")
            warehouse = self.downstream("flightpipe_transform", started)
            if warehouse is not None and (
                warehouse["state"] in ("running", "queued") or not state["dask"]
            ):
                state["dask"] += 1
                watch.capture(dask, self._path("dask"))
                page.bring_to_front()
            if ingest["state"] == "success" and warehouse and warehouse["state"] == "success":
                return ingest, warehouse
            if warehouse and warehouse["state"] == "failed":
                raise DemoError("the Asset-triggered flightpipe_transform run failed")
            return None

        self.log("recording the ingest Grid and the Dask dashboard ...")
        ingest, warehouse = self.wait_for(
            "the ingest run and the transform run it triggers", poll, timeout=1200, every=1.0
        )
        # A few evenly spread Grid frames while running, then the finished Grid.
        page.wait_for_timeout(2500)
        done = self._path("ingest-grid-done")
        page.screenshot(path=done)
        picked = [grid[round(i * (len(grid) - 1) / 3)] for i in range(4)] if len(grid) > 4 else grid
        for shot in dict.fromkeys(picked):
            self.add(shot, caption, 2.5, "2")
        self.add(
            done,
            "Grid: cada casilla es una tarea; 5 productores y 3 consumidores en paralelo.",
            5,
            "2",
        )
        self.shots["airflow-grid"] = done

        graph = self.airflow_shot(page, "ingest-graph", run_path, view="graph")
        self.add(
            graph,
            "Graph: temas → productores → snapshot → consumidores → Asset de landing.",
            5,
            "2",
        )
        self.shots["airflow-graph"] = graph
        gantt = self.airflow_shot(page, "ingest-gantt", run_path, view="gantt")
        self.add(gantt, "Gantt: en qué se va el tiempo de la ejecución.", 5, "2")

        best = watch.pictures(dask, warehouse, lambda: self._path("dask"))
        page.bring_to_front()
        caption = "Dask: la transformación (flightpipe_transform) repartida entre 2 workers."
        for shot in best:
            self.add(shot, caption, 7 / len(best), "3")
        self.shots["dask"] = best[-1]
        return ingest, warehouse

    def downstream_scenes(self, page: Page, transform: dict[str, Any]) -> dict[str, Any]:
        after = _parse_time(transform.get("start_date")) or datetime.now().astimezone()
        finished: dict[str, dict[str, Any]] = {}

        def done(dag_id: str) -> dict[str, Any] | None:
            run = self.downstream(dag_id, after)
            return run if run is not None and run["state"] in ("success", "failed") else None

        warehouse = self.wait_for(
            "the Asset-triggered flightpipe_load run", lambda: done("flightpipe_load"), 900
        )
        wh_path = f"/dags/flightpipe_load/runs/{quote(warehouse['dag_run_id'], safe='')}"
        shot = self.airflow_shot(page, "warehouse-grid", wh_path, view="grid")
        self.add(
            shot,
            "flightpipe_load arrancó solo por el Asset: staging → cuarentena → upsert → checks.",
            5,
            "4",
        )

        self.log("waiting for the reports and ml runs ...")
        finished["flightpipe_reports"] = self.wait_for(
            "the Asset-triggered flightpipe_reports run", lambda: done("flightpipe_reports"), 900
        )
        try:
            finished["flightpipe_ml"] = self.wait_for(
                "the Asset-triggered flightpipe_ml run", lambda: done("flightpipe_ml"), 900
            )
        except DemoError:
            # Training grows with the warehouse; an earlier finished run still shows the DAG.
            earlier = [r for r in self.api.runs("flightpipe_ml", 10) if r["state"] == "success"]
            if not earlier:
                raise
            self.log("  (flightpipe_ml is still training; showing its latest finished run)")
            finished["flightpipe_ml"] = earlier[0]
        captions = {
            "flightpipe_reports": "flightpipe_reports: gráficos e informe HTML, todo desde SQL.",
            "flightpipe_ml": "flightpipe_ml: entrena, evalúa, registra y predice retrasos.",
        }
        for dag_id, caption in captions.items():
            run = finished[dag_id]
            path = f"/dags/{dag_id}/runs/{quote(run['dag_run_id'], safe='')}"
            self.add(self.airflow_shot(page, dag_id, path, view="grid"), caption, 4, "4")
        return finished["flightpipe_reports"]

    def psql_scenes(self) -> None:
        exe = shutil.which("psql")
        if not exe:
            raise DemoError("psql was not found; install postgresql-client")
        shown = [
            (KPI_SQL, ["-x"], "Cifras clave del warehouse (vista mart.kpi) en psql."),
            (CARRIER_SQL, [], "Puntualidad por aerolínea y mes (mart.on_time_by_carrier_month)."),
        ]
        for number, (sql, flags, caption) in enumerate(shown):
            env = {
                **os.environ,
                **psql_environment(self.settings),
                "PGCONNECT_TIMEOUT": "10",
                "PAGER": "",
            }
            try:
                result = subprocess.run(
                    [exe, "-X", "-P", "pager=off", *flags, "-c", sql],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    env=env,
                )
            except subprocess.TimeoutExpired as exc:
                raise DemoError("psql did not answer within 60 s") from exc
            if result.returncode != 0:
                raise DemoError(f"psql failed: {result.stderr.strip()[-500:]}")
            sql_lines = sql.splitlines()
            lines = ["\x1b[1;32m$\x1b[0m make psql"] if number == 0 else []
            lines += [
                f"\x1b[1;34m{self.settings.warehouse_db}=>\x1b[0m \x1b[1m{sql_lines[0]}\x1b[0m"
            ]
            lines += [
                f"\x1b[1;34m{self.settings.warehouse_db}->\x1b[0m \x1b[1m{x}\x1b[0m"
                for x in sql_lines[1:]
            ]
            lines += result.stdout.rstrip().splitlines()
            path = self.terminal(f"psql-{number}", lines, "make psql")
            self.add(path, caption, 7, "5")

    def report_scenes(self, context: BrowserContext, reports_run: dict[str, Any]) -> None:
        report = self.report_file(reports_run)
        self.log(f"capturing the report {report} ...")
        page = context.new_page()
        page.goto(report.resolve().as_uri(), wait_until="load")
        # Zoomed out a little so that a screen holds whole charts and tables.
        page.evaluate("() => { document.documentElement.style.zoom = '0.72'; }")
        page.wait_for_timeout(800)
        sections = [
            ("kpis", "Informe HTML: cifras clave del warehouse."),
            ("charts", "Gráficos dibujados desde las vistas mart del warehouse."),
            ("model", "Métricas del modelo: ROC AUC, PR AUC y Brier frente a la línea base."),
        ]
        for anchor, caption in sections:
            found = page.evaluate(
                "id => { const e = document.getElementById(id); if (!e) return false;"
                " e.scrollIntoView({block: 'start'}); return true; }",
                anchor,
            )
            if not found:
                self.log(f"  (the report has no #{anchor} section; skipped)")
                continue
            page.wait_for_timeout(500)
            shot = self._path(f"report-{anchor}")
            page.screenshot(path=shot)
            self.add(shot, caption, 5, "6")
            if anchor == "charts":
                self.shots["report"] = shot
        page.close()

    def report_file(self, reports_run: dict[str, Any]) -> Path:
        """This run's report (the task's return value), else ``reports/latest``."""
        candidates: list[Path] = []
        try:
            entry = self.api.request(
                "GET",
                f"/dags/flightpipe_reports/dagRuns/{quote(reports_run['dag_run_id'], safe='')}"
                "/taskInstances/build_report/xcomEntries/return_value",
            )
            value = entry.get("value") if isinstance(entry, dict) else None
            if isinstance(value, str) and value:
                candidates.append(Path(value))
        except AirflowApiError:
            pass
        candidates.append(self.settings.reports_dir / "latest" / "index.html")
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise DemoError(
            f"no HTML report found ({', '.join(map(str, candidates))}); "
            "did flightpipe_reports succeed?"
        )

    def closing_scene(self) -> None:
        path = self._path("end")
        frames.title_card(
            "flightpipe",
            "make up  ·  make test  ·  make video",
            [
                "Kafka → Parquet → Dask → PostgreSQL → informes y ML",
                "Orquestado por Airflow 3 con Assets",
            ],
        ).save(path)
        self.add(
            path,
            "Un comando lo arranca todo: make up. Todo el código está en el repositorio.",
            4,
            "✓",
        )

    # --- the whole recording ---------------------------------------------------------------
    def record(self) -> None:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright

        self.title_scene()
        self.status_scene()
        try:
            with sync_playwright() as playwright, browser_context(playwright) as context:
                context.set_default_timeout(30_000)
                context.set_default_navigation_timeout(45_000)
                page = context.new_page()
                self.login(page)
                self.dag_list_scene(page)
                watch = DaskWatch(self.settings, self.work, self.log)
                try:
                    dask = context.new_page()
                    if watch.dashboard:
                        dask.goto(watch.url, wait_until="load")
                    page.bring_to_front()
                    _ingest, warehouse = self.ingest_and_dask(page, dask, watch)
                    dask.close()
                finally:
                    watch.close()
                reports_run = self.downstream_scenes(page, warehouse)
                self.psql_scenes()
                self.report_scenes(context, reports_run)
        except PlaywrightError as exc:
            raise DemoError(f"browser automation failed: {str(exc).splitlines()[0]}") from exc
        self.closing_scene()


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("file", "data", "blob", "about"):
        return True
    return parts.hostname in ("127.0.0.1", "localhost", "::1")


@contextmanager
def browser_context(playwright: Any) -> Iterator[BrowserContext]:
    browser: Browser = playwright.chromium.launch(
        executable_path=find_chromium(), args=CHROMIUM_ARGS, headless=True, timeout=60_000
    )
    try:
        context = browser.new_context(
            viewport={"width": frames.PICTURE[0], "height": frames.PICTURE[1]},
            locale="es-ES",
            timezone_id="UTC",
        )
        # Only the local services and local files: anything else (CDNs) is not fetched.
        context.route(
            "**/*",
            lambda route: (
                route.continue_() if is_local(route.request.url) else route.abort("blockedbyclient")
            ),
        )
        yield context
        context.close()
    finally:
        browser.close()


def record_demo(settings: Settings, options: DemoOptions, log: Log = print) -> DemoResult:
    """Record the demo of a real run into ``options.output`` (+ ``.srt``)."""
    ffmpeg = find_tool("ffmpeg")
    find_chromium()
    frames.sans(12)  # fails early, with the package to install, when the fonts are missing
    check_services(settings)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="flightpipe-demo-") as tmp:
        work = Path(tmp)
        recorder = Recorder(settings, options, work, log)
        recorder.record()
        fit_durations(recorder.scenes)
        encode(recorder.scenes, work, options.output, ffmpeg, log)
        captions = options.output.with_suffix(".srt")
        captions.write_text(srt_text(recorder.scenes), encoding="utf-8")
        images: list[Path] = []
        if options.images_dir is not None:
            for name, shot in recorder.shots.items():
                images.append(save_doc_image(shot, options.images_dir / f"{name}.png"))
        if options.keep_frames is not None:
            options.keep_frames.mkdir(parents=True, exist_ok=True)
            for png in work.glob("*.png"):
                shutil.copy2(png, options.keep_frames / png.name)
        seconds = probe_duration(options.output) or sum(s.seconds for s in recorder.scenes)
    return DemoResult(
        video=options.output,
        captions=captions,
        seconds=seconds,
        size_bytes=options.output.stat().st_size,
        scenes=len(recorder.scenes),
        images=images,
    )
