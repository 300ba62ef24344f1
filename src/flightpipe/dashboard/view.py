"""A :class:`~flightpipe.dashboard.queries.Snapshot` as HTML fragments and chart columns.

Pure functions, so what the page says can be tested without a server. Every figure carries
a ``data-fp`` attribute naming it (and tables their rows' keys), which the browser test reads.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import pandas as pd

from flightpipe.dashboard.queries import RECENT_MINUTES, ReplayClock, Snapshot, score

MISSING: Final = "–"
NEW_YORK: Final = ZoneInfo("America/New_York")


def number(value: Any, digits: int = 0) -> str:
    """A figure as shown: thousands separated, ``digits`` decimals, a dash for none."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return MISSING
    return f"{float(value):,.{digits}f}"


def percent(value: Any) -> str:
    if value is None or pd.isna(value):
        return MISSING
    return f"{100 * float(value):.1f}%"


def when(value: datetime | date | None) -> str:
    if value is None:
        return MISSING
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            return value.strftime("%Y-%m-%d %H:%M")
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def local_time(value: datetime | None) -> str:
    """The same instant on the clock of the NYC airports every flight departs from."""
    if value is None:
        return ""
    return f"New York: {value.astimezone(NEW_YORK):%Y-%m-%d %H:%M}"


def card(name: str, label: str, value: str, note: str = "") -> str:
    small = f'<div class="fp-note">{html.escape(note)}</div>' if note else ""
    return (
        f'<div class="fp-card"><div class="fp-label">{html.escape(label)}</div>'
        f'<div class="fp-value" data-fp="{name}">{html.escape(value)}</div>{small}</div>'
    )


def table(
    name: str,
    frame: pd.DataFrame,
    columns: Sequence[tuple[str, str, Callable[[Any], str]]],
    key: str | None = None,
    empty: str = "nothing yet",
) -> str:
    """``frame`` as an HTML table: (column, header, formatter) per cell; each row carries
    ``data-key`` (the value of ``key``) and each cell ``data-col``."""
    if frame.empty:
        return f'<div class="fp-empty" data-fp="{name}">{html.escape(empty)}</div>'
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in columns)
    rows = []
    for record in frame.to_dict("records"):
        attr = f' data-key="{html.escape(str(record[key]))}"' if key else ""
        cells = "".join(
            f'<td data-col="{c}">{html.escape(fmt(record.get(c)))}</td>' for c, _, fmt in columns
        )
        rows.append(f"<tr{attr}>{cells}</tr>")
    return (
        f'<table class="fp-table" data-fp="{name}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def text(value: Any) -> str:
    missing = value is None or (not isinstance(value, str) and pd.isna(value))
    return MISSING if missing else str(value)


def yes_no(value: Any) -> str:
    return MISSING if value is None or pd.isna(value) else "yes" if value == 1 else "no"


def headline(snap: Snapshot) -> str:
    clock = snap.clock or ReplayClock(None, None, None, None)
    latest = snap.freshness.iloc[0] if not snap.freshness.empty else None
    dead = sum(snap.dead_letters.values()) if snap.dead_letters else None
    rejected = int(snap.rejected["rows"].sum()) if not snap.rejected.empty else 0
    mode = "class mode" if clock.live_now is None else f"live mode, {clock.speed:g}x"
    cards = [
        card("live-clock", f"replay clock now ({mode})", when(clock.live_now),
             local_time(clock.live_now) or "moves one slice per ingest run"),
        card("replay-clock", "latest departure loaded",
             when(clock.latest_event), local_time(clock.latest_event)),
        card("current-day", "current day", when(clock.latest_day),
             f"next day replayed: {when(clock.next_day)}"),
        card("landed-flights", f"flights landed, last {RECENT_MINUTES} min",
             number(snap.landed_flights)),
        card("recent-flights", f"flights loaded, last {RECENT_MINUTES} min",
             number(snap.recent_flights)),
        card("freshness-p50", "freshness p50 (latest batch)",
             MISSING if latest is None else f"{latest['p50_s']:.1f} s"),
        card("freshness-p95", "freshness p95 (latest batch)",
             MISSING if latest is None else f"{latest['p95_s']:.1f} s"),
        card("dead-letters-total", "dead letters (Kafka)", number(dead)),
        card("rejected-total", "rejected rows (warehouse)", number(rejected)),
    ]  # fmt: skip
    return f'<div class="fp-cards">{"".join(cards)}</div>'


def origins_table(snap: Snapshot) -> str:
    return table(
        "origins",
        snap.origins,
        [
            ("origin", "origin", text),
            ("flights", "flights", number),
            ("cancelled", "cancelled", number),
            ("arrived", "arrived", number),
            ("on_time_rate", "on time", percent),
            ("mean_dep_delay", "mean dep delay (min)", lambda v: number(v, 2)),
            ("mean_arr_delay", "mean arr delay (min)", lambda v: number(v, 2)),
        ],
        key="origin",
        empty="no flights loaded yet",
    )


def batches_table(snap: Snapshot) -> str:
    return table(
        "batches",
        snap.batches,
        [
            ("batch_id", "batch", text),
            ("status", "status", text),
            ("finished_at", "finished", when),
            ("files", "files", number),
            ("rows_in", "rows in", number),
            ("rows_loaded", "loaded", number),
            ("rows_rejected", "rejected", number),
            ("flights", "flights", number),
            ("p50_s", "fresh p50 (s)", lambda v: number(v, 1)),
            ("p95_s", "fresh p95 (s)", lambda v: number(v, 1)),
        ],
        key="batch_id",
        empty="no load batches yet",
    )


def rejected_table(snap: Snapshot) -> str:
    return table(
        "rejected",
        snap.rejected,
        [("topic", "topic", text), ("reason", "reason", text), ("rows", "rows", number)],
        empty="no rejected rows",
    )


def dead_letters_table(snap: Snapshot) -> str:
    frame = pd.DataFrame(list(snap.dead_letters.items()), columns=["topic", "messages"])
    return table(
        "dead-letters",
        frame,
        [("topic", "topic", text), ("messages", "dead letters", number)],
        key="topic",
        empty="Kafka did not answer",
    )


def lag_table(snap: Snapshot) -> str:
    frame = snap.lags.copy()
    if not frame.empty:
        frame["key"] = frame["topic"] + "/" + frame["partition"].astype(str)
    return table(
        "lag",
        frame,
        [
            ("topic", "topic", text),
            ("partition", "partition", text),
            ("end", "end offset", number),
            ("committed", "committed", number),
            ("lag", "lag", number),
        ],
        key="key",
        empty="Kafka did not answer" if "kafka" in snap.errors else "no topics yet",
    )


def predictions_part(snap: Snapshot) -> str:
    result = score(snap.predictions)
    if result.model_run_id is None:
        return '<div class="fp-empty" data-fp="predictions">no predictions yet</div>'
    summary = (
        f'<p data-fp="prediction-score">model run {result.model_run_id}, {when(result.day)}: '
        f"{result.scored} flights scored, {result.predicted_late} predicted late, "
        f"{result.actually_late} of {result.labelled} arrived late; "
        f"accuracy {percent(result.accuracy)}</p>"
    )
    latest = snap.predictions.head(12).copy()
    latest["flight"] = latest["carrier_code"] + " " + latest["flight_number"].astype(str)
    return summary + table(
        "predictions",
        latest,
        [
            ("flight", "flight", text),
            ("origin", "from", text),
            ("dest", "to", text),
            ("sched_dep_at", "scheduled", when),
            ("probability", "P(late)", lambda v: number(v, 2)),
            ("predicted_label", "predicted late", yes_no),
            ("arr_delay_min", "arr delay (min)", number),
            ("actual_label", "was late", yes_no),
        ],
        key="flight",
    )  # fmt: skip


def status_line(snap: Snapshot) -> str:
    problems = "".join(
        f'<span class="fp-error" data-fp="error-{name}">{html.escape(name)}: '
        f"{html.escape(err)}</span>"
        for name, err in snap.errors.items()
    )
    return (
        f'<div class="fp-status">refreshed <span data-fp="refreshed">'
        f"{snap.taken_at:%H:%M:%S}</span>{problems}</div>"
    )


def delay_columns(snap: Snapshot) -> dict[str, list[Any]]:
    """Chart columns: mean departure and arrival delay per origin on the current day."""
    frame = snap.origins
    if frame.empty:
        return {"origin": [], "dep": [], "arr": []}
    return {
        "origin": frame["origin"].tolist(),
        "dep": [float(v) if pd.notna(v) else 0.0 for v in frame["mean_dep_delay"]],
        "arr": [float(v) if pd.notna(v) else 0.0 for v in frame["mean_arr_delay"]],
    }


def freshness_columns(snap: Snapshot) -> dict[str, list[Any]]:
    """Chart columns: p50 and p95 freshness per measured batch, oldest first."""
    frame = snap.freshness.sort_values("batch_id") if not snap.freshness.empty else None
    if frame is None:
        return {"batch": [], "p50": [], "p95": []}
    return {
        "batch": frame["batch_id"].astype(int).tolist(),
        "p50": frame["p50_s"].astype(float).tolist(),
        "p95": frame["p95_s"].astype(float).tolist(),
    }


CSS: Final = """
.fp-cards { display: flex; flex-wrap: wrap; gap: 10px; }
.fp-card { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px; min-width: 170px; }
.fp-label { font-size: 12px; color: #57606a; }
.fp-value { font-size: 22px; font-weight: 600; }
.fp-note { font-size: 11px; color: #57606a; }
.fp-table { border-collapse: collapse; font-size: 13px; }
.fp-table th, .fp-table td {
  border-bottom: 1px solid #d0d7de; padding: 3px 8px; text-align: right;
}
.fp-table th { background: #f6f8fa; }
.fp-empty { color: #57606a; font-style: italic; }
.fp-status { font-size: 12px; color: #57606a; }
.fp-error { color: #cf222e; margin-left: 12px; }
"""
