"""Agent: sensor readings and device alerts → incidents, cases, minute counts (or dead letters)."""
from __future__ import annotations

from cityops.topics import SENSOR_EVENTS
from streams.app import app
from streams.runtime import BATCH, WITHIN, intake, processing_error, send_all, topics


@app.agent(topics[SENSOR_EVENTS.name], name="sensors")
async def sensors(stream):
    run = intake()
    async for batch in stream.take_events(BATCH, within=WITHIN):
        outs = []
        for event in batch:
            m = event.message
            try:
                outs += run.sensor(event.value, event.key, m.topic, m.partition, m.offset)
            except Exception as e:  # noqa: BLE001
                outs.append(processing_error(event, e))
        run.counts.flush()
        await send_all(outs)
        yield len(batch)
