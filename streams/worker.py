"""The streams worker: every topic it consumes and every timer it runs, registered here, then Faust runs them.

Sources (each message through its `Sources` method): hotline tickets, app reports, sensor events, case events;
and the device checks of resolved device cases, which the devices' readings verify. The features
register their own handlers and timers when imported: cases (duplicates, the closed loop, the overdue timer)
and aggregates (minute counts, the combiner, volume alerts)."""
from __future__ import annotations

import gc
import logging
import sys

from cityops.topics import APP_REPORTS, CASE_EVENTS, DEVICE_CHECKS, HOTLINE_TICKETS, SENSOR_EVENTS
from streams import faults
from streams.aggregates import handlers as aggregates
from streams.app import app, settings
from streams.cases import handlers as cases
from streams.checkpoint import STATE_WRITE_S
from streams.overrides import BatchConsumer
from streams.runtime import consume, source, sources
from streams.sources import Sources

log = logging.getLogger("cityops.streams")
SOURCES = {HOTLINE_TICKETS: Sources.hotline, APP_REPORTS: Sources.app, SENSOR_EVENTS: Sources.sensor,
           CASE_EVENTS: Sources.case_event}
FEATURES = (cases, aggregates)   # their handlers and timers register when imported

for _topic, _handle in SOURCES.items():
    source(_topic.name, _handle)
# Resolved device cases, by device (co-partitioned with sensor.events): the device's readings verify them.
consume(DEVICE_CHECKS.name, lambda m: sources().check(m.value, m.topic, m.partition, m.offset))
app.timer(STATE_WRITE_S)(app.checkpoint.write_state_tick)


@app.task
async def _quiet_clients() -> None:
    # aiokafka and faust.topics log every send at debug level, with the value: a cost on the hot path.
    for name in ("aiokafka", "kafka", "faust.topics"):
        logging.getLogger(name).setLevel(logging.WARNING)


@app.task
async def _freeze_startup_heap() -> None:
    """Every object made so far (modules, the city registry, the classifier and the placement index, Faust's
    services) lives as long as the worker: out of the cyclic collector's reach, a full collection walks only
    what came after (docs/streams.md, worker settings)."""
    sources()
    gc.collect()
    gc.freeze()


def main(loglevel: str) -> None:
    """Run the worker until stopped (`cityops worker`)."""
    # A few objects per message and many small state dicts: the default thresholds collect far too often.
    gc.set_threshold(100_000, 50, 100)
    for fault in faults.install(BatchConsumer):
        log.warning("test fault injected: %s", fault)
    # No web server (nothing serves it), and never Faust's default port: other stacks share the host.
    level = {"warning": "warn", "critical": "crit"}.get(loglevel, loglevel)  # Faust's spelling
    sys.argv = ["cityops worker", "worker", "--loglevel", level, "--without-web",
                "--web-port", str(settings.worker_port)]
    app.main()
