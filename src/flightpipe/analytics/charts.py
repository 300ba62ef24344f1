"""Charts of the warehouse, drawn from SQL only (``dw``, ``meta``, ``ml``).

Figures are built with the object-oriented matplotlib API (no pyplot), so nothing depends on
a GUI backend or on global figure state; every PNG is written with the Agg canvas at a fixed
size, so each chart has a known pixel size.

The look is seaborn's (style, palettes, heatmap), reproduced with matplotlib alone: importing
seaborn, and with it scipy.stats, took about a second, longer than drawing half the charts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import matplotlib as mpl
import numpy as np
import pandas as pd
import psycopg
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap, Normalize, TwoSlopeNorm, to_rgba_array
from matplotlib.figure import Figure
from matplotlib.image import imsave
from matplotlib.lines import Line2D

from flightpipe.analytics import queries as q
from flightpipe.analytics.catalog import CHARTS, DPI, HEIGHT_IN, WIDTH_IN, Chart, chart_for
from flightpipe.settings import Settings
from flightpipe.warehouse.db import connect

WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
RECENT_RUNS: Final = 20
PLACEHOLDER: Final = "no runs yet"

# seaborn's "colorblind" palette.
COLORBLIND: Final = ("#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc",
                     "#ca9161", "#fbafe4", "#949494", "#ece133", "#56b4e9")  # fmt: skip
# seaborn's "rocket_r" colormap through 9 of its colours (every channel within 6/255).
ROCKET_R: Final = LinearSegmentedColormap.from_list(
    "rocket_r",
    ("#faebdd", "#f6bb97", "#f4865e", "#ec4a3e", "#ca1a50",
     "#951c5b", "#601f52", "#2e1739", "#03051a"),
)  # fmt: skip
# seaborn's axes_style("whitegrid") and plotting_context("notebook", font_scale=1.05),
# less its default colormap ("rocket", which only seaborn registers; no chart relies on it).
SEABORN_RC: Final[dict[str, Any]] = {
    "axes.axisbelow": True,
    "axes.edgecolor": ".8",
    "axes.facecolor": "white",
    "axes.grid": True,
    "axes.labelcolor": ".15",
    "axes.labelsize": 12.6,
    "axes.linewidth": 1.25,
    "axes.spines.bottom": True,
    "axes.spines.left": True,
    "axes.spines.right": True,
    "axes.spines.top": True,
    "axes.titlesize": 12.6,
    "figure.facecolor": "white",
    "font.family": ["sans-serif"],
    "font.sans-serif": [
        "Arial",
        "DejaVu Sans",
        "Liberation Sans",
        "Bitstream Vera Sans",
        "sans-serif",
    ],
    "font.size": 12.6,
    "grid.color": ".8",
    "grid.linestyle": "-",
    "grid.linewidth": 1,
    "legend.fontsize": 11.55,
    "legend.title_fontsize": 12.6,
    "lines.linewidth": 1.5,
    "lines.markersize": 6,
    "lines.solid_capstyle": "round",
    "patch.edgecolor": "w",
    "patch.force_edgecolor": True,
    "patch.linewidth": 1,
    "text.color": ".15",
    "xtick.bottom": False,
    "xtick.color": ".15",
    "xtick.direction": "out",
    "xtick.labelsize": 11.55,
    "xtick.major.size": 6,
    "xtick.major.width": 1.25,
    "xtick.minor.size": 4,
    "xtick.minor.width": 1,
    "xtick.top": False,
    "ytick.color": ".15",
    "ytick.direction": "out",
    "ytick.labelsize": 11.55,
    "ytick.left": False,
    "ytick.major.size": 6,
    "ytick.major.width": 1.25,
    "ytick.minor.size": 4,
    "ytick.minor.width": 1,
    "ytick.right": False,
}


def style_rc() -> dict[str, Any]:
    """The one style of every chart: seaborn's whitegrid, sized to be read on a laptop."""
    return {
        **SEABORN_RC,
        "axes.prop_cycle": cycler(color=COLORBLIND),
        "axes.titlesize": 14,
        "axes.titleweight": "bold",
        "axes.labelsize": 12,
        "figure.titlesize": 16,
        "figure.titleweight": "bold",
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "figure.facecolor": "white",
        "axes.facecolor": "white",
        "legend.frameon": False,
    }


@contextmanager
def chart_style() -> Iterator[None]:
    """Apply :func:`style_rc` for the duration of a build, leaving global state untouched."""
    # The rc keys are checked by matplotlib at run time; its stubs only accept literals.
    rc: Any = style_rc()
    with mpl.rc_context(rc):
        yield


def new_figure(height_in: float = HEIGHT_IN) -> Figure:
    fig = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def placeholder(ax: Axes, message: str = PLACEHOLDER) -> None:
    """An explicit empty state, so a missing chart never looks like a broken one."""
    ax.set_axis_off()
    ax.text(
        0.5,
        0.5,
        message,
        ha="center",
        va="center",
        fontsize=20,
        color="0.45",
        transform=ax.transAxes,
        bbox={"boxstyle": "round,pad=1.0", "facecolor": "0.96", "edgecolor": "0.8"},
    )


def save(fig: Figure, path: Path) -> None:
    """Write atomically: a reader never sees a half-written PNG."""
    canvas = fig.canvas
    assert isinstance(canvas, FigureCanvasAgg), "figures come from new_figure"
    # One draw (the layout engine runs inside it), then the pixels straight to PNG:
    # savefig draws a figure with a layout engine twice, a layout pass and the real one,
    # and compresses at zlib's default level, slower for files only ~8 % smaller.
    canvas.draw()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    imsave(
        tmp,
        np.asarray(canvas.buffer_rgba()),
        format="png",
        dpi=fig.dpi,
        pil_kwargs={"compress_level": 1},
    )
    tmp.replace(path)


# --- the charts ---------------------------------------------------------------------------


def draw_on_time_by_carrier(conn: psycopg.Connection, fig: Figure) -> None:
    data = q.frame(conn, q.ON_TIME_BY_CARRIER)
    ax = fig.add_subplot()
    fig.suptitle("On-time arrival rate by carrier")
    if data.empty:
        placeholder(ax, "no arrived flights loaded yet")
        return
    data = data.sort_values("on_time_rate")
    labels = [f"{n} ({c})" for n, c in zip(data["name"], data["carrier_code"], strict=True)]
    rates = data["on_time_rate"].to_numpy() * 100
    colors = mpl.colormaps["RdYlGn"](Normalize(50, 95)(rates))
    ax.barh(labels, rates, color=colors, edgecolor="0.3", linewidth=0.5)
    overall = float(np.average(rates, weights=data["arrived"]))
    ax.axvline(overall, color="0.2", linestyle="--", linewidth=1.2)
    ax.text(overall, len(data) - 0.4, f" all carriers {overall:.1f} %", va="bottom", fontsize=10)
    for y, (rate, n) in enumerate(zip(rates, data["arrived"], strict=True)):
        ax.text(rate + 0.5, y, f"{rate:.1f} %  (n={n:,})", va="center", fontsize=9)
    ax.set_xlim(0, 115)
    ax.set_xlabel("Flights arriving at most 15 min late (%)")
    ax.set_ylabel("Carrier")
    ax.set_title("Share of arrived flights with an arrival delay ≤ 15 min", fontsize=11)


def draw_delay_heatmap(conn: psycopg.Connection, fig: Figure) -> None:
    data = q.frame(conn, q.DELAY_BY_HOUR_WEEKDAY)
    ax = fig.add_subplot()
    fig.suptitle("Mean departure delay by scheduled hour and weekday")
    if data.empty:
        placeholder(ax, "no departed flights loaded yet")
        return
    grid = data.pivot_table(index="weekday", columns="hour", values="mean_dep_delay")
    counts = data.pivot_table(index="weekday", columns="hour", values="flights", fill_value=0)
    grid = grid.reindex(index=range(1, 8))
    counts = counts.reindex(index=range(1, 8), columns=grid.columns, fill_value=0)
    # Cells with a handful of flights are noise; hide them rather than colour them.
    grid = grid.where(counts >= 5)
    grid.index = pd.Index(list(WEEKDAYS), name="weekday")
    heatmap(ax, grid, "Mean departure delay (min)")
    ax.set_xlabel("Scheduled departure hour (local time at origin, h)")
    ax.set_ylabel("Weekday")
    ax.set_title("Blank cells: fewer than 5 flights", fontsize=10)


def heatmap(ax: Axes, grid: pd.DataFrame, label: str) -> None:
    """seaborn's ``heatmap(grid, cmap="rocket_r", annot=True, fmt=".0f", linewidths=0.5,
    linecolor="white")``: cells without a value left blank, each value written in a colour
    that reads on its cell."""
    values = np.ma.masked_invalid(grid.to_numpy(dtype=float))
    for spine in ax.spines.values():
        spine.set_visible(False)
    mesh = ax.pcolormesh(values, cmap=ROCKET_R, vmin=values.min(), vmax=values.max(),
                         edgecolors="white", linewidth=0.5)  # fmt: skip
    ax.set(xlim=(0, values.shape[1]), ylim=(0, values.shape[0]))
    ax.invert_yaxis()
    colorbar = ax.figure.colorbar(mesh, ax=ax, label=label)
    colorbar.outline.set_linewidth(0)
    ax.set_xticks(np.arange(values.shape[1]) + 0.5, [str(c) for c in grid.columns])
    ax.set_yticks(np.arange(values.shape[0]) + 0.5, [str(i) for i in grid.index],
                  rotation="vertical", va="center")  # fmt: skip
    mesh.update_scalarmappable()
    # WCAG relative luminance, and seaborn's cut between dark and light text.
    rgb = to_rgba_array(mesh.get_facecolor())[:, :3]
    linear = np.where(rgb <= 0.03928, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    light_cell = linear @ np.array([0.2126, 0.7152, 0.0722]) > 0.408
    rows, cols = np.indices(values.shape)
    for y, x, value, light in zip(rows.flat, cols.flat, values.flat, light_cell, strict=True):
        if value is not np.ma.masked:
            ax.text(x + 0.5, y + 0.5, f"{value:.0f}", color=".15" if light else "w",
                    ha="center", va="center", fontsize=8)  # fmt: skip


def draw_delay_by_weather(conn: psycopg.Connection, fig: Figure) -> None:
    data = q.frame(conn, q.DELAY_BY_WEATHER)
    fig.suptitle("Departure delay versus weather at the origin in the departure hour")
    if data.empty:
        placeholder(fig.add_subplot(), "no flights joined to weather yet")
        return
    axes = fig.subplots(1, 3, sharey=True)
    colors = COLORBLIND[:3]
    factors = q.WEATHER_FACTORS.items()
    for ax, (factor, (name, unit, buckets)), color in zip(axes, factors, colors, strict=True):
        part = data[data["factor"] == factor].set_index("bucket").reindex(range(buckets))
        labels = [
            str(label).removesuffix(f" {unit.split('/')[0]}") if isinstance(label, str) else "–"
            for label in part["bucket_label"]
        ]
        values = part["mean_dep_delay"].to_numpy(dtype=float)
        ax.bar(labels, np.nan_to_num(values), color=color, edgecolor="0.3", linewidth=0.5)
        for x, (value, n) in enumerate(zip(values, part["flights"], strict=True)):
            if not math.isnan(value):
                ax.text(x, max(value, 0), f"{value:.0f}\nn={int(n):,}", ha="center", va="bottom",
                        fontsize=8)  # fmt: skip
        ax.set_xlabel(f"{name} ({unit})")
        ax.set_title(name)
        ax.margins(y=0.2)
    axes[0].set_ylabel("Mean departure delay (min)")


def draw_trend_by_origin(conn: psycopg.Connection, fig: Figure) -> None:
    data = q.frame(conn, q.DAILY_BY_ORIGIN)
    if data.empty:
        fig.suptitle("Departure delay trend per origin")
        placeholder(fig.add_subplot(), "no flights loaded yet")
        return
    data["day"] = pd.to_datetime(data["day"])
    # A few days of replay make a one-point monthly chart; show days until months are many.
    monthly = data["day"].dt.to_period("M").nunique() >= 3
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    if monthly:
        data["period"] = data["day"].dt.to_period("M").dt.to_timestamp()
        data["delay_sum"] = data["mean_dep_delay"].fillna(0) * data["departed"]
        grouped = data.groupby(["origin", "period"], as_index=False)[
            ["flights", "departed", "delay_sum"]
        ].sum()
        grouped["mean_dep_delay"] = grouped["delay_sum"] / grouped["departed"].where(
            grouped["departed"] > 0
        )
        fig.suptitle("Departure delay and traffic per origin, by month")
        for origin, part in grouped.groupby("origin"):
            top.plot(part["period"], part["mean_dep_delay"], marker="o", linewidth=2,
                     label=origin)  # fmt: skip
            bottom.plot(part["period"], part["flights"], marker="o", linewidth=1.5)
        bottom.set_ylabel("Flights per month")
        bottom.set_xlabel("Month (local date)")
    else:
        fig.suptitle("Departure delay and traffic per origin, by day (line: 7-day rolling mean)")
        colors = dict(zip(sorted(data["origin"].unique()), COLORBLIND, strict=False))
        for origin, part in data.groupby("origin"):
            color = colors[str(origin)]
            top.plot(part["day"], part["mean_dep_delay"], marker="o", linestyle="", alpha=0.45,
                     color=color)  # fmt: skip
            top.plot(part["day"], part["mean_dep_delay_7d"], linewidth=2, color=color,
                     label=origin)  # fmt: skip
            bottom.plot(part["day"], part["flights"], marker="o", linewidth=1.5, color=color)
        bottom.set_ylabel("Flights per day")
        bottom.set_xlabel("Day (local date)")
    top.set_ylabel("Mean departure delay (min)")
    top.legend(title="Origin", loc="upper left", ncols=3)
    fig.autofmt_xdate()


def draw_plane_age(conn: psycopg.Connection, fig: Figure) -> None:
    data = q.frame(conn, q.PLANE_AGE)
    fig.suptitle("Arrival delay by plane age")
    if data.empty:
        placeholder(fig.add_subplot(), "no flights loaded yet")
        return
    left, right = fig.subplots(1, 2, sharey=True)
    labels = data["age_label"].astype(str).tolist()
    colors = ["0.65" if pd.isna(b) else "#4c72b0" for b in data["age_band"]]
    left.barh(labels, data["mean_arr_delay"].fillna(0), color=colors, edgecolor="0.3",
              linewidth=0.5)  # fmt: skip
    left.set_xlabel("Mean arrival delay (min)")
    left.set_ylabel("Plane age at the flight (years)")
    left.invert_yaxis()
    right.barh(labels, data["late_share"].fillna(0) * 100, color=colors, edgecolor="0.3",
               linewidth=0.5)  # fmt: skip
    right.set_xlabel("Flights arriving more than 15 min late (%)")
    for y, n in enumerate(data["flights"]):
        right.text(0.5, y, f"n={int(n):,}", va="center", fontsize=9, color="white",
                   weight="bold")  # fmt: skip
    left.set_title("Mean arrival delay")
    right.set_title("Late arrivals (grey: unknown age)")


def draw_destinations(conn: psycopg.Connection, fig: Figure) -> None:
    data = q.frame(conn, q.DESTINATIONS)
    origins = q.frame(conn, q.ORIGINS)
    ax = fig.add_subplot()
    fig.suptitle("Destinations from New York: traffic and mean arrival delay")
    if data.empty:
        placeholder(ax, "no flights loaded yet")
        return
    lon, lat = data["longitude"].to_numpy(), data["latitude"].to_numpy()
    if not origins.empty:
        hub_lon, hub_lat = origins["longitude"].mean(), origins["latitude"].mean()
        for x, y in zip(lon, lat, strict=True):
            ax.plot([hub_lon, x], [hub_lat, y], color="0.75", linewidth=0.4, zorder=1)
    delay = data["mean_arr_delay"].fillna(0).to_numpy()
    low, high = float(min(delay.min(), -1.0)), float(max(delay.max(), 1.0))
    norm = TwoSlopeNorm(vcenter=0.0, vmin=low, vmax=high)
    sizes = 20 + 1200 * np.sqrt(data["flights"] / data["flights"].max())
    points = ax.scatter(lon, lat, s=sizes, c=delay, cmap="coolwarm", norm=norm, alpha=0.85,
                        edgecolors="0.2", linewidths=0.5, zorder=3)  # fmt: skip
    fig.colorbar(points, ax=ax, label="Mean arrival delay (min)", shrink=0.85)
    if not origins.empty:
        ax.scatter(origins["longitude"], origins["latitude"], marker="*", s=260, color="black",
                   zorder=4, label="NYC origins (EWR, JFK, LGA)")  # fmt: skip
    for _, row in data.nlargest(12, "flights").iterrows():
        ax.annotate(row["faa_code"], (row["longitude"], row["latitude"]), xytext=(6, 6),
                    textcoords="offset points", fontsize=9, weight="bold", zorder=5)  # fmt: skip
    # Equal distances on the ground look equal on screen at the map's mean latitude.
    ax.set_aspect(1 / math.cos(math.radians(float(np.nanmean(lat)))), adjustable="datalim")
    ax.set_xlabel("Longitude (°)")
    ax.set_ylabel("Latitude (°)")
    biggest = int(data["flights"].max())
    handles = [
        Line2D([], [], linestyle="", marker="o", color="0.6", markeredgecolor="0.2",
               markersize=math.sqrt(20 + 1200 * math.sqrt(n / biggest)), label=f"{n:,} flights")
        for n in sorted({max(1, biggest // 100), max(1, biggest // 10), biggest})
    ]  # fmt: skip
    star = Line2D(
        [], [], linestyle="", marker="*", color="black", markersize=14, label="NYC origin"
    )
    ax.legend(handles=[*handles, star], loc="lower left", labelspacing=1.4, borderpad=1.0)


def draw_pipeline_timings(conn: psycopg.Connection, fig: Figure) -> None:
    tasks = q.frame(conn, q.TASK_STAGES, {"runs": RECENT_RUNS})
    steps = q.frame(conn, q.LOAD_STEPS, {"runs": RECENT_RUNS})
    fig.suptitle("Pipeline timings per stage and run")
    if tasks.empty and steps.empty:
        placeholder(fig.add_subplot())
        return
    top, bottom = fig.subplots(2, 1)
    if tasks.empty:
        placeholder(top, "no Airflow task runs yet")
    else:
        tasks["run"] = (
            tasks["dag_id"].str.removeprefix("flightpipe_")
            + " "
            + pd.to_datetime(tasks["run_started"], utc=True).dt.strftime("%m-%d %H:%M:%S")
        )
        _stacked(top, tasks.pivot_table(index="run", columns="task_id", values="seconds",
                                        aggfunc="sum", sort=False))  # fmt: skip
        top.set_title("Airflow tasks (wall time of each stage)")
        top.set_ylabel("DAG run (UTC start)")
    if steps.empty:
        placeholder(bottom, "no load batches yet")
    else:
        steps["batch"] = "batch " + steps["batch_id"].astype(str)
        _stacked(bottom, steps.pivot_table(index="batch", columns="step", values="seconds",
                                           aggfunc="sum", sort=False))  # fmt: skip
        bottom.set_title("Warehouse load steps")
        bottom.set_ylabel("Load batch")


def _stacked(ax: Axes, table: pd.DataFrame) -> None:
    table = table.fillna(0.0)
    # seaborn's color_palette("tab20", n): the 20 colours in order, cycled past 20.
    colors = mpl.colormaps["tab20"](np.arange(max(len(table.columns), 1)) % 20)
    left = np.zeros(len(table))
    for color, column in zip(colors, table.columns, strict=False):
        values = table[column].to_numpy(dtype=float)
        ax.barh(table.index.astype(str), values, left=left, color=color, label=str(column),
                edgecolor="white", linewidth=0.5)  # fmt: skip
        left += values
    ax.invert_yaxis()
    ax.set_xlabel("Duration (s)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=9, title="stage")
    ax.tick_params(axis="y", labelsize=9)


def draw_model_metrics(conn: psycopg.Connection, fig: Figure) -> None:
    runs = q.frame(conn, q.MODEL_RUNS, {"limit": 40})
    fig.suptitle("Arrival-delay model: held-out metrics per model run")
    if runs.empty:
        placeholder(fig.add_subplot(), "no model trained yet")
        return
    runs = runs.sort_values("model_run_id")
    runs["model"] = runs["algorithm"].str.rsplit(".", n=1).str[-1]
    axes = fig.subplots(1, 3)
    metrics = (("roc_auc", "ROC AUC", "higher is better"),
               ("pr_auc", "PR AUC (average precision)", "higher is better"),
               ("brier", "Brier score", "lower is better"))  # fmt: skip
    colors = dict(zip(sorted(runs["model"].unique()), COLORBLIND, strict=False))
    for ax, (column, label, hint) in zip(axes, metrics, strict=True):
        for model, part in runs.groupby("model"):
            ax.plot(part["model_run_id"], part[column], marker="o", linewidth=1.5,
                    color=colors[str(model)], label=str(model))  # fmt: skip
        ax.plot(runs["model_run_id"], runs[f"baseline_{column}"], linestyle="--", marker="_",
                color="0.4", label="prior baseline")  # fmt: skip
        ax.set_title(f"{label}\n({hint})", fontsize=12)
        ax.set_xlabel("Model run id")
        ax.set_ylabel(f"{label.split(' (')[0]} (score, 0–1)")
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))


def draw_feature_importance(conn: psycopg.Connection, fig: Figure) -> None:
    from flightpipe.ml.registry import serving_model

    ax = fig.add_subplot()
    model = serving_model(conn)
    importance = (model.metrics.get("feature_importance") if model else None) or {}
    if model is None or not importance:
        fig.suptitle("Feature importance of the serving model")
        placeholder(ax, "no model trained yet")
        return
    name = model.algorithm.rsplit(".", 1)[-1]
    fig.suptitle(f"Feature importance: model run {model.model_run_id} ({name})")
    series = pd.Series(importance, dtype=float).sort_values()
    colors = ["#c44e52" if v < 0 else "#4c72b0" for v in series]
    ax.barh(series.index, series.to_numpy(), color=colors, edgecolor="0.3", linewidth=0.5)
    ax.axvline(0, color="0.3", linewidth=0.8)
    ax.set_xlabel("Mean drop of ROC AUC when the feature is shuffled (ROC AUC points)")
    ax.set_ylabel("Feature")
    ax.set_title("Permutation importance on a held-out sample", fontsize=11)


DRAW: Final[dict[str, Callable[[psycopg.Connection, Figure], None]]] = {
    "carrier_on_time": draw_on_time_by_carrier,
    "delay_hour_weekday": draw_delay_heatmap,
    "delay_weather": draw_delay_by_weather,
    "trend_origin": draw_trend_by_origin,
    "plane_age": draw_plane_age,
    "destinations_map": draw_destinations,
    "pipeline_timings": draw_pipeline_timings,
    "model_metrics": draw_model_metrics,
    "feature_importance": draw_feature_importance,
}


def build_charts(settings: Settings, out_dir: Path) -> list[Chart]:
    """Draw every chart of :data:`CHARTS` from the warehouse into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    charts: list[Chart] = []
    with connect(settings, "reader") as conn, chart_style():
        conn.read_only = True
        for spec in CHARTS:
            fig = new_figure(spec.height_in)
            DRAW[spec.key](conn, fig)
            chart = chart_for(spec, out_dir)
            save(fig, chart.path)
            charts.append(chart)
    return charts
