"""The one place Kafka clients are configured: bootstrap, authentication and timeouts.

Every producer, consumer and admin client of flightpipe starts from :func:`base_config`,
so pointing the pipeline at a secured cluster (TLS, SASL) is a matter of settings.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from flightpipe.settings import Settings

# Bounds for the calls that would otherwise wait on an unreachable broker forever.
ADMIN_TIMEOUT = 30.0
FLUSH_TIMEOUT = 150.0  # longer than the producers' delivery.timeout.ms


def base_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": settings.kafka_security_protocol,
        # A broker that stops answering fails the request instead of hanging it.
        "socket.timeout.ms": 30_000,
    }
    if settings.kafka_sasl_mechanism:
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        config["sasl.username"] = settings.kafka_sasl_username
        config["sasl.password"] = settings.kafka_sasl_password
    if settings.kafka_ssl_ca_location:
        config["ssl.ca.location"] = settings.kafka_ssl_ca_location
    return config


def admin(settings: Settings) -> AdminClient:
    return AdminClient(base_config(settings))


def producer(settings: Settings, client_id: str, **overrides: Any) -> Producer:
    return Producer({**base_config(settings), "client.id": client_id, **overrides})


def consumer(settings: Settings, group_id: str, **overrides: Any) -> Consumer:
    """A consumer that never auto-commits: flightpipe commits only what is durable."""
    config = {**base_config(settings), "group.id": group_id, "enable.auto.commit": False}
    return Consumer({**config, **overrides})
