"""Kafka ingestion: topics, producers, landing consumers.

Entry points for orchestration:
* ``topics.ensure_topics(settings)`` - create every topic (idempotent);
* ``produce.produce_role(role, replay)`` - one producer process' work (a role of ROLES);
* ``consume.snapshot(settings)`` once producers are done, then
  ``consume.consume_member(settings, snapshot, member_name(i))`` per member, or
  ``consume.consume_group(settings)`` for all members as processes;
* ``zones.landing.list_landed_files(settings, topic)`` / ``zones.landing.read_landed(paths)``.
"""

from typing import Final

from flightpipe.contract import ORIGINS

FLIGHT_ROLES: Final = tuple(f"flights-{origin}" for origin in ORIGINS)
# Producer roles, one process each.
ROLES: Final = (*FLIGHT_ROLES, "weather", "reference")
# Messages a consumer lands per batch at most (one file per partition per batch).
BATCH_MESSAGES: Final = 100_000
