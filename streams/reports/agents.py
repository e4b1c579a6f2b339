"""Agent: citizen app reports → case candidates, minute counts (or dead letters)."""
from __future__ import annotations

from cityops.topics import APP_REPORTS
from streams.app import app
from streams.runtime import BATCH, WITHIN, intake, processing_error, send_all, topics


@app.agent(topics[APP_REPORTS.name], name="app_reports")
async def app_reports(stream):
    run = intake()
    async for batch in stream.take_events(BATCH, within=WITHIN):
        outs = []
        for event in batch:
            m = event.message
            try:
                outs += run.app(event.value, event.key, m.topic, m.partition, m.offset)
            except Exception as e:  # noqa: BLE001
                outs.append(processing_error(event, e))
        run.counts.flush()
        await send_all(outs)
        yield len(batch)
