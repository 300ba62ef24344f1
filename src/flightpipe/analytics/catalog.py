"""The charts of a report: what each shows and the size of its PNG, without drawing.

Kept apart from :mod:`flightpipe.analytics.charts` so that a report reusing the PNGs its
run already drew (``build_report(..., reuse_charts=True)``) does not pay for importing
matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

DPI: Final = 100
WIDTH_IN: Final = 12.0
HEIGHT_IN: Final = 6.75


@dataclass(frozen=True)
class Chart:
    """One chart written to disk: what the report needs to show it."""

    key: str
    title: str
    caption: str
    path: Path
    width_px: int
    height_px: int


@dataclass(frozen=True)
class ChartSpec:
    """A chart of the report; :data:`flightpipe.analytics.charts.DRAW` draws it by key."""

    key: str
    title: str
    caption: str
    height_in: float = HEIGHT_IN

    @property
    def filename(self) -> str:
        return f"{self.key}.png"


CHARTS: Final = (
    ChartSpec("carrier_on_time", "On-time rate by carrier",
              "Share of arrived flights that were at most 15 minutes late, per carrier."),
    ChartSpec("delay_hour_weekday", "Delay by hour and weekday",
              "Mean departure delay by scheduled local hour and day of week."),
    ChartSpec("delay_weather", "Delay versus weather",
              "Mean departure delay by visibility, precipitation and wind at the origin."),
    ChartSpec("trend_origin", "Trend per origin",
              "Mean departure delay and traffic of EWR, JFK and LGA over time."),
    ChartSpec("plane_age", "Plane age",
              "Mean arrival delay and share of late arrivals by plane age band.",
              height_in=5.5),
    ChartSpec("destinations_map", "Destinations",
              "Destinations placed by longitude and latitude, sized by flights, coloured by "
              "mean arrival delay.", height_in=7.5),
    ChartSpec("pipeline_timings", "Pipeline timings",
              "Wall time of each stage of the latest Airflow runs and warehouse loads.",
              height_in=8.0),
    ChartSpec("model_metrics", "Model metrics over runs",
              "Held-out ROC AUC, PR AUC and Brier score of every model run against the "
              "trivial prior.", height_in=5.5),
    ChartSpec("feature_importance", "Feature importance",
              "Permutation importance of the model used for prediction."),
)  # fmt: skip


def chart_for(spec: ChartSpec, folder: Path) -> Chart:
    """The chart ``spec`` as written in ``folder``."""
    return Chart(
        key=spec.key,
        title=spec.title,
        caption=spec.caption,
        path=folder / spec.filename,
        width_px=round(WIDTH_IN * DPI),
        height_px=round(spec.height_in * DPI),
    )
