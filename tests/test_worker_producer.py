"""The worker's Kafka producer on the real broker."""
from __future__ import annotations

import asyncio
import uuid
from contextlib import suppress

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from cityops.topics import AGGREGATES

pytestmark = pytest.mark.integration


def test_a_send_to_a_topic_new_to_the_producer_does_not_strand_one_queued_for_another(broker, stack_env):
    """aiokafka's client starts out fetching metadata for every topic; the first send to a topic missing from
    it (a changelog created a moment before, on a fresh broker) narrows the fetch to that one topic, and a batch
    already queued for another topic then waits for a leader it can no longer learn: the sender asks for metadata
    in a busy loop until the request timeout, 20 minutes in Faust, and a fresh worker's commit waits behind it."""
    from streams.overrides import App

    bootstrap = stack_env["CITYOPS_BOOTSTRAP_SERVERS"]
    fresh = f"test-fresh-{uuid.uuid4().hex[:8]}"
    # Long enough a linger that the first batch is still queued when the second send narrows the metadata.
    test_app = App("cityops-producer-test", broker=f"kafka://{bootstrap}", producer_linger=0.5)

    async def run() -> None:
        producer = test_app.producer
        await producer.start()
        try:
            # As the worker declares its changelog topics: each declaration fetches every topic's metadata.
            await producer.create_topic(f"{fresh}-declared", 1, 1)
            admin = KafkaAdminClient(bootstrap_servers=bootstrap)
            try:   # after the producer's first metadata: unknown to it
                admin.create_topics([NewTopic(fresh, 1, 1)])
            finally:
                admin.close()
            queued = await producer.send(AGGREGATES.name, b"k", b"v", None, None, None)
            await asyncio.sleep(0.3)   # the broker's metadata knows the new topic by now
            fresh_sent = await producer.send(fresh, b"k", b"v", None, None, None)
            await asyncio.wait_for(asyncio.gather(queued, fresh_sent), timeout=15)
        finally:   # a stranded batch would hold a graceful stop for the request timeout
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(producer.stop(), timeout=10)

    asyncio.run(run())
