"""Agent: hotline ticket events → validated, classified case updates (or dead letters)."""
from __future__ import annotations

from cityops.models import CaseUpdate, TicketEvent
from cityops.models.deadletters import DeadLetter
from cityops.topics import CASES, DEADLETTERS, HOTLINE_TICKETS
from streams.app import app, raw_topic, settings
from streams.classify import Classifier
from streams.deadletters import decode
from streams.tickets.cases import apply

hotline_topic = raw_topic(HOTLINE_TICKETS.name)
cases_topic = raw_topic(CASES.name)
deadletters_topic = raw_topic(DEADLETTERS.name, partitions=DEADLETTERS.partition_count)

# Case state by ticket id, recovered from its changelog after a restart.
case_state = app.Table("case-state", partitions=settings.partitions)


@app.agent(hotline_topic)
async def tickets(stream):
    classifier = Classifier.default()
    async for event in stream.events():
        msg = event.message
        ev = decode(TicketEvent, event.value, topic=msg.topic, partition=msg.partition, offset=msg.offset,
                    key=event.key)
        if isinstance(ev, DeadLetter):
            await deadletters_topic.send(value=ev.model_dump_json().encode())
            yield ev
            continue
        prev = case_state.get(ev.ticket_id)
        try:
            case = apply(CaseUpdate.model_validate(prev) if prev else None, ev,
                         pii_key=settings.pii_key, classifier=classifier)
        except Exception as e:  # noqa: BLE001 — a bug on one event must not stop the worker or lose it
            dl = DeadLetter.of(msg.topic, msg.partition, msg.offset, "processing", repr(e), event.value, event.key)
            await deadletters_topic.send(value=dl.model_dump_json().encode())
            yield dl
            continue
        case_state[ev.ticket_id] = case.model_dump(mode="json")
        await cases_topic.send(key=case.case_id.encode(), value=case.model_dump_json().encode())
        yield case
