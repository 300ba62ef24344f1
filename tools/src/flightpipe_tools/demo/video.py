"""Record the demo video: a real screen capture of Chromium over the live stack.

The recorder puts the stack in live mode's hands and films one browser page with Chromium's
own screen capture while it moves through the running system: ``flightpipe status``, the live
dashboard updating, the Airflow Grid of ``flightpipe_live`` as loads arrive, the Dask
dashboard during a load's transform, the report and ML runs, one query in psql and the HTML
report. The recording is cut into clips with Spanish captions drawn under the picture;
ffmpeg joins them into an H.264 MP4 of at most two minutes, and the captions are also
written as an ``.srt`` file.

Every wait has a timeout and the whole recording has a deadline, so it never hangs; a service
that is down is named in the error.
"""

from __future__ import annotations

import html
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from PIL import Image
from rich.console import Console
from rich.terminal_theme import MONOKAI
from rich.text import Text

from flightpipe.live import clock
from flightpipe.orchestration.airflow_api import AirflowApi
from flightpipe.settings import Settings
from flightpipe.waiting import poll
from flightpipe.warehouse.db import psql_environment
from flightpipe_tools.demo import frames
from flightpipe_tools.demo.screencast import Clip, EncodeError, Screencast, encode, shorten

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
DOC_IMAGE_LIMIT: Final = 300_000
LIVE_DAG: Final = "flightpipe_live"
# Panel sizes (percent) of the Airflow DAG page, kept by the UI in localStorage.
PANEL_LAYOUTS: Final = {
    "react-resizable-panels:grid-ltr": [62, 38],
    "react-resizable-panels:graph-ltr": [78, 22],
}
QUERY: Final = (
    "SELECT carrier_code, airline, month, flights, on_time_rate, mean_arr_delay, rank_in_month\n"
    "  FROM mart.on_time_by_carrier_month\n"
    " ORDER BY year DESC, month DESC, rank_in_month\n"
    " LIMIT 10;"
)
# A dark page that shows terminal output (rich's HTML export) the way a terminal would.
TERMINAL_CSS: Final = (
    "body{margin:0;background:#181a21;color:#dcdfe4;}"
    "pre{margin:0;padding:18px 22px;font:14px/1.3 'DejaVu Sans Mono',monospace;"
    "white-space:pre;}"
    ".bar{background:#2c2f3a;color:#aab;font:13px 'DejaVu Sans',sans-serif;padding:6px 14px;}"
)


class DemoError(RuntimeError):
    """The recording cannot go on; the message says why and what to do."""


@dataclass
class DemoOptions:
    output: Path
    images_dir: Path | None
    timeout_minutes: float = 20.0
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


# --- assembly --------------------------------------------------------------------------------
def srt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{ms:03d}"


def srt_text(scenes: list[Clip]) -> str:
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


def run_command(
    command: list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run what a scene shows; its output as text, a DemoError when it hangs."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        name = Path(command[0]).name if command[0] != sys.executable else "flightpipe"
        raise DemoError(f"{name} did not answer within {timeout:g} s") from exc


# --- pages drawn for the capture ---------------------------------------------------------------
def terminal_page(title: str, ansi: str, hidden: str = "") -> str:
    """An HTML page showing ``ansi`` as a terminal does; ``hidden`` waits in ``#later``."""

    def to_html(text: str) -> str:
        console = Console(record=True, width=110, file=io.StringIO(), color_system="truecolor")
        console.print(Text.from_ansi(text.rstrip("\n")), soft_wrap=True, end="")
        exported = console.export_html(theme=MONOKAI, inline_styles=True, code_format="{code}")
        return exported

    later = f'<span id="later" style="display:none">{to_html(hidden)}</span>' if hidden else ""
    return (
        f"<html><head><meta charset='utf-8'><style>{TERMINAL_CSS}</style></head><body>"
        f'<div class="bar">{html.escape(title)}</div><pre><span id="now">{to_html(ansi)}'
        f'</span><span id="typed"></span>{later}</pre></body></html>'
    )


def card_page(title: str, subtitle: str, lines: list[str]) -> str:
    items = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return (
        "<html><head><meta charset='utf-8'><style>"
        "body{margin:0;height:100vh;display:flex;flex-direction:column;justify-content:center;"
        "align-items:center;background:#111827;color:#f3f4f6;font-family:'DejaVu Sans',sans-serif}"
        "h1{font-size:72px;margin:0 0 18px}h2{font-size:28px;color:#93c5fd;font-weight:normal}"
        "p{font-size:22px;color:#d1d5db;margin:6px}"
        f"</style></head><body><h1>{html.escape(title)}</h1><h2>{html.escape(subtitle)}</h2>"
        f"{items}</body></html>"
    )


# --- the recorder ------------------------------------------------------------------------------
class Recorder:
    """Drives one page through the stack and marks the clips the video keeps."""

    def __init__(self, settings: Settings, options: DemoOptions, work: Path, log: Log) -> None:
        self.settings = settings
        self.options = options
        self.work = work
        self.log = log
        self.api = AirflowApi(settings, timeout=20.0)
        self.deadline = Deadline(options.timeout_minutes * 60)
        self.clips: list[Clip] = []
        self.shots: dict[str, Path] = {}

    # --- helpers -----------------------------------------------------------------------------
    def hold(
        self, page: Page, seconds: float, caption: str, step: str, during: str | None = None
    ) -> None:
        """Keep ``seconds`` of what the page does now; ``during`` is JavaScript run meanwhile."""
        start = time.time()
        if during:
            page.evaluate(during)
        left = seconds - (time.time() - start)
        if left > 0:
            page.wait_for_timeout(left * 1000)
        self.clips.append(Clip(start, time.time(), caption, step))

    def shot(self, page: Page, name: str) -> None:
        path = self.work / f"shot-{name}.png"
        page.screenshot(path=path)
        self.shots[name] = path

    def wait_for(self, what: str, check: Callable[[], T | None], timeout: float) -> T:
        limit = self.deadline.left(timeout)
        found = poll(check, until=lambda v: v is not None, timeout=limit, interval=1.0)
        if found is None:
            raise DemoError(f"timed out after {limit:.0f} s waiting for {what}")
        return found

    def show(self, page: Page, content: str) -> None:
        page.set_content(content, wait_until="load")
        page.wait_for_timeout(300)

    def airflow(self, page: Page, path: str, view: str | None = None) -> None:
        if view is not None:
            page.evaluate("v => localStorage.setItem('default_dag_view', JSON.stringify(v))", view)
        page.goto(f"{self.settings.airflow_base_url}{path}", wait_until="domcontentloaded")
        try:
            page.wait_for_load_state("networkidle", timeout=10_000)
        except Exception:
            self.log(f"  ({path}: the page kept loading)")
        try:
            page.wait_for_function(
                "() => !document.querySelector('.chakra-skeleton, [data-loading]')",
                timeout=10_000,
            )
        except Exception:
            self.log(f"  ({path}: some panel is still loading)")
        page.wait_for_timeout(800)

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

    def latest_run(self, dag_id: str, states: tuple[str, ...]) -> dict[str, Any] | None:
        runs = [r for r in self.api.runs(dag_id, limit=25) if r["state"] in states]
        runs.sort(key=lambda r: r.get("run_after") or "", reverse=True)
        return runs[0] if runs else None

    # --- scenes ------------------------------------------------------------------------------
    def title_scene(self, page: Page) -> None:
        self.show(
            page,
            card_page(
                "flightpipe",
                "Un pipeline big data real, de punta a punta",
                [
                    "Kafka  ·  Dask  ·  PostgreSQL  ·  Airflow 3",
                    "336.776 vuelos de Nueva York (2013) repetidos como si ocurrieran ahora",
                ],
            ),
        )
        self.hold(page, 4, "Grabación de pantalla real del pipeline en modo live.", "▶")

    def status_scene(self, page: Page) -> None:
        self.log("rendering `flightpipe status` ...")
        env = {**os.environ, "COLUMNS": "100", "FORCE_COLOR": "1", "TERM": "xterm-256color"}
        env.pop("NO_COLOR", None)
        result = run_command([sys.executable, "-m", "flightpipe.cli", "status"], env, 120)
        if result.returncode != 0:
            raise DemoError(
                "`flightpipe status` reports an unhealthy service; fix it (`make live`) first:\n"
                + result.stdout[-1500:]
            )
        text = "\x1b[1;32m$\x1b[0m make status\n" + result.stdout
        self.show(page, terminal_page("make status", text))
        self.hold(
            page,
            6,
            "make live arranca Kafka, PostgreSQL, Dask, Airflow y el dashboard; make status"
            " los comprueba.",
            "1",
        )

    def dashboard_scene(self, page: Page) -> None:
        self.log("filming the live dashboard ...")
        page.goto(self.settings.dashboard_url, wait_until="domcontentloaded")
        page.locator('[data-fp="refreshed"]').first.wait_for(timeout=30_000)
        page.wait_for_timeout(1500)
        self.hold(
            page,
            10,
            "Dashboard en vivo: el reloj de replay avanza y llegan vuelos aterrizados y cargados.",
            "2",
        )
        self.shot(page, "dashboard")
        self.hold(
            page,
            7,
            "Puntualidad y retrasos por aeropuerto hoy; frescura p50/p95 de evento a consultable.",
            "2",
        )
        self.hold(
            page,
            8,
            "Lag por partición, DLQ y rechazados, últimos lotes y predicciones frente a lo real.",
            "2",
            during="window.scrollTo({top: document.body.scrollHeight, behavior: 'smooth'})",
        )

    def airflow_scenes(self, page: Page) -> None:
        self.login(page)
        self.airflow(page, "/dags")
        self.hold(
            page, 4, "Airflow 3: en modo live un AssetWatcher escucha los avisos de Kafka.", "3"
        )
        self.airflow(page, f"/dags/{LIVE_DAG}", view="grid")
        self.hold(
            page,
            8,
            "Grid de flightpipe_live: una carga por aviso, como mucho una a la vez; el resto se"
            " agrupa.",
            "3",
        )
        self.shot(page, "airflow-live-grid")
        self.hold(
            page,
            7,
            "Cada carga: ficheros nuevos → Dask → staging → upsert → checks; informes y ML cada"
            f" {self.settings.live_follow_minutes:g} min.",
            "3",
        )

    def dask_scene(self, page: Page) -> None:
        url = f"http://127.0.0.1:{self.settings.dask_dashboard_port}/status"
        if "needs bokeh" in httpx.get(url, timeout=10).text.lower():
            raise DemoError("the Dask dashboard needs bokeh; run `uv sync` to install it")
        page.goto(url, wait_until="load")
        self.log("waiting for a live load to transform with Dask ...")
        self.wait_for(
            "a flightpipe_live run to start",
            lambda: self.latest_run(LIVE_DAG, ("running",)),
            timeout=240,
        )
        self.hold(page, 12, "Dask: la transformación de cada carga repartida entre 2 workers.", "4")
        self.shot(page, "dask")

    def downstream_scenes(self, page: Page) -> None:
        captions = {
            "flightpipe_reports": "flightpipe_reports: gráficos e informe HTML, todo desde SQL.",
            "flightpipe_ml": "flightpipe_ml: entrena, evalúa, registra y predice retrasos.",
        }
        for dag_id, caption in captions.items():
            run = self.latest_run(dag_id, ("success", "running"))
            path = f"/dags/{dag_id}" + (
                f"/runs/{quote(run['dag_run_id'], safe='')}" if run is not None else ""
            )
            self.airflow(page, path, view="grid")
            self.hold(page, 5, caption, "5")

    def psql_scene(self, page: Page) -> None:
        exe = shutil.which("psql")
        if not exe:
            raise DemoError("psql was not found; install postgresql-client")
        env = {**os.environ, **psql_environment(self.settings), "PGCONNECT_TIMEOUT": "10"}
        result = run_command([exe, "-X", "-P", "pager=off", "-c", QUERY], env, 60)
        if result.returncode != 0:
            raise DemoError(f"psql failed: {result.stderr.strip()[-500:]}")
        db = self.settings.warehouse_db
        first, *rest = QUERY.splitlines()
        typed = first + "".join(f"\n{db}-> {line}" for line in rest) + "\n\n"
        prompt = f"\x1b[1;32m$\x1b[0m make psql\n\x1b[1;34m{db}=>\x1b[0m "
        self.show(page, terminal_page("make psql", prompt, hidden=result.stdout))
        # The query is typed, then psql's real answer appears.
        typing = (
            "text => new Promise(done => { const el = document.getElementById('typed');"
            " let i = 0; const t = setInterval(() => { el.textContent += text[i++];"
            " if (i >= text.length) { clearInterval(t); setTimeout(() => {"
            " document.getElementById('later').style.display = 'inline'; done(); }, 400); }"
            " }, 28); })"
        )
        start = time.time()
        page.evaluate(typing, typed)
        page.wait_for_timeout(max(0.0, 11 - (time.time() - start)) * 1000)
        self.clips.append(
            Clip(start, time.time(), "Una consulta en psql: puntualidad por aerolínea y mes.", "6")
        )

    def report_scene(self, page: Page) -> None:
        report = self.settings.reports_dir / "latest" / "index.html"
        if not report.is_file():
            raise DemoError(f"no HTML report at {report}; did flightpipe_reports succeed?")
        self.log(f"filming the report {report} ...")
        page.goto(report.resolve().as_uri(), wait_until="load")
        # Zoomed out a little so that a screen holds whole charts and tables.
        page.evaluate("() => { document.documentElement.style.zoom = '0.72'; }")
        page.wait_for_timeout(500)
        scroll = (
            "id => { const e = document.getElementById(id);"
            " if (e) e.scrollIntoView({block: 'start', behavior: 'smooth'}); }"
        )
        sections = [
            ("kpis", "Informe HTML: cifras clave del warehouse."),
            ("charts", "Informe: gráficos dibujados desde las vistas mart del warehouse."),
            ("model", "Informe: ROC AUC, PR AUC y Brier del modelo frente a la línea base."),
        ]
        for anchor, caption in sections:
            self.hold(page, 4.5, caption, "7", during=f"({scroll})({anchor!r})")
            if anchor == "charts":
                self.shot(page, "report")

    def closing_scene(self, page: Page) -> None:
        self.show(
            page,
            card_page(
                "flightpipe",
                "make up  ·  make live  ·  make test  ·  make video",
                [
                    "Kafka → Parquet → Dask → PostgreSQL → informes y ML",
                    "Orquestado por Airflow 3 con Assets y un AssetWatcher",
                ],
            ),
        )
        self.hold(
            page, 4, "Un comando lo arranca todo. Todo el código está en el repositorio.", "✓"
        )

    # --- the whole recording -------------------------------------------------------------------
    def record(self) -> list[tuple[float, Path]]:
        """Film every scene; the frames Chromium painted, with their times."""
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as playwright, browser_context(playwright) as context:
                context.set_default_timeout(30_000)
                context.set_default_navigation_timeout(45_000)
                page = context.new_page()
                capture = Screencast(context, page, self.work)
                try:
                    self.title_scene(page)
                    self.status_scene(page)
                    self.dashboard_scene(page)
                    self.airflow_scenes(page)
                    self.dask_scene(page)
                    self.downstream_scenes(page)
                    self.psql_scene(page)
                    self.report_scene(page)
                    self.closing_scene(page)
                finally:
                    capture.stop()
                return capture.frames
        except PlaywrightError as exc:
            raise DemoError(f"browser automation failed: {str(exc).splitlines()[0]}") from exc


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


def require_live(settings: Settings) -> None:
    current = clock.read(settings)
    if current is None or current.mode != "live":
        raise DemoError("the demo films live mode: start it with `make live` (make video does)")


def record_demo(settings: Settings, options: DemoOptions, log: Log = print) -> DemoResult:
    """Record the demo of the running live stack into ``options.output`` (+ ``.srt``)."""
    ffmpeg = find_tool("ffmpeg")
    find_chromium()
    frames.sans(12)  # fails early, with the package to install, when the fonts are missing
    check_services(settings)
    require_live(settings)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="flightpipe-demo-") as tmp:
        work = Path(tmp)
        recorder = Recorder(settings, options, work, log)
        painted = recorder.record()
        shorten(recorder.clips, MAX_SECONDS)
        log(f"encoding {len(recorder.clips)} clips from {len(painted)} painted frames ...")
        try:
            encode(recorder.clips, painted, work, options.output, ffmpeg)
        except EncodeError as exc:
            raise DemoError(str(exc)) from exc
        captions = options.output.with_suffix(".srt")
        captions.write_text(srt_text(recorder.clips), encoding="utf-8")
        images: list[Path] = []
        if options.images_dir is not None:
            for name, shot in recorder.shots.items():
                images.append(save_doc_image(shot, options.images_dir / f"{name}.png"))
        if options.keep_frames is not None:
            options.keep_frames.mkdir(parents=True, exist_ok=True)
            for picture in [*work.glob("*.png"), *work.glob("*.jpg")]:
                shutil.copy2(picture, options.keep_frames / picture.name)
        seconds = probe_duration(options.output) or sum(c.seconds for c in recorder.clips)
    return DemoResult(
        video=options.output,
        captions=captions,
        seconds=seconds,
        size_bytes=options.output.stat().st_size,
        scenes=len(recorder.clips),
        images=images,
    )
