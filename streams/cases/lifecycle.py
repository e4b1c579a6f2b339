"""Pure case logic: open a case, fold lifecycle events and reporters into it, escalate it when overdue.

One lifecycle for every case, whatever its source (docs/streams.md, the closed loop): 受理 → 派单 → 签收 → 办结 →
核查 / 回访 → 结案, or 重办, 退回. Lifecycle events come from hotline tickets and from `case.events`.

The state kept per case id: {"case": CaseUpdate as JSON, "p": partition, "hl": last hotline offset applied,
"off": {source topic: last offset applied} for the other sources, "reporters": merged duplicate case ids,
"pending": lifecycle events that arrived before the case opened}.
Every input is idempotent (offsets, sets, "already open"), so replays after a crash change no state. A replay
re-emits the case as it stands, though: the state's changelog can reach the broker while the output sent with
it is lost to a SIGKILL (both await the same commit), and a replay that emitted nothing would lose that case.
The sink stores each (case id, version) once (sinks/dedup.py), so the copies cost nothing downstream.
"""
from __future__ import annotations

from datetime import datetime, timezone

from cityops.models import CaseUpdate
from cityops.models.alerts import Alert
from cityops.models.tickets import TicketStatus
from cityops.pii import mask_text
from cityops.taxonomy import Taxonomy, Tier, load_taxonomy
from streams.alerts import rules as alert_rules
from streams.dispatch import due_at, dispatch_tier

DONE = {TicketStatus.resolved, TicketStatus.verified, TicketStatus.return_visit, TicketStatus.closed}
HOTLINE = "hotline.tickets"
_ORDER = list(Tier)

# Event ids a case remembers: a ticket's whole lifecycle is a handful of events.
SEEN_EVENTS = 32


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _ts(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _higher(a: str, b: str) -> str:
    return a if _ORDER.index(Tier(a)) >= _ORDER.index(Tier(b)) else b


def _bump(case: dict, **changes) -> dict:
    return {**case, **changes, "version": case["version"] + 1, "processed_at": _now()}


def _current(state: dict) -> list[dict]:
    return [state["case"]] if state.get("case") else []


def _emergency(case: dict, tax: Taxonomy) -> list[Alert]:
    return [alert_rules.emergency_case(case, _ts(case["received_at"]))] if tax.by_label(case["label"]).page else []


def open_case(state: dict | None, draft: dict, partition: int, tax: Taxonomy) -> tuple[dict, list[dict], list[Alert]]:
    """The first version of a case from its draft (classified, placed, timed); then pending events."""
    if state and state.get("case"):
        return state, [state["case"]], _emergency(draft, tax)  # its page too: the pager sends an alert id once
    state = state or {"p": partition, "hl": -1, "reporters": [], "pending": []}
    count = 1 + len(state["reporters"])
    tier = _higher(draft["tier"], dispatch_tier(tax.by_label(draft["label"]), reporters=count,
                                                hot_spot=draft.get("hot_spot", False)))
    case = {**draft, "version": 1, "tier": tier, "reporter_count": count, "processed_at": _now()}
    case = CaseUpdate.model_validate(case).model_dump(mode="json")
    state = {**state, "case": case, "p": partition, "seen": [*state.get("seen", []), draft["event_id"]][-SEEN_EVENTS:]}
    outs, alerts = [case], _emergency(case, tax)
    pending, state["pending"] = state["pending"], []
    for topic in {_topic_of(p) for p in pending}:   # they were only buffered: apply them now
        first = min(p[0] for p in pending if _topic_of(p) == topic) - 1
        state = _applied_to(state, topic, first)
    for item in sorted(pending, key=lambda x: (_topic_of(x), x[0])):
        state, o, a = apply_ticket(state, item[1], item[0], tax, _topic_of(item))
        outs += o
        alerts += a
    return state, outs, alerts


def _topic_of(pending: list) -> str:
    return pending[2] if len(pending) > 2 else HOTLINE


def _applied(state: dict, topic: str) -> int:
    return state["hl"] if topic == HOTLINE else state.get("off", {}).get(topic, -1)


def _applied_to(state: dict, topic: str, offset: int) -> dict:
    if topic == HOTLINE:
        return {**state, "hl": offset}
    return {**state, "off": {**state.get("off", {}), topic: offset}}


def apply_ticket(state: dict | None, ev: dict, offset: int, tax: Taxonomy, topic: str = HOTLINE
                 ) -> tuple[dict, list[dict], list[Alert]]:
    """A lifecycle event for the case (a hotline ticket's, or a CaseEvent from `topic`), applied once."""
    if state is None:
        state = {"p": None, "hl": -1, "reporters": [], "pending": []}
    if offset <= _applied(state, topic):
        return state, _current(state), []  # applied before a restart
    seen = state.get("seen", [])
    if ev["event_id"] in seen:
        return _applied_to(state, topic, offset), [], []  # the same event sent twice: it happened once
    state = _applied_to(state, topic, offset)
    case = state.get("case")
    if case is None:
        return {**state, "pending": [*state["pending"], [offset, ev, topic]]}, [], []
    case, alerts = _status(case, ev, tax)
    versions = [case]
    if ev.get("then_closed"):   # a device verified its own repair: 核查通过, then 结案
        case, _ = _status(case, {**ev, "status": TicketStatus.closed, "event_id": f"{ev['event_id']}-closed"}, tax)
        versions.append(case)
    return {**state, "case": case, "seen": [*seen, ev["event_id"]][-SEEN_EVENTS:]}, versions, alerts


def _status(case: dict, ev: dict, tax: Taxonomy) -> tuple[dict, list[Alert]]:
    """The case's next version after event `ev`, and whom to page."""
    status, at = ev["status"], ev["occurred_at"]
    cat = tax.by_label(case["label"])
    changes: dict = {"status": status, "event_id": ev["event_id"], "occurred_at": at,
                     "received_at": ev["received_at"], "note": mask_text(ev.get("note") or "")}
    for f in ("department", "tier", "resolution_mode", "satisfaction"):
        if ev.get(f):
            changes[f] = ev[f]
    alerts: list[Alert] = []
    if status == TicketStatus.dispatched:
        changes.update(dispatched_at=at, accepted_at=None, accept_overdue=False,
                       accept_due_at=due_at(_ts(at), tax.accept_limit_of(cat), tax.working_hours,
                                            clock=cat.clock).isoformat())
    elif status == TicketStatus.accepted:
        changes["accepted_at"] = at
    elif status == TicketStatus.returned:
        changes["accept_due_at"] = None
    elif status == TicketStatus.resolved:
        changes["resolved_at"] = at
    elif status == TicketStatus.closed:
        changes["closed_at"] = at
    elif status == TicketStatus.reopened:
        # 重办: the time limit starts again from the reopening, and the case is no longer overdue.
        changes.update(reopen_count=case["reopen_count"] + 1, overdue=False, resolution_mode=None,
                       satisfaction=None, resolved_at=None, closed_at=None,
                       due_at=due_at(_ts(ev["received_at"]), cat.time_limit, tax.working_hours,
                                     clock=cat.clock).isoformat())
        if ev.get("false_closure"):
            changes["false_closures"] = case.get("false_closures", 0) + 1
    case = _bump(case, **changes)
    if status == TicketStatus.reopened and ev.get("false_closure"):
        alerts.append(alert_rules.false_closure(case, _ts(at)))
    return case, alerts


def add_reporter(state: dict | None, reporter: str, partition: int, tax: Taxonomy) -> tuple[dict, list[dict]]:
    """A duplicate report merged into this case: one more reporter; many reporters raise the tier."""
    state = state or {"p": partition, "hl": -1, "reporters": [], "pending": []}
    case = state.get("case")
    if reporter in state["reporters"] or (case and reporter == case["case_id"]):
        return state, _current(state)  # counted already, or the case's own report delivered twice
    state = {**state, "reporters": [*state["reporters"], reporter]}
    if case is None:
        return state, []
    count = 1 + len(state["reporters"])
    tier = _higher(case["tier"], dispatch_tier(tax.by_label(case["label"]), reporters=count,
                                               hot_spot=case.get("hot_spot", False)))
    case = _bump(case, reporter_count=count, tier=tier)
    return {**state, "case": case}, [case]


def due(case: dict) -> float | None:
    """When the case next needs a look (its 签收 falls due, or its time limit at this level), if it still can. A
    report merged into another case is handled as that case: it falls due on its own only once dispatched."""
    if case["status"] in DONE or case.get("duplicate_of") and case["status"] == TicketStatus.created:
        return None
    times = []
    if case["status"] == TicketStatus.dispatched and case.get("accept_due_at") and not case.get("accept_overdue"):
        times.append(_ts(case["accept_due_at"]).timestamp())
    if case.get("due_at") and not (case["overdue"] and case["tier"] == Tier.city):
        times.append(_ts(case["due_at"]).timestamp())
    return min(times) if times else None


lifecycle_due = due


def check_overdue(state: dict, now: datetime, tax: Taxonomy | None = None) -> tuple[dict, list[dict], list[Alert]]:
    """Not accepted in time: flagged, the department alerted. Past its time limit and not done: up one level
    (超期升级, 四级贯通) with the category's time limit again from the missed due time, and that level's duty
    officer paged; at city level it stays overdue."""
    case = state.get("case")
    if case is None or lifecycle_due(case) is None:
        return state, [], []
    tax = tax or load_taxonomy()
    t = now.timestamp()
    changes: dict = {}
    alerts: list[Alert] = []
    if (case["status"] == TicketStatus.dispatched and case.get("accept_due_at") and not case.get("accept_overdue")
            and _ts(case["accept_due_at"]).timestamp() <= t):
        changes["accept_overdue"] = True
    escalate = case.get("due_at") and _ts(case["due_at"]).timestamp() <= t and not (
        case["overdue"] and case["tier"] == Tier.city)
    if escalate:
        cat = tax.by_label(case["label"])
        level = Tier(case["tier"]).escalated()
        changes.update(overdue=True, tier=level.value, escalations=case.get("escalations", 0) + 1)
        if level != Tier(case["tier"]):
            changes["due_at"] = due_at(_ts(case["due_at"]), cat.time_limit, tax.working_hours,
                                       clock=cat.clock).isoformat()
    if not changes:
        return state, [], []
    new = _bump(case, **changes)
    if changes.get("accept_overdue"):
        alerts.append(alert_rules.accept_overdue(new, _ts(case["accept_due_at"])))
    if escalate:
        alerts.append(alert_rules.overdue_case(new, _ts(case["due_at"])))
    return {**state, "case": new}, [new], alerts
