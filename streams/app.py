"""The Faust application and its configuration: one worker process hosts every handler; scale by partitions
(run more workers). Why each setting has its value, with the figures: docs/streams.md, worker settings."""
from __future__ import annotations

import faust

from cityops.settings import get_settings
from cityops.topics import MAX_RECORD_BYTES
from streams.overrides import App

settings = get_settings()

app = App(
    "cityops-streams",
    broker=f"kafka://{settings.bootstrap_servers}",
    # Tables live in memory and recover from their changelog topics on start: no local state to lose.
    store="memory://",
    datadir=str(settings.data_dir / "faust"),
    autodiscover=False,   # streams/worker.py registers every handler and timer
    origin="streams",
    # Every stream topic has the same count, so tables co-partition with their source topics.
    topic_partitions=settings.partitions,
    # Changelogs and internal topics as replicated as the catalogue's (the brokers require 2 in sync of 3).
    topic_replication_factor=settings.replication_factor,
    topic_allow_declare=True,
    # Timers sweep the local store; a standby copy there would be swept (and emitted) twice.
    table_standby_replicas=0,
    consumer_auto_offset_reset="earliest",
    # One local broker: short timeouts make group joins and failover take seconds, not a minute.
    broker_session_timeout=10.0,
    broker_heartbeat_interval=1.0,
    broker_rebalance_timeout=10.0,
    # Each commit flushes the producer first: committing every second, a busy worker mostly flushes.
    broker_commit_interval=5.0,
    producer_acks=-1,
    producer_linger=0.005,
    # A send to a full partition batch waits for it to leave, and Faust's 16 KiB batches fill under load.
    producer_max_batch_size=256 * 1024,
    producer_max_request_size=MAX_RECORD_BYTES,   # within every topic's max.message.bytes (cityops/topics.py)
    web_enabled=False,
    timezone="Asia/Shanghai",
)


def raw_topic(name: str, partitions: int | None = None) -> faust.TopicT:
    """Topics carry JSON bytes; the pydantic models in cityops validate them (and feed dead letters)."""
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                     partitions=partitions or settings.partitions)
