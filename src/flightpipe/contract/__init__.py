"""The data contract: the wire events and, per entity, everything the layers share.

``events`` holds the versioned wire Structs; ``entities`` the per-entity contract (topic,
key, staging columns and types, value rules). Nothing outside this package restates an
entity's shape, bounds or keys.
"""

from flightpipe.contract.entities import (
    ENTITIES,
    LINEAGE,
    REFERENCE_TOPICS,
    SOURCE,
    TOPICS,
    Column,
    Entity,
    entity,
    partitions,
)
from flightpipe.contract.events import ORIGINS, SCHEMA_VERSION, Event, event_type

__all__ = [
    "ENTITIES",
    "LINEAGE",
    "ORIGINS",
    "REFERENCE_TOPICS",
    "SCHEMA_VERSION",
    "SOURCE",
    "TOPICS",
    "Column",
    "Entity",
    "Event",
    "entity",
    "event_type",
    "partitions",
]
