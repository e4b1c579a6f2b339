"""The city over simulated time: a discrete-event simulation yielding (Topic, event) pairs.

Spontaneous arrivals (sensor readings, new hotline calls, app reports, grid workers' patrol reports) follow
the hour of day; what they set in motion (a ticket's closed loop, an app or device case's loop on case.events,
other citizens reporting the same incident, a rain episode's water rising) is scheduled on a heap. One seeded
RNG drives everything, so the same seed and start give the same events. Simulated time never passes the wall
clock: an event that would lie in the future is stamped "now" (only a run that outpaces its own start/speed
plan hits this).
"""
from __future__ import annotations

import heapq
import itertools
import math
import random
import time
from bisect import bisect
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterator

from pydantic import BaseModel

from cityops.models import (AppReport, Channel, ReporterRole, ResolutionMode, Satisfaction, SensorEvent, TicketEvent,
                            TicketStatus)
from cityops.registry import CityRegistry, PoiKind, StandardAddress
from cityops.taxonomy import Category, load_taxonomy
from cityops.topics import APP_REPORTS, HOTLINE_TICKETS, SENSOR_EVENTS, Topic
from producers.simulator.calendar import TZ, Calendar
from producers.simulator.cases import MODE_721, CaseDesk
from producers.simulator.devices import (FAULTS_PER_DAY, FREQUENCY, Conditions, Device, barbecue_hours, fleet,
                                         over_limit, reading)
from producers.simulator.texts import compose, compose_short, spoken

# Shares of the events: each source with the loops of its cases (a device case's loop takes readings' places).
MIX = {"sensor": 0.785, "hotline": 0.065, "app": 0.15}
# Hotline events per spontaneous call as the simulation yields them (the closed loop, reopens, escalations,
# co-reporters' own tickets): keeps the hotline near its share of MIX.
EVENTS_PER_TICKET = 12.0
EVENTS_PER_REPORT = 6.2             # an app report and its case's loop (dispatched … closed, returns, reopens)
REPORTS_PER_INCIDENT = 1.35         # app incidents that others report too
PATROL_SHARE = 0.25                 # of app reports: grid workers' patrols (网格员巡查), in their hours only
PATROL_HOURS = ((8.5, 11.5), (14.0, 17.5))   # on working days
NEW_CALLS = MIX["hotline"] / EVENTS_PER_TICKET
NEW_REPORTS = MIX["app"] * (1 - PATROL_SHARE) / (REPORTS_PER_INCIDENT * EVENTS_PER_REPORT)
# Calls per hour of day relative to the daily mean (12345 centres: morning and evening peaks).
CALL_RHYTHM = (0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.5, 1.0, 1.5, 1.8, 1.8, 1.6, 1.2, 1.3, 1.6, 1.7, 1.6, 1.4,
               1.3, 1.4, 1.5, 1.3, 0.8, 0.4)
# Everyday share of each label among calls (the barbecue and rain labels get boosts by hour and weather).
LABEL_WEIGHTS = {"私搭乱建": 4, "暴露垃圾": 6, "垃圾满溢": 5, "道路保洁": 4, "油烟污染": 5, "噪声扰民": 8, "非法小广告": 6,
                 "违规户外广告": 2, "施工扰民": 5, "占道经营": 8, "店外经营": 6, "非机动车乱停放": 5, "露天烧烤": 4,
                 "道路积水": 1, "路面塌陷": 0.5, "井盖缺损": 2, "路灯故障": 4, "道路破损": 4, "绿化损坏": 2, "物业服务": 9,
                 "其他": 6}
BARBECUE_LABELS = {"露天烧烤": 6.0, "油烟污染": 3.0, "噪声扰民": 2.5, "占道经营": 2.0}
SITE_OF_LABEL = {"露天烧烤": PoiKind.market, "油烟污染": PoiKind.market, "占道经营": PoiKind.market,
                 "施工扰民": PoiKind.construction, "物业服务": PoiKind.residential, "道路积水": PoiKind.low_lying}
# What grid workers find on a daytime round (no nights' nuisances, no citizens' own matters).
PATROL_WEIGHTS = {"私搭乱建": 3, "暴露垃圾": 8, "垃圾满溢": 4, "道路保洁": 4, "非法小广告": 8, "违规户外广告": 3, "施工扰民": 2,
                  "占道经营": 8, "店外经营": 8, "非机动车乱停放": 6, "道路积水": 0.5, "井盖缺损": 2, "道路破损": 3, "绿化损坏": 3}
CITIZENS = ((ReporterRole.resident, 0.8), (ReporterRole.merchant_group, 0.11), (ReporterRole.three_heads, 0.09))
MINUTE = 60.0


@dataclass
class Rain:
    start: float
    end: float
    peak_cm: float
    districts: frozenset[str]

    def depth(self, t: float, district: str) -> float:
        """Water over a low-lying road: rises over 40 min, drains over an hour after the rain stops."""
        if district not in self.districts or t < self.start:
            return 0.0
        rise = min(1.0, (t - self.start) / (40 * MINUTE))
        if t <= self.end:
            return self.peak_cm * rise
        return max(0.0, self.peak_cm * rise * (1 - (t - self.end) / (60 * MINUTE)))


@dataclass
class Ticket:
    ticket_id: str
    category: Category
    reopens: int = 0
    overdue: bool = False
    resolved: bool = False
    tier: str = ""


@dataclass(order=True)
class _Due:
    t: float
    seq: int
    make: Callable[[float], tuple[Topic, BaseModel] | None] = field(compare=False)


class Simulator:
    """`Simulator(seed, registry, start=...)` iterates (Topic, event) pairs in simulated-time order.

    density: mean events per simulated second over all sources, the cases' loops included (2.0 ≈ 80 calls to 12345,
        170 app reports and 27 device alarms an hour, over a week).
    start: the simulated clock's start (tz-aware); give it for reproducible runs (default: 24 h ago).
    truth: ticket_id/report_id → the category label the simulator meant (for evaluating the classifier).
    """

    def __init__(self, seed: int = 0, registry: CityRegistry | None = None, start: datetime | None = None,
                 density: float = 2.0):
        if start is not None and start.tzinfo is None:
            raise ValueError("start needs a time zone")
        self.rng = random.Random(seed)
        self.registry = registry or CityRegistry.default()
        self.start = (start or datetime.now(TZ).replace(second=0, microsecond=0) - timedelta(days=1)).astimezone(TZ)
        self.t = self.start.timestamp()
        self.density = density
        self.taxonomy = load_taxonomy()
        self.truth: dict[str, str] = {}
        self._heap: list[_Due] = []
        self._seq = itertools.count()
        rng = self.rng
        self.fleet = fleet(self.registry, rng)
        self._fleet_cum = list(itertools.accumulate(FREQUENCY[d.kind] for d in self.fleet))
        # Faults come by the day whatever the density: a device's chance per reading is its rate over its readings.
        reads_a_day = {k: 86400 * density * MIX["sensor"] * FREQUENCY[k] / self._fleet_cum[-1] for k in FAULTS_PER_DAY}
        self.devices = Conditions(self.fleet, rng, {k: min(1.0, n / reads_a_day[k]) for k, n in FAULTS_PER_DAY.items()})
        self.cases = CaseDesk(self, self.devices)
        self.patrol = Calendar(tuple(range(5)), tuple((a * 3600, b * 3600) for a, b in PATROL_HOURS))
        self._patrols = MIX["app"] * PATROL_SHARE / EVENTS_PER_REPORT / self.patrol.share
        grids = list(self.registry.grids.values())
        self._grids = grids
        # The centre (Zhangdian) draws three times its share of incidents.
        self._grid_cum = list(itertools.accumulate(3.0 if g.district_code == "370303" else 1.0 for g in grids))
        self._addresses: dict[str, list[StandardAddress]] = {}
        for a in self.registry.addresses:
            self._addresses.setdefault(a.grid_code, []).append(a)
        self._sites = {k: self.registry.pois(k) for k in PoiKind}
        # Small ads come back to the same walls (回潮): a few hot spots take most of them.
        self._ad_spots = rng.sample(grids, min(12, len(grids)))
        self.rains: list[Rain] = []
        self._next_rain = self.t + rng.uniform(20, 90) * MINUTE
        self._next_arrival = self.t

    # -- iteration ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[Topic, BaseModel]]:
        while True:
            item = self.step()
            if item is not None:
                yield item

    def take(self, n: int) -> list[tuple[Topic, BaseModel]]:
        return list(itertools.islice(self, n))

    def step(self) -> tuple[Topic, BaseModel] | None:
        """Advance to the next happening; returns its event (None when it produced none)."""
        if self._next_rain <= min(self._next_arrival, self._heap[0].t if self._heap else math.inf):
            self.t = self._next_rain
            self._start_rain()
            return None
        if self._heap and self._heap[0].t <= self._next_arrival:
            due = heapq.heappop(self._heap)
            self.t = due.t
            return due.make(due.t)
        self.t = self._next_arrival
        item = self._arrival()
        self._next_arrival = self.t + self.rng.expovariate(self._rate(self.t))
        return item

    def _rate(self, t: float) -> float:
        rhythm = CALL_RHYTHM[int(self.hour(t))]
        return self.density * (MIX["sensor"] + (NEW_CALLS + NEW_REPORTS) * rhythm
                               + (self._patrols if self.patrol.within(t) else 0.0))

    def _arrival(self) -> tuple[Topic, BaseModel] | None:
        rhythm = CALL_RHYTHM[int(self.hour(self.t))]
        hot, app = NEW_CALLS * rhythm, NEW_REPORTS * rhythm
        patrol = self._patrols if self.patrol.within(self.t) else 0.0
        # A new call or report brings its whole closed loop later: they are rarer than their sources' events.
        x = self.rng.random() * (MIX["sensor"] + hot + app + patrol)
        if x < MIX["sensor"]:
            if self.cases.debt:   # a device case's event took this reading's place
                self.cases.debt -= 1
                return None
            return self.sensor(self.t)
        if x < MIX["sensor"] + hot:
            return self._new_ticket(self.t, *self._incident(self.t))
        if x < MIX["sensor"] + hot + app:
            return self._new_report(self._incident(self.t), self.t)
        return self._new_report(self._incident(self.t, PATROL_WEIGHTS), self.t, False, ReporterRole.grid_worker)

    def schedule(self, t: float, make: Callable[[float], tuple[Topic, BaseModel] | None]) -> None:
        heapq.heappush(self._heap, _Due(t, next(self._seq), make))

    # -- helpers ------------------------------------------------------------------------------
    def hour(self, t: float) -> float:
        return ((t + 8 * 3600) % 86400) / 3600

    def new_id(self) -> str:
        return f"{self.rng.getrandbits(64):016x}"

    def stamp(self, t: float, delay: float) -> tuple[datetime, datetime]:
        now = time.time()
        occurred = min(t, now)
        return datetime.fromtimestamp(occurred, TZ), datetime.fromtimestamp(min(occurred + delay, now), TZ)

    def weighted(self, pairs):
        x, acc = self.rng.random(), 0.0
        for v, w in pairs:
            acc += w
            if x < acc:
                return v
        return pairs[-1][0]

    def rain_depth(self, t: float, district: str) -> float:
        return max((r.depth(t, district) for r in self.rains), default=0.0)

    def raining(self, t: float) -> Rain | None:
        return next((r for r in self.rains if r.start <= t <= r.end), None)

    # -- sensors ------------------------------------------------------------------------------
    def sensor(self, t: float, d: Device | None = None) -> tuple[Topic, BaseModel]:
        """A device's report: a random device's (by its kind's frequency), or `d`'s reporting in after a repair."""
        rng = self.rng
        if d is None:
            d = self.fleet[bisect(self._fleet_cum, rng.random() * self._fleet_cum[-1])]
        h = self.hour(t)
        value = reading(d, h, self.rain_depth(t, d.grid_code[:6]), rng)
        # One alarm per problem; the alarm of a device falsely closed reopens its case rather than opening one.
        value, alert, reopens = self.devices.observe(d, t, h, value, over_limit(d, value, h))
        occurred, received = self.stamp(t, rng.uniform(0.1, 2.0))
        ev = SensorEvent(event_id=self.new_id(), occurred_at=occurred, received_at=received, grid_code=d.grid_code,
                         district_code=d.grid_code[:6], device_id=d.device_id, kind=d.kind,
                         event="alert" if alert else "reading", value=value, alert_code=alert, lat=d.lat, lon=d.lon)
        if alert and reopens is None:
            self.cases.alarm(t, f"S-{ev.event_id}"[:64], d, value, alert)
        return SENSOR_EVENTS, ev

    # -- rain ---------------------------------------------------------------------------------
    def _start_rain(self) -> None:
        rng = self.rng
        start = self.t
        end = start + rng.uniform(40, 150) * MINUTE
        ds = list(self.registry.districts)
        hit = frozenset(["370303", *rng.sample(ds, rng.randint(2, len(ds)))] if "370303" in ds else rng.sample(ds, 2))
        rain = Rain(start, end, rng.uniform(20, 45), hit)
        self.rains.append(rain)   # about two a day: the history stays small
        self._next_rain = end + rng.expovariate(1 / (12 * 3600))
        # The low-lying roads flood and citizens report them: several reporters per flooded spot.
        for a in self._sites[PoiKind.low_lying]:
            if a.district_code in hit and rng.random() < 0.6:
                t0 = start + rng.uniform(25, 70) * MINUTE
                self._incident_cluster(t0, "道路积水", a, rng.randint(2, 6))

    # -- incidents ----------------------------------------------------------------------------
    def _incident(self, t: float, base: dict[str, float] = LABEL_WEIGHTS) -> tuple[str, StandardAddress]:
        rng = self.rng
        h = self.hour(t)
        weights = dict(base)
        if barbecue_hours(h):
            for lab, boost in BARBECUE_LABELS.items():
                weights[lab] = weights.get(lab, 0) * boost
        if self.raining(t):
            weights["道路积水"] = weights.get("道路积水", 0) * 30
        labels = list(weights)
        label = rng.choices(labels, weights=[weights[x] for x in labels])[0]
        site = SITE_OF_LABEL.get(label)
        if site and self._sites[site] and (label != "占道经营" or barbecue_hours(h)) and rng.random() < 0.7:
            return label, rng.choice(self._sites[site])
        if label == "非法小广告" and rng.random() < 0.7:
            g = rng.choice(self._ad_spots)
        else:
            g = self._grids[bisect(self._grid_cum, rng.random() * self._grid_cum[-1])]
        return label, rng.choice(self._addresses[g.code])

    def _incident_cluster(self, t0: float, label: str, a: StandardAddress, n: int) -> None:
        """n citizens report the same thing within half an hour, by phone or app."""
        for i in range(n):
            t = t0 + (0 if i == 0 else self.rng.uniform(1, 30) * MINUTE)
            if self.rng.random() < 0.6:
                self.schedule(t, lambda t, a=a: self._new_ticket(t, label, a, cluster=False))
            else:
                self.schedule(t, lambda t, a=a: self._new_report((label, a), t, cluster=False))

    def _jitter(self, a: StandardAddress, metres: float = 25.0) -> tuple[float, float]:
        d = metres / 111_000
        return (round(a.lat + self.rng.uniform(-d, d), 6),
                round(a.lon + self.rng.uniform(-d, d) / math.cos(math.radians(a.lat)), 6))

    # -- hotline tickets ------------------------------------------------------------------------
    def _new_ticket(self, t: float, label: str, a: StandardAddress, cluster: bool = True) -> tuple[Topic, BaseModel]:
        rng = self.rng
        cat = self.taxonomy.by_label(label)
        day = datetime.fromtimestamp(t, TZ).strftime("%Y%m%d")
        tk = Ticket(f"RX{day}-{rng.getrandbits(40):010x}", cat, tier=cat.tier)
        self.truth[tk.ticket_id] = label
        channel = self.weighted(((Channel.phone, 0.6), (Channel.wechat, 0.2), (Channel.web, 0.1), (Channel.app, 0.1)))
        place = spoken(self.rng, self.registry, a)
        lat = lon = None
        if channel is not Channel.phone:
            lat, lon = self._jitter(a)
        occurred, received = self.stamp(t, rng.uniform(30, 300))
        ev = TicketEvent(
            event_id=self.new_id(), occurred_at=occurred, received_at=received, ticket_id=tk.ticket_id,
            status=TicketStatus.created, caller_phone=f"1{rng.choice('35789')}{rng.randrange(10**8, 10**9)}",
            caller_name=(rng.choice("王李张刘陈杨赵孙周吴") + rng.choice(("先生", "女士", "师傅", "阿姨"))) if rng.random() < 0.4 else None,
            text=compose(rng, label, place), address=place if rng.random() < 0.9 else None,
            lat=lat, lon=lon, channel=channel)
        if ev.address is None and lat is None:   # nothing to place it by: the agent records the place
            ev = ev.model_copy(update={"address": place})
        if cluster and rng.random() < 0.15:
            self._incident_cluster(t + rng.uniform(2, 20) * MINUTE, label, a, rng.randint(1, 3))
        self.schedule(t + rng.uniform(3, 40) * MINUTE, lambda t: self._dispatch(t, tk))
        return HOTLINE_TICKETS, ev

    def _event(self, t: float, tk: Ticket, status: TicketStatus, **fields) -> tuple[Topic, BaseModel]:
        occurred, received = self.stamp(t, self.rng.uniform(1, 30))
        return HOTLINE_TICKETS, TicketEvent(event_id=self.new_id(), occurred_at=occurred, received_at=received,
                                            ticket_id=tk.ticket_id, status=status, **fields)

    def _dispatch(self, t: float, tk: Ticket, escalated: bool = False):
        rng = self.rng
        cat = tk.category
        if escalated:
            if tk.resolved:
                return None
            tk.tier = type(cat.tier)(tk.tier).escalated()
            return self._event(t, tk, TicketStatus.dispatched, department=cat.department, tier=tk.tier,
                               note="超期升级")
        self.schedule(t + rng.uniform(5, 60) * MINUTE, lambda t: self._accept(t, tk))
        return self._event(t, tk, TicketStatus.dispatched, department=cat.department, tier=tk.tier)

    def _accept(self, t: float, tk: Ticket):
        rng = self.rng
        limit = tk.category.time_limit * MINUTE
        tk.overdue = rng.random() < (0.25 if tk.reopens else 0.12)
        took = limit * (rng.uniform(1.1, 3.0) if tk.overdue else rng.uniform(0.15, 0.9))
        took = min(took, 3 * 86400)
        if tk.overdue:
            self.schedule(t + limit, lambda t: self._dispatch(t, tk, escalated=True))
        self.schedule(t + took, lambda t: self._resolve(t, tk))
        return self._event(t, tk, TicketStatus.accepted, department=tk.category.department)

    def _resolve(self, t: float, tk: Ticket):
        rng = self.rng
        tk.resolved = True
        mode = self.weighted(MODE_721)
        if tk.category.label in ("私搭乱建", "露天烧烤") and rng.random() < 0.3:
            mode = ResolutionMode.enforcement
        self.schedule(t + rng.uniform(20, 240) * MINUTE, lambda t: self._visit(t, tk))
        return self._event(t, tk, TicketStatus.resolved, resolution_mode=mode, department=tk.category.department)

    def _visit(self, t: float, tk: Ticket):
        rng = self.rng
        unhappy = 0.2 if tk.overdue else 0.06
        sat = self.weighted(((Satisfaction.unsatisfied, unhappy), (Satisfaction.basically, 0.12),
                             (Satisfaction.satisfied, 1.0)))
        if sat is Satisfaction.unsatisfied and tk.reopens < 2:
            self.schedule(t + rng.uniform(10, 60) * MINUTE, lambda t: self._reopen(t, tk))
        else:
            self.schedule(t + rng.uniform(5, 60) * MINUTE,
                          lambda t: self._event(t, tk, TicketStatus.closed))
        return self._event(t, tk, TicketStatus.return_visit, satisfaction=sat)

    def _reopen(self, t: float, tk: Ticket):
        tk.reopens += 1
        tk.resolved = False
        self.schedule(t + self.rng.uniform(3, 30) * MINUTE, lambda t: self._dispatch(t, tk))
        return self._event(t, tk, TicketStatus.reopened, note="市民不满意，重新办理")

    # -- app reports ----------------------------------------------------------------------------
    def _new_report(self, incident: tuple[str, StandardAddress], t: float, cluster: bool = True,
                    role: ReporterRole | None = None):
        rng = self.rng
        label, a = incident
        role = role or self.weighted(CITIZENS)
        lat, lon = self._jitter(a, 30)
        place = spoken(self.rng, self.registry, a)
        text = compose_short(rng, label, place) if role is not ReporterRole.resident or rng.random() < 0.5 \
            else compose(rng, label, place)
        rid = f"AP{rng.getrandbits(48):012x}"
        self.truth[rid] = label
        code = None
        if rng.random() < 0.6:   # reporters pick a category in the app, not always the right one
            code = (self.taxonomy.by_label(label) if rng.random() < 0.9 else rng.choice(self.taxonomy.categories)).code
        day = datetime.fromtimestamp(min(t, time.time()), TZ)
        occurred, received = self.stamp(t, rng.uniform(1, 20))
        if cluster and rng.random() < 0.2:
            self._incident_cluster(t + rng.uniform(1, 15) * MINUTE, label, a, rng.randint(1, 4))
        self.cases.report(t, rid, label, code)
        return APP_REPORTS, AppReport(
            event_id=self.new_id(), occurred_at=occurred, received_at=received, report_id=rid, text=text,
            photo_url=f"https://img.suishoupai.example/{day:%Y/%m/%d}/{rng.getrandbits(64):016x}.jpg"
            if rng.random() < 0.85 else None,
            lat=lat, lon=lon, address=place if rng.random() < 0.4 else None, reporter_role=role,
            reporter_phone=f"1{rng.choice('35789')}{rng.randrange(10**8, 10**9)}" if rng.random() < 0.3 else None,
            service_code=code)
