"""Pure case logic: open a case, fold lifecycle events and reporters into it, mark it overdue.

The state kept per case id: {"case": CaseUpdate as JSON, "p": partition, "hl": last hotline offset applied,
"reporters": merged duplicate case ids, "pending": lifecycle events that arrived before the case opened}.
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
from cityops.taxonomy import Taxonomy, Tier
from streams.alerts import rules as alert_rules
from streams.dispatch import due_at, dispatch_tier

DONE = {TicketStatus.resolved, TicketStatus.return_visit, TicketStatus.closed}
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
    pending, state["pending"] = sorted(state["pending"], key=lambda x: x[0]), []
    if pending:
        state["hl"] = pending[0][0] - 1  # they were only buffered: apply them now
    for offset, ev in pending:
        state, o, a = apply_ticket(state, ev, offset, tax)
        outs += o
        alerts += a
    return state, outs, alerts


def apply_ticket(state: dict | None, ev: dict, offset: int, tax: Taxonomy) -> tuple[dict, list[dict], list[Alert]]:
    """A hotline lifecycle event (dispatched, accepted, resolved, return visit, reopened, closed)."""
    if state is None:
        state = {"p": None, "hl": -1, "reporters": [], "pending": []}
    if offset <= state["hl"]:
        return state, _current(state), []  # applied before a restart
    seen = state.get("seen", [])
    if ev["event_id"] in seen:
        return {**state, "hl": offset}, [], []  # the same event sent twice: it happened once
    state = {**state, "hl": offset}
    case = state.get("case")
    if case is None:
        return {**state, "pending": [*state["pending"], [offset, ev]]}, [], []
    changes: dict = {"status": ev["status"], "event_id": ev["event_id"], "occurred_at": ev["occurred_at"],
                     "received_at": ev["received_at"]}
    for f in ("department", "tier", "resolution_mode", "satisfaction"):
        if ev.get(f):
            changes[f] = ev[f]
    if ev["status"] == TicketStatus.reopened:
        # 重办: the time limit starts again from the reopening, and the case is no longer overdue.
        cat = tax.by_label(case["label"])
        changes.update(reopen_count=case["reopen_count"] + 1, overdue=False, resolution_mode=None,
                       satisfaction=None,
                       due_at=due_at(_ts(ev["received_at"]), cat.time_limit, tax.working_hours,
                                     clock=cat.clock).isoformat())
    case = _bump(case, **changes)
    return {**state, "case": case, "seen": [*seen, ev["event_id"]][-SEEN_EVENTS:]}, [case], []


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


def check_overdue(state: dict, now: datetime) -> tuple[dict, list[dict], list[Alert]]:
    """Past its due time and not done: overdue, escalated one tier (超期升级)."""
    case = state.get("case")
    if (case is None or case["overdue"] or not case.get("due_at") or case["status"] in DONE
            or _ts(case["due_at"]) > now):
        return state, [], []
    case = _bump(case, overdue=True, tier=Tier(case["tier"]).escalated().value)
    return {**state, "case": case}, [case], [alert_rules.overdue_case(case, _ts(case["due_at"]))]
