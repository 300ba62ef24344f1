"""The contract's row rules as SQL, for the two places that apply them.

Before the fact upserts, :func:`quarantine` moves staged rows that break a rule of their
entity to ``meta.rejected_rows`` (the reason is the rule's name). After the upserts, the data
checks count rows of the batch that break the same rules (:func:`rule_counts`); since the
offenders were quarantined, a count above zero means a bug, not bad input.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg
from psycopg import sql

from flightpipe.contract import ENTITIES, Entity

# Where each rule's aliases come from: ``f`` the row, ``o``/``d`` its airports.
_AIRPORT_JOINS: Final = sql.SQL(
    " JOIN dw.dim_airport AS o ON o.airport_key = f.origin_airport_key"
    " JOIN dw.dim_airport AS d ON d.airport_key = f.dest_airport_key"
)
_JOINS: Final = {"flights": _AIRPORT_JOINS}


def ruled_entities() -> list[Entity]:
    return [e for e in ENTITIES.values() if e.rules]


def _condition(text: str) -> sql.Composable:
    # Rule text is code of the contract, never input.
    return sql.SQL("({})").format(sql.SQL(text))


def quarantine(cur: psycopg.Cursor[Any], batch_id: int) -> dict[str, int]:
    """Move staged rows that break a rule to ``meta.rejected_rows``; rows moved per entity.

    Runs after the dimensions are upserted (rules look at the airports' time zones) and
    before the facts; the first rule a row breaks is its reason.
    """
    moved: dict[str, int] = {}
    for entity in ruled_entities():
        reason = sql.SQL("CASE {} END").format(
            sql.SQL(" ").join(
                sql.SQL("WHEN {} THEN {}").format(_condition(cond), sql.Literal(name))
                for name, cond in entity.rules.items()
            )
        )
        offending = sql.SQL(" OR ").join(_condition(c) for c in entity.rules.values())
        query = sql.SQL(
            """
            WITH bad AS (
                SELECT f.src_topic, f.src_partition, f.src_offset, {reason} AS reason
                FROM {view} AS f{joins}
                WHERE {offending}
            ), moved AS (
                DELETE FROM {table} AS s USING bad
                WHERE s.src_topic = bad.src_topic AND s.src_partition = bad.src_partition
                  AND s.src_offset = bad.src_offset
                RETURNING s.*, bad.reason AS _reason
            )
            INSERT INTO meta.rejected_rows
                (batch_id, topic, kafka_partition, kafka_offset, reason, record)
            SELECT %(batch_id)s, src_topic, src_partition, src_offset, _reason,
                   to_jsonb(moved) - '_reason'
            FROM moved
            ON CONFLICT DO NOTHING
            """
        ).format(
            reason=reason,
            view=sql.Identifier("staging", f"{entity.name}_resolved"),
            joins=_JOINS.get(entity.name, sql.SQL("")),
            offending=offending,
            table=sql.Identifier("staging", entity.name),
        )
        cur.execute(query, {"batch_id": batch_id})
        moved[entity.name] = max(cur.rowcount, 0)
    return moved


def rule_counts(
    cur: psycopg.Cursor[Any], batch_id: int | None
) -> list[tuple[str, int, list[str] | None]]:
    """(rule, offending rows, sample of their sources) over the rows ``batch_id`` wrote to
    the fact tables (the whole warehouse when None): one scan per table that evaluates each
    rule once per row, and a second one for the samples only when a rule found rows (an
    aggregate of samples beside the count would evaluate every rule twice)."""
    out: list[tuple[str, int, list[str] | None]] = []
    for entity in ruled_entities():
        assert entity.fact_table is not None
        counts = sql.SQL(", ").join(
            sql.SQL("count(*) FILTER (WHERE {c})").format(c=_condition(cond))
            for cond in entity.rules.values()
        )
        row = _scan(cur, entity, counts, batch_id)
        found = [int(n) for n in row] if row else [0] * len(entity.rules)
        samples: list[list[str] | None] = [None] * len(found)
        if any(found):
            source = sql.SQL("f.src_topic || '[' || f.src_partition || ']@' || f.src_offset")
            aggregates = sql.SQL(", ").join(
                sql.SQL("(array_agg({s}) FILTER (WHERE {c}))[1:5]").format(
                    s=source, c=_condition(cond)
                )
                for cond in entity.rules.values()
            )
            samples = list(_scan(cur, entity, aggregates, batch_id) or samples)
        out += list(zip(entity.rules, found, samples, strict=True))
    return out


def _scan(
    cur: psycopg.Cursor[Any], entity: Entity, aggregates: sql.Composable, batch_id: int | None
) -> tuple[Any, ...] | None:
    assert entity.fact_table is not None
    scope = sql.SQL("f.load_batch_id = %(batch_id)s" if batch_id is not None else "true")
    query = sql.SQL("SELECT {aggregates} FROM {fact} AS f{joins} WHERE {scope}").format(
        aggregates=aggregates,
        fact=sql.Identifier("dw", entity.fact_table),
        joins=_JOINS.get(entity.name, sql.SQL("")),
        scope=scope,
    )
    cur.execute(query, {"batch_id": batch_id})
    row = cur.fetchone()
    return tuple(row) if row else None
