"""The closed loop of app reports and device alarms, as the city's systems report it on `case.events`.

The 数字城管 platform (system "szcg", on duty day and night) dispatches each case to its category's department
and level; the department (its app) accepts it (签收), or returns it when the reporter's chosen category sent it
to the wrong one, and resolves it (办结, the 721 method). Departments act on working hours, emergencies on the
clock, a grid worker within the hour and higher levels more slowly; a few percent run past their time limits.
An app case is then checked by a 数字城管 inspector: verified and closed, or now and then reopened. A device case
is checked by its device: the worker verifies and closes it from the readings (docs/streams.md), so the loop on
`case.events` ends at the resolution, unless the device goes on alarming (虚假办结): the worker reopens the
case and the platform dispatches it again.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Protocol

from pydantic import BaseModel

from cityops.models import CaseEvent, ResolutionMode, TicketStatus
from cityops.taxonomy import Category, Taxonomy, Tier
from cityops.topics import CASE_EVENTS, Topic
from producers.simulator.calendar import TZ, Calendar, Clock
from producers.simulator.devices import LABEL_OF_KIND, Conditions, Device, settles

MINUTE = 60.0
PLATFORM, DEPARTMENT = "szcg", "dept-app"
HOLD = 30 * MINUTE           # how long a repaired device must read normal (the streams' verify_hold_s default)
MODE_721 = ((ResolutionMode.service, 0.7), (ResolutionMode.management, 0.2), (ResolutionMode.enforcement, 0.1))
NOTES = {ResolutionMode.service: "已处理完毕", ResolutionMode.management: "已责令整改，纳入日常管理",
         ResolutionMode.enforcement: "已依法查处"}
# Minutes (working, or on the clock for emergencies) a department at each level takes from 签收 to 办结.
TAKES = {Tier.grid: (10, 60), Tier.community: (30, 240), Tier.street: (60, 480), Tier.district: (120, 960),
         Tier.city: (240, 1440)}
# The share of its accept limit a department at each level takes to 签收, at most.
ACCEPTS = {Tier.grid: 0.4, Tier.community: 0.6, Tier.street: 0.7, Tier.district: 0.8, Tier.city: 0.9}
LATE_ACCEPT = 0.03           # 签收 after the accept limit
OVERDUE = 0.03               # resolved after the time limit (besides the cases a return or a late 签收 delays)
REOPEN = 0.04                # the inspector finds the problem still there
FALSE_CLOSURE = 0.05         # a device case "resolved" while the device goes on alarming


class City(Protocol):
    """What the desk uses of the simulator (producers/simulator/engine.py)."""

    rng: random.Random
    taxonomy: Taxonomy

    def schedule(self, t: float, make: Callable[[float], tuple[Topic, BaseModel] | None]) -> None: ...
    def stamp(self, t: float, delay: float) -> tuple[datetime, datetime]: ...
    def new_id(self) -> str: ...
    def weighted(self, pairs): ...
    def hour(self, t: float) -> float: ...
    def sensor(self, t: float, d: Device | None = None) -> tuple[Topic, BaseModel]: ...


@dataclass
class Case:
    case_id: str
    category: Category
    due: float = 0.0
    device: Device | None = None
    alarm: tuple[float, str] | None = None    # the device's reading and code when it alarmed
    reopened: bool = False
    false_closures: int = 0


class CaseDesk:
    """Opens a loop for each app report and device alarm; its events come off the simulator's heap in time order.

    debt: status events of device cases and the reports their devices send when repaired, not yet made up for: the
    simulator leaves out as many spontaneous readings, so device cases do not change its event rate.
    """

    def __init__(self, sim: City, devices: Conditions):
        self.sim = sim
        self.rng = sim.rng
        self.taxonomy = sim.taxonomy
        self.devices = devices
        self.work, self.clock = Calendar.of(self.taxonomy.working_hours), Clock()
        self.debt = 0

    def report(self, t: float, report_id: str, label: str, chosen_code: str | None) -> None:
        cat = self.taxonomy.by_label(label)
        first = self.taxonomy.by_code(chosen_code) if chosen_code else cat
        # The platform goes by the category the reporter chose; a wrong one's department returns the case.
        self._open(t, Case(report_id, cat), first if first.department != cat.department else cat)

    def alarm(self, t: float, case_id: str, d: Device, value: float, code: str) -> None:
        cat = self.taxonomy.by_label(LABEL_OF_KIND[d.kind])
        self._open(t, Case(case_id, cat, device=d, alarm=(value, code)), cat)

    # -- steps ----------------------------------------------------------------------------------------------
    def _open(self, t: float, case: Case, first: Category) -> None:
        cal = self._calendar(case.category)
        case.due = cal.after(t, case.category.time_limit)
        wait = self.rng.uniform(1, 5) if case.category.clock else self.rng.uniform(3, 30)
        self._at(t + wait * MINUTE, case, lambda t: self._dispatch(t, case, first))

    def _dispatch(self, t: float, case: Case, to: Category, note: str | None = None):
        rng, cal = self.rng, self._calendar(to)
        limit = self.taxonomy.accept_limit_of(to)
        if to is not case.category:
            self._at(cal.after(t, limit * rng.uniform(0.1, 0.5)), case, lambda t: self._return(t, case, to))
        elif rng.random() < LATE_ACCEPT:
            self._at(cal.after(t, limit * rng.uniform(1.1, 2.0)), case, lambda t: self._accept(t, case))
        else:   # within the accept limit, and soon enough to leave time for the work before the due time
            took = min(limit * rng.uniform(0.05, ACCEPTS[to.tier]), cal.between(t, case.due) * rng.uniform(0.1, 0.3))
            self._at(cal.after(t, max(took, 1.0)), case, lambda t: self._accept(t, case))
        return self._event(t, case, TicketStatus.dispatched, PLATFORM, department=to.department, tier=to.tier,
                           note=note)

    def _return(self, t: float, case: Case, wrong: Category):
        self._at(t + self.rng.uniform(10, 60) * MINUTE, case,
                 lambda t: self._dispatch(t, case, case.category, note="退回后改派"))
        return self._event(t, case, TicketStatus.returned, DEPARTMENT, department=wrong.department,
                           note="非本部门职责，申请退回")

    def _accept(self, t: float, case: Case):
        rng, cat = self.rng, case.category
        cal = self._calendar(cat)
        if rng.random() < OVERDUE:
            at = cal.after(max(t, case.due), cat.time_limit * rng.uniform(0.1, 1.0))
        else:
            take, room = rng.uniform(*TAKES[cat.tier]), cal.between(t, case.due)
            if take > 0.9 * room:   # the due time is near: the department hurries
                take = room * rng.uniform(0.3, 0.9)
            at = cal.after(t, max(take, 1.0))
        self._at(at, case, lambda t: self._resolve(t, case))
        return self._event(t, case, TicketStatus.accepted, DEPARTMENT, department=cat.department)

    def _resolve(self, t: float, case: Case):
        rng = self.rng
        mode = self.sim.weighted(MODE_721)
        if case.device is not None:
            self._device_check(t, case)
        else:
            self._at(self._calendar(case.category).after(t, rng.uniform(20, 180)), case,
                     lambda t: self._inspect(t, case))
        photo = None
        if rng.random() < 0.7:
            photo = f"https://img.szcg.example/{datetime.fromtimestamp(t, TZ):%Y/%m/%d}/{rng.getrandbits(64):016x}.jpg"
        return self._event(t, case, TicketStatus.resolved, DEPARTMENT, department=case.category.department,
                           resolution_mode=mode, note=NOTES[mode], photo_url=photo)

    def _device_check(self, t: float, case: Case) -> None:
        """The device reports in after the work, and again once the hold time is over."""
        rng, d = self.rng, case.device
        first = t + rng.uniform(1, 10) * MINUTE
        self._at(first, case, lambda t: self.sim.sensor(t, d))
        if not case.false_closures and rng.random() < FALSE_CLOSURE:
            case.false_closures += 1
            self.devices.not_repaired(d, case.case_id, case.alarm)
            case.due = self._calendar(case.category).after(first, case.category.time_limit)   # reopened then
            self._at(first + rng.uniform(10, 40) * MINUTE, case,
                     lambda t: self._dispatch(t, case, case.category, note="设备仍在告警，重新派单"))
            return
        check = t + HOLD + rng.uniform(1, 10) * MINUTE
        self.devices.repaired(d, max(check, t + settles(d, self.sim.hour(t)) * 3600))
        self._at(check, case, lambda t: self.sim.sensor(t, d))

    def _inspect(self, t: float, case: Case):
        rng = self.rng
        if not case.reopened and rng.random() < REOPEN:
            case.reopened = True
            case.due = self._calendar(case.category).after(t, case.category.time_limit)
            self._at(t + rng.uniform(10, 60) * MINUTE, case,
                     lambda t: self._dispatch(t, case, case.category, note="核查未通过，重新派单"))
            return self._event(t, case, TicketStatus.reopened, PLATFORM, note="核查未通过：问题仍在")
        self._at(t + rng.uniform(5, 60) * MINUTE, case, lambda t: self._event(t, case, TicketStatus.closed, PLATFORM))
        return self._event(t, case, TicketStatus.verified, PLATFORM, note="核查通过")

    # -- helpers --------------------------------------------------------------------------------------------
    def _calendar(self, cat: Category) -> Calendar | Clock:
        return self.clock if cat.clock else self.work

    def _at(self, t: float, case: Case, make) -> None:
        if case.device is None:
            self.sim.schedule(t, make)
            return

        def owed(t: float):
            self.debt += 1
            return make(t)
        self.sim.schedule(t, owed)

    def _event(self, t: float, case: Case, status: TicketStatus, system: str, **fields):
        occurred, received = self.sim.stamp(t, self.rng.uniform(1, 30))
        return CASE_EVENTS, CaseEvent(event_id=self.sim.new_id(), case_id=case.case_id, status=status, system=system,
                                      occurred_at=occurred, received_at=received, **fields)
