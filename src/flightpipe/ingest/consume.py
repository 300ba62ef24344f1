"""Landing consumers: one group, N member processes, at-least-once into Parquet.

Per batch: decode each message into its event type (failures go to ``<topic>.dlq``), write
one landing file per partition (atomic, fsynced), flush the DLQ producer, and only then
commit the batch's offsets synchronously. A crash anywhere before the commit re-delivers the
batch, and the re-delivered batch replaces what the crashed member left (see zones/landing.py).

Batch mode stops at a snapshot of the end offsets taken once, after the producers are done.
Members may start before it exists (continuous ingest: they consume while the producers
produce) and learn it from a :class:`StopSource` as soon as it is published.

* The members of an ingest run (the DAG's mapped tasks, ``pipeline.ingest``) know how many
  they are and each takes its *share* of the partitions itself (:func:`share_of`), with no
  group join or rebalance; offsets are still committed to the group. A member stops once
  its own partitions are committed up to the snapshot; one that fails is retried by its
  task and goes on from the committed offsets.
* Members started on their own (``flightpipe consume``, live mode) join the group. Their
  stop rule is group-wide: a member leaves when the group's committed offsets of every
  partition reached the snapshot, so a member holding no partition neither hangs nor leaves
  early (it stays to take over partitions of a member that dies).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from types import FrameType
from typing import Any, Final, Protocol

import msgspec
import pyarrow as pa
from confluent_kafka import (
    OFFSET_INVALID,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from flightpipe.contract.events import Event, event_type
from flightpipe.ingest import BATCH_MESSAGES, kafka_clients, procs
from flightpipe.ingest.kafka_clients import ADMIN_TIMEOUT
from flightpipe.ingest.topics import INPUT_TOPICS, IngestError, dlq_topic, watermarks_of
from flightpipe.settings import Settings, get_settings
from flightpipe.zones.landing import build_table, clear_uncommitted, land_batch

log = logging.getLogger(__name__)

# topic (without prefix) -> partition -> offset the batch run must reach. Partition keys may
# also be strings (the snapshot after a JSON round trip, e.g. through XCom).
Snapshot = Mapping[str, Mapping[int, int] | Mapping[str, int]]
TP = tuple[str, int]

BATCH_SECONDS: Final = 1.0
# What building a landing table from decoded events can raise on a value it cannot hold.
_BUILD_ERRORS: Final = (pa.ArrowException, OverflowError, ValueError, TypeError)
DONE_CHECK_EVERY: Final = 0.5
# How often a member asks whether the run's snapshot is published (one small query).
STOP_POLL_EVERY: Final = 0.1


def snapshot(
    settings: Settings | None = None, topics: tuple[str, ...] = INPUT_TOPICS
) -> dict[str, dict[int, int]]:
    """End offsets to consume up to; partitions with nothing to read are left out.

    Take it once, after the producers of the run are done, and give the same one to every
    member: what arrives later is the next run's.
    """
    settings = settings or get_settings()
    return {
        topic: {p: high for p, (low, high) in marks.items() if high > low}
        for topic, marks in watermarks_of(settings, topics).items()
    }


def consumer_tuning(settings: Settings, member: str, static: bool = False) -> dict[str, Any]:
    """``static``: the member name is its identity in the group (static membership).

    A restarted static member takes its partitions back at once, without a rebalance or
    waiting for the dead one's session to expire; a second live process with the same name
    fences the first (the zombie gets a fatal error instead of writing).
    """
    config: dict[str, Any] = {
        "client.id": member,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        # Short session: partitions of a killed member move on within seconds.
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1500,
        "max.poll.interval.ms": 120_000,
        "max.partition.fetch.bytes": 4 * 1024 * 1024,
    }
    if static:
        config["group.instance.id"] = f"{settings.consumer_group}/{member}"
    return config


class StopSource(Protocol):
    """Where a bounded run ends, learned while it runs (``orchestration.stops.StopReader``)."""

    def poll(self) -> Snapshot | None: ...

    def close(self) -> None: ...


@dataclass
class MemberResult:
    member: str
    consumed: int = 0
    landed: int = 0
    dlq: int = 0
    files: int = 0
    commits: int = 0
    seconds: float = 0.0
    per_topic: dict[str, int] = field(default_factory=dict)
    # Offsets this member will never read: retention deleted them before they were
    # committed, or the group's offset lay past the end (a recreated topic) and was reset.
    gaps: list[dict[str, Any]] = field(default_factory=list)
    # Batches not landed because another member had committed past them (this one had lost
    # the partition without noticing yet).
    fenced: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Invalid:
    msg: Message
    error: str


class LandingConsumer:
    """One member of the landing group: bounded by ``until`` (known at start) or ``stop``
    (published later), else follow mode."""

    def __init__(
        self,
        settings: Settings,
        member: str | None = None,
        until: Snapshot | None = None,
        batch_messages: int = BATCH_MESSAGES,
        batch_seconds: float = BATCH_SECONDS,
        timeout: float | None = None,
        stop: StopSource | None = None,
        notify: bool = False,
        share: tuple[int, int] | None = None,
    ) -> None:
        if until is not None and stop is not None:
            raise ValueError("give the snapshot or a source to learn it from, not both")
        self.settings = settings
        self.member = member or f"landing@{socket.gethostname()}:{os.getpid()}"
        self.stop = stop
        self.bounded = until is not None or stop is not None
        self.share = share
        self.batch_messages = batch_messages
        self.batch_seconds = batch_seconds
        self.timeout = timeout
        self.result = MemberResult(self.member)
        self.stopping = False
        self._base = {settings.topic(t): t for t in INPUT_TOPICS}
        self._decoders = {
            full: (event_type(base), msgspec.json.Decoder(event_type(base)))
            for full, base in self._base.items()
        }
        self._batch_decoders = {
            full: msgspec.json.Decoder(list[event_type(base)])  # type: ignore[misc]
            for full, base in self._base.items()
        }
        self._buffer: dict[TP, list[Message]] = defaultdict(list)
        self._buffered = 0
        self._committed: dict[TP, int] = {}
        self._ends: dict[TP, int] | None = None
        if until is not None:
            self._set_ends(until)
        self._paused: set[TP] = set()
        self._consumer = kafka_clients.consumer(
            settings,
            settings.consumer_group,
            **consumer_tuning(settings, self.member, static=member is not None and not share),
        )
        self._dlq: Producer | None = None
        self._dlq_failed: str | None = None
        # Live mode: a notice per commit, from a producer of its own (not the DLQ's).
        self._notices: Producer | None = None
        # Files landed whose commit was refused: a later commit of the partition covers them,
        # and its notice must announce them too.
        self._unannounced: dict[TP, list[tuple[int, int]]] = defaultdict(list)
        if notify:
            self._notices = kafka_clients.producer(
                settings, f"{self.member}-notices", **{"acks": "all", "linger.ms": 0}
            )

    # --- lifecycle -------------------------------------------------------------------------
    def request_stop(self, *_: Any) -> None:
        self.stopping = True

    def run(self) -> MemberResult:
        started = time.monotonic()
        if self.share is None:
            self._consumer.subscribe(
                list(self._base), on_assign=self._on_assign, on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )  # fmt: skip
        else:
            self._take_share(*self.share)
        try:
            done = self._loop(started)
            self._flush(list(self._buffer))
            if self.bounded and not done:
                # A batch run cut short must not look like a finished one to its caller.
                raise IngestError(f"{self.member}: stopped before the snapshot was reached")
        finally:
            self.result.seconds = round(time.monotonic() - started, 3)
            if self.stop is not None:
                self.stop.close()
            if self._dlq is not None:
                self._dlq.flush(30)
            if self._notices is not None:
                self._notices.flush(30)
            self._consumer.close()
        log.info(
            "%s: %d consumed, %d landed, %d to DLQ in %.1f s",
            self.member, self.result.consumed, self.result.landed, self.result.dlq,
            self.result.seconds,
        )  # fmt: skip
        return self.result

    def _loop(self, started: float) -> bool:
        """Consume until stopped (False) or, in batch mode, the group is done (True)."""
        batch_started = time.monotonic()
        last_check = 0.0
        while not self.stopping:
            room = max(1, min(10_000, self.batch_messages - self._buffered))
            messages = self._consumer.consume(num_messages=room, timeout=0.2)
            self._take(messages)
            now = time.monotonic()
            if self._buffered == 0:
                batch_started = now
            elif (
                not messages
                or self._buffered >= self.batch_messages
                or now - batch_started >= self.batch_seconds
                or self._holds_the_rest()
            ):
                self._flush(list(self._buffer))
                batch_started = now
            if self._own_share_done():
                return True
            if self.bounded and self._ends is None and now - last_check >= STOP_POLL_EVERY:
                last_check = now
                self._learn_stop()
            elif self.bounded and not messages and now - last_check >= DONE_CHECK_EVERY:
                last_check = now
                if self._group_done():
                    return True
            if self.timeout is not None and now - started > self.timeout:
                where = "no snapshot published" if self._ends is None else f"lag: {self._lag()}"
                raise IngestError(
                    f"{self.member}: snapshot not reached after {self.timeout:.0f} s; {where}"
                )
        return False

    def _holds_the_rest(self) -> bool:
        """With a share of its own and the snapshot known: everything this member still has
        to land is in its buffer (land it now rather than after an idle poll)."""
        if self.share is None or self._ends is None or not self._buffered:
            return False
        for tp, end in self._targets():
            key = (tp.topic, tp.partition)
            group = self._buffer.get(key)
            last = _offset(group[-1]) if group else self._committed.get(key, 0) - 1
            if last + 1 < end:
                return False
        return True

    def _own_share_done(self) -> bool:
        """With a share of its own, nobody else commits its partitions: its own commits
        tell when it reached the snapshot, without asking the group coordinator."""
        if self.share is None or self._ends is None or self._buffered:
            return False
        return all(self._committed.get((tp.topic, tp.partition), 0) >= end
                   for tp, end in self._targets())  # fmt: skip

    def _set_ends(self, until: Snapshot) -> None:
        self._ends = {
            (self.settings.topic(base), int(p)): int(end)
            for base, ends in until.items()
            for p, end in ends.items()
        }

    def _learn_stop(self) -> None:
        assert self.stop is not None
        until = self.stop.poll()
        if until is None:
            return
        self._set_ends(until)
        log.info("%s: stop snapshot published: %s", self.member, encode_snapshot(until))
        # Whatever is buffered past the end is the next run's; only a writer from outside the
        # run can have put it there, since the snapshot was taken after the run's producers.
        for key, group in list(self._buffer.items()):
            kept = self._within_snapshot(key, group) if group else group
            self._buffered -= len(group) - len(kept)
            self._buffer[key] = kept

    def _take(self, messages: list[Message]) -> None:
        groups: dict[TP, list[Message]] = {}
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.fatal():
                    raise KafkaException(err)
                log.warning("%s: consumer error: %s", self.member, err)
                continue
            topic, partition = msg.topic(), msg.partition()
            assert topic is not None and partition is not None
            key = (topic, partition)
            group = groups.get(key)
            if group is None:
                groups[key] = group = []
            group.append(msg)
        for key, group in groups.items():
            if self._ends is not None:
                group = self._within_snapshot(key, group)
            self._buffer[key].extend(group)
            self._buffered += len(group)

    def _within_snapshot(self, key: TP, group: list[Message]) -> list[Message]:
        assert self._ends is not None
        end = self._ends.get(key, -1)
        if _offset(group[-1]) < end:
            return group
        # Past the snapshot: the next run's. Stop fetching it; it is never committed here.
        if key not in self._paused:
            self._paused.add(key)
            self._consumer.pause([TopicPartition(*key)])
        return [m for m in group if _offset(m) < end]

    def _take_share(self, index: int, count: int) -> None:
        """Take this member's share of the partitions by itself, with no group rebalance:
        the members of a run are known (``count`` of them) and start together, and a join
        with its rebalances cost each run seconds. Offsets are still the group's."""
        meta = self._consumer.list_topics(timeout=ADMIN_TIMEOUT).topics
        missing = [topic for topic in self._base if topic not in meta]
        if missing:
            raise IngestError(f"{self.member}: topics {missing} not found; create them first")
        every = [
            (topic, partition)
            for topic in self._base
            for partition in sorted(meta[topic].partitions)
        ]
        mine = [TopicPartition(t, p) for t, p in share_of(every, index, count)]
        self._on_assign(self._consumer, mine)
        # Offsets left unset: each partition starts at the group's committed offset.
        self._consumer.assign(mine)

    # --- rebalance ---------------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # A (re)assigned partition starts unpaused; _take pauses it again if need be.
        self._paused.difference_update((tp.topic, tp.partition) for tp in partitions)
        log.info("%s: assigned %s", self.member, _names(partitions))
        if not partitions:
            return
        for tp in consumer.committed(partitions, timeout=ADMIN_TIMEOUT):
            committed = tp.offset if tp.offset >= 0 else 0
            self._committed[(tp.topic, tp.partition)] = committed
            removed = clear_uncommitted(
                self.settings, self._base[tp.topic], tp.partition, committed
            )
            if removed:
                log.info("%s: cleared %d uncommitted file(s) of %s[%d]", self.member, removed,
                         tp.topic, tp.partition)  # fmt: skip
            self._check_gap(consumer, tp.topic, tp.partition, tp.offset)

    def _check_gap(self, consumer: Consumer, topic: str, partition: int, committed: int) -> None:
        if committed < 0:
            return  # nothing committed yet: the group starts at the earliest offset
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=ADMIN_TIMEOUT
        )
        if low <= committed <= high:
            return
        kind = "deleted before landing" if committed < low else "offset past the end, reset"
        gap = {"topic": topic, "partition": partition, "committed": committed, "low": low,
               "high": high, "kind": kind}  # fmt: skip
        self.result.gaps.append(gap)
        log.warning("%s: offset gap on %s[%d]: committed %d, log %d..%d (%s)", self.member,
                    topic, partition, committed, low, high, kind)  # fmt: skip

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Land and commit what we hold for these partitions while we still own them; if that
        # fails the batch is simply re-delivered to the next owner.
        keys = [(tp.topic, tp.partition) for tp in partitions]
        log.info("%s: revoked %s", self.member, _names(partitions))
        try:
            self._flush([k for k in keys if k in self._buffer])
        except KafkaException as exc:
            log.warning("%s: flush on revoke failed, batch will be re-read: %s", self.member, exc)
        self._drop(keys)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Someone else may own them already: committing is not ours to do any more.
        log.warning("%s: lost %s", self.member, _names(partitions))
        self._drop([(tp.topic, tp.partition) for tp in partitions])

    def _drop(self, keys: list[TP]) -> None:
        for key in keys:
            self._buffered -= len(self._buffer.pop(key, []))
            # The next owner reads on from the committed offset and announces what it lands.
            self._unannounced.pop(key, None)

    # --- one batch ---------------------------------------------------------------------------
    def _flush(self, keys: list[TP]) -> None:
        commits: list[TopicPartition] = []
        ranges: list[tuple[TP, int, int]] = []
        owned = self._still_owned([k for k in keys if self._buffer.get(k)])
        for key in keys:
            messages = self._buffer.pop(key, [])
            self._buffered -= len(messages)
            if messages and key in owned:
                commits.append(self._land(key, messages))
                ranges.append((key, _offset(messages[0]), _offset(messages[-1])))
        if not commits:
            return
        if self._dlq is not None and self._dlq.flush(30) > 0:
            raise IngestError(f"{self.member}: DLQ messages not delivered; batch not committed")
        if self._dlq_failed:
            raise IngestError(f"{self.member}: DLQ delivery failed: {self._dlq_failed}")
        if not self._commit(commits):
            for key, first, last in ranges:
                self._unannounced[key].append((first, last))
            return
        for key in {key for key, _, _ in ranges}:
            ranges += [(key, first, last) for first, last in self._unannounced.pop(key, [])]
        self._announce(ranges)

    def _still_owned(self, keys: list[TP]) -> set[TP]:
        """The partitions of ``keys`` whose group offset is still where this member left it.

        A member that lost a partition without noticing yet (a long pause, a broker restart)
        still holds a buffer; once another member has committed past it, landing it would
        write a second copy of offsets the group already has. Such batches are dropped.
        """
        if not keys:
            return set()
        tps = [TopicPartition(topic, partition) for topic, partition in keys]
        owned = set()
        for tp in self._consumer.committed(tps, timeout=ADMIN_TIMEOUT):
            key = (tp.topic, tp.partition)
            if tp.offset <= self._committed.get(key, 0):
                owned.add(key)
                continue
            self.result.fenced += 1
            log.warning("%s: %s[%d] was committed to %d by another member; batch dropped",
                        self.member, tp.topic, tp.partition, tp.offset)  # fmt: skip
        return owned

    def _announce(self, ranges: list[tuple[TP, int, int]]) -> None:
        """Tell whoever loads (live mode) that these files are durable and committed.

        Best effort: a notice lost here only delays the load until the next one, because a
        load takes every landed file not loaded yet.
        """
        if self._notices is None:
            return
        from flightpipe.live import notices

        files = [
            notices.LandedRange(self._base[topic], partition, first, last)
            for (topic, partition), first, last in sorted(ranges)
        ]
        landed = sum(f.last - f.first + 1 for f in files)
        self._notices.produce(
            notices.topic(self.settings),
            notices.encode(self.member, files, landed),
            on_delivery=self._notice_delivered,
        )
        self._notices.poll(0)

    def _notice_delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            log.warning("%s: a landing notice was not delivered: %s", self.member, err)

    def _commit(self, offsets: list[TopicPartition]) -> bool:
        """Commit synchronously; a refused commit is logged, not raised.

        Not committing is always safe: the files are durable, and whoever reads the offsets
        again replaces them (see zones/landing.py). Refusals happen in rebalances (the generation
        moved on) and are expected when members come and go.
        """
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].fatal():
                raise
            log.warning("%s: commit refused, offsets will be re-read: %s", self.member, exc)
            return False
        self.result.commits += 1
        for tp in offsets:
            self._committed[(tp.topic, tp.partition)] = tp.offset
        return True

    def _land(self, key: TP, messages: list[Message]) -> TopicPartition:
        topic, partition = key
        table = self._batch_table(topic, partition, messages)
        if table is None:
            # Something in the batch is a dead letter: sort it out message by message.
            table = self._table_one_by_one(topic, partition, messages)
        first, last = _offset(messages[0]), _offset(messages[-1])
        base = self._base[topic]
        if land_batch(self.settings, base, partition, first, last, table) is not None:
            self.result.files += 1
        landed = 0 if table is None else table.num_rows
        self.result.consumed += len(messages)
        self.result.landed += landed
        self.result.per_topic[base] = self.result.per_topic.get(base, 0) + landed
        return TopicPartition(topic, partition, last + 1)

    def _batch_table(self, topic: str, partition: int, messages: list[Message]) -> Any:
        """The landing table of a batch in which every message is valid, else None."""
        tp = self._decoders[topic][0]
        decoded = _decode_batch(tp, self._batch_decoders[topic], messages)
        if decoded is None:
            return None
        events, keys = decoded
        offsets: list[int] = [msg.offset() for msg in messages]  # type: ignore[misc]
        stamps = [msg.timestamp() for msg in messages]
        produced = [ms if kind != TIMESTAMP_NOT_AVAILABLE else None for kind, ms in stamps]
        try:
            return build_table(tp, events, topic, partition, offsets, keys, produced)
        except _BUILD_ERRORS:
            return None

    def _table_one_by_one(self, topic: str, partition: int, messages: list[Message]) -> Any:
        """Decode and build each message alone; whatever fails goes to the DLQ with why."""
        tp, decoder = self._decoders[topic]
        tables = []
        for msg in messages:
            outcome = _decode(decoder, msg)
            if not isinstance(outcome, _Invalid):
                event, natural = outcome
                try:
                    tables.append(
                        build_table(
                            tp,
                            [event],
                            topic,
                            partition,
                            [_offset(msg)],
                            [natural],
                            [_produced_ms(msg)],
                        )
                    )
                    continue
                except _BUILD_ERRORS as exc:
                    outcome = _Invalid(msg, f"landing: {type(exc).__name__}: {exc}")
            self._send_dlq(outcome)
        return pa.concat_tables(tables) if tables else None

    # --- dead letters ------------------------------------------------------------------------
    def _send_dlq(self, bad: _Invalid) -> None:
        if self._dlq is None:
            self._dlq = kafka_clients.producer(
                self.settings,
                f"{self.member}-dlq",
                **{"enable.idempotence": True, "acks": "all", "linger.ms": 20},
            )
        msg = bad.msg
        topic = msg.topic() or ""
        headers: list[tuple[str, str | bytes | None]] = [
            ("error", bad.error.encode()),
            ("source_topic", topic.encode()),
            ("source_partition", str(msg.partition()).encode()),
            ("source_offset", str(_offset(msg)).encode()),
        ]
        while True:
            try:
                self._dlq.produce(
                    dlq_topic(topic), msg.value(), msg.key(), headers=headers,
                    on_delivery=self._dlq_delivered,
                )  # fmt: skip
                break
            except BufferError:
                self._dlq.poll(0.05)
        self.result.dlq += 1

    def _dlq_delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None and self._dlq_failed is None:
            self._dlq_failed = str(err)

    # --- stop rule ---------------------------------------------------------------------------
    def _targets(self) -> list[tuple[TopicPartition, int]]:
        """Where the stop rule looks: every partition of the run, or with a share of its own,
        the member's partitions (nobody else commits them)."""
        assert self._ends is not None
        mine = None if self.share is None else set(self._committed)
        return [
            (TopicPartition(t, p), end)
            for (t, p), end in self._ends.items()
            if mine is None or (t, p) in mine
        ]

    def _group_done(self) -> bool:
        """True once the group's committed offsets reached the snapshot everywhere."""
        targets = self._targets()
        if not targets:
            return True
        try:
            self._commit_gaps()
            committed = self._consumer.committed([tp for tp, _ in targets], timeout=10)
        except KafkaException as exc:
            # Coordinator moving or busy: not done yet, ask again on the next idle poll.
            log.warning("%s: cannot read committed offsets yet: %s", self.member, exc)
            return False
        return all(c.offset >= end for c, (_, end) in zip(committed, targets, strict=True))

    def _commit_gaps(self) -> None:
        # Compaction or control records can leave our last message short of the snapshot
        # while the position is past it; when idle, the snapshot itself is what to commit.
        assignment = self._consumer.assignment()
        if not assignment or self._buffered or self._ends is None:
            return
        advance = []
        for pos in self._consumer.position(assignment):
            key = (pos.topic, pos.partition)
            end = self._ends.get(key)
            if end is None or pos.offset == OFFSET_INVALID:
                continue
            if pos.offset >= end and self._committed.get(key, -1) < end:
                advance.append(TopicPartition(pos.topic, pos.partition, end))
        if advance:
            self._commit(advance)

    def _lag(self) -> dict[str, int]:
        targets = self._targets()
        committed = self._consumer.committed([tp for tp, _ in targets], timeout=10)
        return {
            f"{c.topic}[{c.partition}]": end - max(c.offset, 0)
            for c, (_, end) in zip(committed, targets, strict=True)
            if c.offset < end
        }


def _decode(decoder: msgspec.json.Decoder[Any], msg: Message) -> tuple[Event, str] | _Invalid:
    """The event and its key, or why the message is a dead letter."""
    value = msg.value()
    if value is None:
        return _Invalid(msg, "null value (tombstone) where an event was expected")
    try:
        event: Event = decoder.decode(value)
    except msgspec.ValidationError as exc:
        return _Invalid(msg, f"schema: {exc}")
    except msgspec.DecodeError as exc:
        return _Invalid(msg, f"malformed: {exc}")
    raw_key = msg.key()
    key = raw_key.decode("utf-8", "replace") if isinstance(raw_key, bytes) else raw_key
    natural = event.key()
    if key != natural:
        return _Invalid(msg, f"key: message key {key!r} is not the event key {natural!r}")
    return event, natural


_RAW_LIST: Final = msgspec.json.Decoder(list[msgspec.Raw])
_JSON_WHITESPACE: Final = b" \t\n\r"


def _decode_batch(
    tp: type[Event], decoder: msgspec.json.Decoder[Any], messages: list[Message]
) -> tuple[list[Event], list[str]] | None:
    """Events and keys of a batch in which every message is valid, else None.

    One decode of the values joined into a JSON array instead of one per message. It is
    accepted only when it is exactly what decoding each message on its own gives: the
    array's elements must be the messages' values (no value spilling into its neighbour,
    which a join could hide) and every message key must be its event's key.
    """
    values = [msg.value() for msg in messages]
    try:
        joined = b"[" + b",".join(values) + b"]"  # type: ignore[arg-type]
    except TypeError:
        return None  # a null value (tombstone)
    try:
        elements = _RAW_LIST.decode(joined)
        events: list[Event] = decoder.decode(joined)
    except msgspec.DecodeError:  # ValidationError included
        return None
    # Element i starts where value i's text does, so equal lengths mean equal spans.
    if len(elements) != len(values) or list(map(len, elements)) != [
        len(v.strip(_JSON_WHITESPACE))  # type: ignore[union-attr]
        for v in values
    ]:
        return None
    naturals = list(map(tp.key, events))
    if list(map(str.encode, naturals)) != [msg.key() for msg in messages]:
        return None
    return events, naturals


def _offset(msg: Message) -> int:
    offset = msg.offset()
    assert offset is not None
    return offset


def _produced_ms(msg: Message) -> int | None:
    """The record's timestamp: the producer's send time (CreateTime, what our topics keep),
    or the broker's append time on a topic set to LogAppendTime; None when there is none."""
    kind, value = msg.timestamp()
    return None if kind == TIMESTAMP_NOT_AVAILABLE else value


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"


def consume_member(
    settings: Settings | None = None,
    until: Snapshot | None = None,
    member: str | None = None,
    timeout: float | None = None,
    batch_messages: int = BATCH_MESSAGES,
    stop: StopSource | None = None,
    notify: bool = False,
    share: tuple[int, int] | None = None,
) -> MemberResult:
    """Run one group member in this process until the snapshot (given, or learned from
    ``stop``), or until SIGTERM in follow mode. With ``share`` (index, count), the member
    takes its partitions by itself (:func:`share_of`) instead of joining the group's
    rebalances, and stops once they reach the snapshot.

    SIGTERM/SIGINT finish the current batch (land + commit) and close the consumer.
    """
    settings = settings or get_settings()
    member_ = LandingConsumer(
        settings,
        member,
        until,
        batch_messages=batch_messages,
        timeout=timeout,
        stop=stop,
        notify=notify,
        share=share,
    )
    previous = _install_stop(member_)
    try:
        return member_.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _install_stop(member: LandingConsumer) -> dict[int, Any]:
    previous: dict[int, Any] = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, _handler(member))
    except ValueError:
        pass  # not the main thread: the caller stops us with request_stop()
    return previous


def _handler(member: LandingConsumer) -> Any:
    def handle(_sig: int, _frame: FrameType | None) -> None:
        member.request_stop()

    return handle


def consume_group(
    settings: Settings | None = None,
    members: int | None = None,
    until: Snapshot | None = None,
    follow: bool = False,
    timeout: float = 900.0,
    batch_messages: int = BATCH_MESSAGES,
) -> list[MemberResult]:
    """Run the group as ``members`` processes (default ``settings.consumers``).

    Batch mode (default): takes the end-offset snapshot now unless given, and returns when
    every partition is committed up to it. Raises IngestError if a member failed.
    """
    settings = settings or get_settings()
    count = members or settings.consumers
    target = None if follow else (until if until is not None else snapshot(settings))
    children = [
        procs.spawn(settings, member_args(i, target, timeout, batch_messages)) for i in range(count)
    ]
    # Members enforce the batch timeout themselves; the margin only catches a hung one.
    outcomes = procs.wait_all(children, None if follow else timeout + 60)
    failed = [o for o in outcomes if o.returncode != 0 or o.result is None]
    if failed:
        raise IngestError(
            f"{len(failed)} of {count} consumers failed (exit codes "
            f"{[o.returncode for o in failed]})"
        )
    return [MemberResult(**o.result) for o in outcomes if o.result is not None]


def share_of(partitions: list[TP], index: int, count: int) -> list[TP]:
    """Member ``index`` of ``count``'s partitions: dealt in turn, in the order given, so
    every member gets as many of each topic as can be (one-partition topics included)."""
    if not 0 <= index < count:
        raise ValueError(f"member {index} is not one of {count}")
    return partitions[index::count]


def member_name(index: int) -> str:
    """The stable name (and static group identity) of the index-th member."""
    return f"landing-{index}"


def member_args(
    index: int, until: Snapshot | None, timeout: float | None, batch_messages: int
) -> list[str]:
    args = ["consume", "--in-process", "--member", member_name(index)]
    args += ["--batch-messages", str(batch_messages)]
    if until is None:
        args.append("--follow")
    else:
        args += ["--until", encode_snapshot(until)]
    if timeout is not None:
        args += ["--timeout", str(timeout)]
    return args


def encode_snapshot(until: Snapshot) -> str:
    return msgspec.json.encode(until).decode()


def decode_snapshot(text: str) -> dict[str, dict[int, int]]:
    return msgspec.json.decode(text, type=dict[str, dict[int, int]])
