"""The live dashboard: a Panel app on the Bokeh server, refreshed by a periodic callback.

Each browser session gets its own page; every ``dashboard_refresh`` seconds it takes a
:func:`~flightpipe.dashboard.queries.snapshot` (warehouse as the reader role, Kafka through
the shared clients) and updates the panes and chart sources in place. ``/health`` answers a
real probe: the warehouse read through the same reader connection the page uses.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import panel as pn
from bokeh.models import BasicTicker, ColumnDataSource, FactorRange
from bokeh.plotting import figure
from tornado.web import RequestHandler

from flightpipe.dashboard import view
from flightpipe.dashboard.queries import Snapshot, replay_clock, snapshot
from flightpipe.settings import Settings
from flightpipe.warehouse.db import connect


class Latest:
    """The newest snapshot, shared by every open page: more tabs do not mean more queries.
    A snapshot younger than half the refresh period is reused."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._snap: Snapshot | None = None
        self._taken = 0.0

    def get(self) -> Snapshot:
        with self._lock:
            fresh = time.monotonic() - self._taken < self.settings.dashboard_refresh / 2
            if self._snap is None or not fresh:
                self._snap = snapshot(self.settings)
                self._taken = time.monotonic()
            return self._snap


class Page:
    """One session's panes; :meth:`refresh` redraws them from a new snapshot."""

    def __init__(self, latest: Latest) -> None:
        self.latest = latest
        self.status = pn.pane.HTML(sizing_mode="stretch_width")
        self.headline = pn.pane.HTML(sizing_mode="stretch_width")
        self.origins = pn.pane.HTML()
        self.batches = pn.pane.HTML()
        self.lags = pn.pane.HTML()
        self.dead = pn.pane.HTML()
        self.rejected = pn.pane.HTML()
        self.predictions = pn.pane.HTML()
        self.delays = ColumnDataSource(data={"origin": [], "dep": [], "arr": []})
        self.fresh = ColumnDataSource(data={"batch": [], "p50": [], "p95": []})
        self.origin_range = FactorRange(factors=[])
        self.delay_chart = figure(
            x_range=self.origin_range,
            height=240,
            width=380,
            title="mean delay by origin (min)",
            tools="",
        )
        self.delay_chart.vbar(x="origin", top="dep", width=0.4, source=self.delays,
                              legend_label="departure", color="#4c72b0")  # fmt: skip
        self.delay_chart.scatter(x="origin", y="arr", size=10, source=self.delays,
                                 legend_label="arrival", color="#dd8452")  # fmt: skip
        self.fresh_chart = figure(
            height=240, width=380, title="freshness per load batch (s)", tools=""
        )
        for column, colour in (("p50", "#4c72b0"), ("p95", "#c44e52")):
            # Markers too: a single batch is a point, not a line.
            self.fresh_chart.line(x="batch", y=column, source=self.fresh, color=colour,
                                  legend_label=column)  # fmt: skip
            self.fresh_chart.scatter(x="batch", y=column, source=self.fresh, color=colour)
        self.fresh_chart.xaxis.ticker = BasicTicker(min_interval=1)  # batch ids are integers
        for chart in (self.delay_chart, self.fresh_chart):
            chart.legend.location = "top_left"
            chart.legend.orientation = "horizontal"
            chart.legend.background_fill_alpha = 0.6
        self.layout = self._layout()

    def _layout(self) -> pn.Column:
        def section(title: str, *items: Any) -> pn.Column:
            return pn.Column(pn.pane.Markdown(f"### {title}"), *items)

        return pn.Column(
            pn.pane.Markdown("## flightpipe — live warehouse"),
            self.status,
            self.headline,
            pn.Row(
                section("Current day by origin airport", self.origins),
                pn.pane.Bokeh(self.delay_chart),
                pn.pane.Bokeh(self.fresh_chart),
            ),
            pn.Row(
                section("Consumer lag per partition", self.lags),
                section("Dead letters", self.dead),
                section("Rejected rows", self.rejected),
            ),
            section("Last load batches", self.batches),
            section("Latest predictions against what happened", self.predictions),
            sizing_mode="stretch_width",
        )

    def show(self, snap: Snapshot) -> None:
        self.status.object = view.status_line(snap)
        self.headline.object = view.headline(snap)
        self.origins.object = view.origins_table(snap)
        self.batches.object = view.batches_table(snap)
        self.lags.object = view.lag_table(snap)
        self.dead.object = view.dead_letters_table(snap)
        self.rejected.object = view.rejected_table(snap)
        self.predictions.object = view.predictions_part(snap)
        delays = view.delay_columns(snap)
        self.origin_range.factors = delays["origin"]
        self.delays.data = delays
        self.fresh.data = view.freshness_columns(snap)

    def refresh(self) -> None:
        self.show(self.latest.get())


def session(latest: Latest) -> pn.Column:
    """The page of one browser session, refreshed until the session closes."""
    page = Page(latest)
    page.refresh()
    period = int(latest.settings.dashboard_refresh * 1000)
    pn.state.add_periodic_callback(page.refresh, period=period)
    return page.layout


class HealthHandler(RequestHandler):
    """``GET /health``: 200 with the replay clock when the warehouse answers the reader."""

    def initialize(self, flightpipe: Settings) -> None:
        self.flightpipe = flightpipe

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        try:
            with connect(self.flightpipe, "reader", autocommit=True) as conn:
                clock = replay_clock(conn)
        except Exception as exc:  # the probe's answer, not a crash of the server
            self.set_status(503)
            self.finish(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
            return
        latest = None if clock.latest_event is None else clock.latest_event.isoformat()
        self.finish(json.dumps({"ok": True, "latest_event": latest}))


def serve(settings: Settings, port: int | None = None, *, start: bool = True) -> Any:
    """Serve the dashboard on 127.0.0.1 (``port`` or ``dashboard_port``); blocks while
    ``start``, else returns the Bokeh server (tests start and stop it themselves)."""
    port = settings.dashboard_port if port is None else port
    pn.extension(raw_css=[view.CSS])
    origins = [f"127.0.0.1:{port}", f"localhost:{port}"]
    latest = Latest(settings)
    return pn.serve(
        lambda: session(latest),
        port=port,
        address="127.0.0.1",
        websocket_origin=origins,
        show=False,
        start=start,
        title="flightpipe dashboard",
        verbose=False,
        extra_patterns=[(r"/health", HealthHandler, {"flightpipe": settings})],
    )
