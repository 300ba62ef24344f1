"""The Dask graph: read landed files, clean, dedupe, join weather; gather staging frames.

One Dask partition per Kafka partition (all its new files read together): the producers key
every event by its natural key, so all deliveries of a key sit in one Kafka partition and the
"keep the latest offset" dedupe runs inside a partition without a shuffle. The hourly weather
(a few thousand rows) is reduced to one partition and broadcast to the flight partitions.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask.dataframe as dd
import pandas as pd
from distributed import wait

from flightpipe.contract import TOPICS, entity
from flightpipe.transform import clean
from flightpipe.transform.read import read_columns
from flightpipe.zones.landing import LandedFile, by_partition, file_rows


def read_and_clean(
    paths: Sequence[str],
    topic: str,
    tz_map: Mapping[str, str],
    storage_options: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """One Dask partition: every new file of one Kafka partition, cleaned and deduped.

    ``paths`` are URLs and ``storage_options`` how to open them: a worker on another host
    reads the landing zone from the object store, not from a disk it shares with us."""
    raw = read_columns(paths, entity(topic).raw_columns, storage_options)
    return clean.clean_topic(topic, raw, tz_map)


def _dedupe_single(frame: pd.DataFrame, topic: str) -> pd.DataFrame:
    """Global dedupe after the per-partition one: only differs if a key was re-keyed into
    another partition (topic re-partitioned); then the highest (partition, offset) wins."""
    good = frame[frame["_reject"].isna()]
    bad = frame[frame["_reject"].notna()]
    keys = list(entity(topic).natural_key)
    good = good.sort_values(["src_partition", "src_offset"], kind="stable")
    good = good.drop_duplicates(keys, keep="last")
    return pd.concat([good, bad], ignore_index=True)


@dataclass
class TopicOutput:
    """Result of one topic: rows to stage, rejected rows, and the counts for the audit."""

    staged: pd.DataFrame
    rejected: pd.DataFrame
    landed: int
    duplicates: int
    files: list[LandedFile]

    @property
    def counts(self) -> dict[str, int]:
        return {
            "landed": self.landed,
            "duplicate": self.duplicates,
            "loaded": len(self.staged),
            "rejected": len(self.rejected),
        }


@dataclass
class TransformResult:
    topics: dict[str, TopicOutput] = field(default_factory=dict)
    file_rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def files(self) -> list[LandedFile]:
        return [f for t in self.topics.values() for f in t.files]

    def staged(self, topic: str) -> pd.DataFrame:
        out = self.topics.get(topic)
        if out is None:
            return clean.empty_clean(topic)[entity(topic).staging_columns]
        return out.staged


def build(
    files: Mapping[str, Sequence[LandedFile]],
    tz_map: Mapping[str, str],
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, dd.DataFrame]:
    """Lazy Dask frames per topic (only topics with files)."""
    frames: dict[str, dd.DataFrame] = {}
    for topic in TOPICS:
        groups = by_partition(files.get(topic, ()))
        if not groups:
            continue
        frames[topic] = dd.from_map(
            read_and_clean,
            [[f.path for f in g] for g in groups],
            topic=topic,
            tz_map=dict(tz_map),
            # Only when there are any: a local zone then makes the same call as before, which
            # workers started from an older release still accept.
            **({"storage_options": dict(storage_options)} if storage_options else {}),
            meta=clean.empty_clean(topic),
            enforce_metadata=False,
            label=f"clean-{topic}",
        )
    if "weather" in frames:
        # Tiny after cleaning: one partition, globally deduped, then broadcast to flights.
        frames["weather"] = (
            frames["weather"]
            .repartition(npartitions=1)
            .map_partitions(_dedupe_single, "weather", meta=clean.empty_clean("weather"))
        )
        if "flights" in frames:
            frames["flights"] = frames["flights"].map_partitions(
                clean.join_weather,
                frames["weather"],
                meta=clean.empty_clean("flights"),
                align_dataframes=False,
            )
    return frames


def run(
    client: Any,
    files: Mapping[str, Sequence[LandedFile]],
    tz_map: Mapping[str, str],
    timeout: float | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> TransformResult:
    """Execute the graph on ``client`` (a distributed.Client) in one round trip.

    ``storage_options`` open the landing URLs on the workers
    (:func:`flightpipe.storage.storage_options` of the settings that listed them).

    ``timeout`` bounds the computation (seconds); a worker that dies mid-graph is not a
    failure, the scheduler reruns its tasks elsewhere, but a lost scheduler is.
    """
    started = time.perf_counter()
    frames = build(files, tz_map, storage_options)
    result = TransformResult()
    if not frames:
        result.seconds = time.perf_counter() - started
        return result
    names = list(frames)
    futures = client.compute([frames[n] for n in names])
    try:
        with client.as_current():  # distributed.wait asks for the current client
            wait(futures, timeout=timeout)
    except TimeoutError:
        client.cancel(futures)
        raise TimeoutError(f"the Dask transform did not finish within {timeout:g} s") from None
    computed = client.gather(futures)

    for topic, frame in zip(names, computed, strict=True):
        frame = frame.reset_index(drop=True)
        if topic != "weather":
            frame = _dedupe_single(frame, topic)
        topic_files = list(files[topic])
        rows = file_rows(topic_files)
        result.file_rows.update(rows)
        landed = sum(rows.values())
        good = frame[frame["_reject"].isna()]
        bad = frame[frame["_reject"].notna()]
        result.topics[topic] = TopicOutput(
            staged=good[entity(topic).staging_columns].reset_index(drop=True),
            rejected=bad[["src_topic", "src_partition", "src_offset", "_reject", "_record"]]
            .rename(columns={"_reject": "reason", "_record": "record"})
            .reset_index(drop=True),
            landed=landed,
            duplicates=landed - len(frame),
            files=topic_files,
        )
    result.seconds = time.perf_counter() - started
    return result
