"""Duplicates and hot spots (case candidates, by district + label), then the closed loop (case commands,
by case id), and the timer that marks cases overdue and escalates them."""
from __future__ import annotations

from datetime import datetime, timezone

import orjson

from cityops.models.cases import AddReporter, ApplyTicket, CaseCandidate, CaseCommand, DeviceCheck, OpenCase
from cityops.taxonomy import load_taxonomy
from cityops.topics import CASE_CANDIDATES, CASE_COMMANDS, CASES, DEVICE_CHECKS
from streams.app import app
from streams.cases import dedup as dedup_logic
from streams.cases import lifecycle
from streams.cases.clock import CaseClock
from streams.sources import alert_out
from streams.runtime import case_table, consume, dedup_table, send_all
from streams.state import TableKV
from streams.timers import guarded

OVERDUE_CHECK_S = 5.0
cases_kv = TableKV(case_table, cache=False)   # a case is read a few times in its life
dedup_kv = TableKV(dedup_table)
clock = CaseClock()


def case_out(case: dict):
    return CASES.name, case["case_id"].encode(), orjson.dumps(case)


def command_out(cmd: OpenCase | AddReporter | ApplyTicket):
    return CASE_COMMANDS.name, cmd.case_id.encode(), cmd.model_dump_json().encode()


def decide(kv, value: bytes, partition: int) -> list:
    cand = CaseCandidate.model_validate_json(value)
    case, primary = dedup_logic.decide(kv, partition, cand.dedup_key, cand.case)
    outs = [command_out(OpenCase(case_id=case["case_id"], case=case))]
    if primary:
        outs.append(command_out(AddReporter(case_id=primary, reporter=case["case_id"])))
    return outs


def command(kv, value: bytes, partition: int, tax) -> list:
    cmd = CaseCommand.model_validate_json(value).root
    cid = cmd.case_id
    state = kv.get(cid)
    alerts = []
    match cmd:
        case OpenCase():
            new, cases, alerts = lifecycle.open_case(state, cmd.case, partition, tax)
        case AddReporter():
            new, cases = lifecycle.add_reporter(state, cmd.reporter, partition, tax)
        case ApplyTicket():
            new, cases, alerts = lifecycle.apply_ticket(state, cmd.event, cmd.source_offset, tax, cmd.source_topic)
    if new is not state:
        new = {**new, "p": partition}
        kv.put(partition, cid, new)
        clock.note(cid, new)
    return [case_out(c) for c in cases] + [alert_out(a) for a in alerts] + [
        check_out(c) for c in cases if c["status"] == "resolved" and c.get("device_id")]


def check_out(case: dict):
    """A device's case resolved: the device's own readings are to verify it (sent again on a replay: the device
    side keeps the newest check per case version)."""
    chk = DeviceCheck(device_id=case["device_id"], case_id=case["case_id"], resolved_at=case["resolved_at"],
                      version=case["version"])
    return DEVICE_CHECKS.name, chk.device_id.encode(), chk.model_dump_json().encode()


consume(CASE_CANDIDATES.name, lambda m: decide(dedup_kv, m.value, m.partition))
consume(CASE_COMMANDS.name, lambda m: command(cases_kv, m.value, m.partition, load_taxonomy()))


def overdue_sweep(kv, now: datetime, owned, assignment=None) -> list:
    """Cases due by `now` become overdue and escalated (the clock's heap: only due cases are looked at)."""
    cases, alerts = clock.tick(kv, now, owned, assignment)
    return [case_out(c) for c in cases] + [alert_out(a) for a in alerts]


@app.timer(OVERDUE_CHECK_S)
@guarded
async def overdue():
    ours = frozenset(tp.partition for tp in app.consumer.assignment() if tp.topic == CASE_COMMANDS.name)
    # Recovery fills the table without passing through `command`: rescan once it has ended (rebalancing off).
    outs = overdue_sweep(cases_kv, datetime.now(timezone.utc), ours.__contains__, (ours, app.rebalancing))
    await send_all(outs)
