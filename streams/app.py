"""The Faust application: one worker process hosts every agent; scale by partitions (run more workers)."""
from __future__ import annotations

import logging

import faust

from cityops.settings import get_settings

settings = get_settings()

app = faust.App(
    "cityops-streams",
    broker=f"kafka://{settings.bootstrap_servers}",
    # Tables live in memory and recover from their changelog topics on start: no local state to lose.
    store="memory://",
    datadir=str(settings.data_dir / "faust"),
    autodiscover=["streams.tickets", "streams.reports", "streams.sensors", "streams.cases", "streams.aggregates"],
    origin="streams",
    # Every stream topic has the same count, so tables co-partition with their source topics.
    topic_partitions=settings.partitions,
    topic_replication_factor=1,
    topic_allow_declare=True,
    # Timers sweep the local store; a standby copy there would be swept (and emitted) twice.
    table_standby_replicas=0,
    consumer_auto_offset_reset="earliest",
    # One local broker: short timeouts make group joins and failover take seconds, not a minute.
    broker_session_timeout=10.0,
    broker_heartbeat_interval=1.0,
    broker_rebalance_timeout=10.0,
    broker_commit_interval=1.0,
    producer_acks=-1,
    producer_linger=0.005,
    web_enabled=False,
    timezone="Asia/Shanghai",
)


@app.task
async def _quiet_clients() -> None:
    # aiokafka logs every send at debug level; with the worker's handlers that costs ~5 % of the hot path.
    for name in ("aiokafka", "kafka"):
        logging.getLogger(name).setLevel(logging.WARNING)


def raw_topic(name: str, partitions: int | None = None) -> faust.TopicT:
    """Topics carry JSON bytes; the pydantic models in cityops validate them (and feed dead letters)."""
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                     partitions=partitions or settings.partitions)
