"""The end-to-end benchmark's latency run: paced load on a caught-up pipeline, then when each row became
queryable and each alert was delivered."""
from __future__ import annotations

import time

from bench.commit_watcher import Watcher
from bench.e2e_result import Latency
from bench.load import paced
from bench.pipeline import Pipeline, cpu_tree, machine_busy, peak_rss_mb, query
from cityops.models.alerts import AlertRule
from cityops.topics import CASES, SOURCE_TOPICS


def _percentiles(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {}
    xs = sorted(xs)
    pick = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]  # noqa: E731
    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": xs[-1], "n": len(xs)}


def latency_run(pipe: Pipeline, dsn: str, rate: float, seconds: float, seed: int, broker_pid: int | None = None
                ) -> tuple[Latency, dict]:
    """Pipeline already running and caught up: paced load, then read back which rows became queryable when."""
    start_ms = int(time.time() * 1000)
    stalled = ""
    watcher = Watcher(pipe.bootstrap, pipe.sink_group)
    watcher.start()
    pager = Pager.start(pipe)
    try:
        # The machine's cores while sending: a busy machine makes every part wait for a core (latency).
        sent, achieved, cores = paced(pipe.bootstrap, rate, seconds, seed, meter=lambda: {
            **cpu_tree({"worker": pipe.pid("worker-1"), "sink": pipe.pid("sink"), "broker": broker_pid}),
            "machine": machine_busy()})
        generator = cores.pop("bench")
        try:
            pipe.wait_processed(timeout=max(120.0, seconds * 4))
        except TimeoutError as e:   # not keeping up is a result: latencies of what was stored, and this note
            stalled = str(e)
        if pager:
            pager.settle()
    finally:
        watcher.stop()
        if pager:
            pager.stop()
    peaks = {name: peak_rss_mb(pipe.pid(name)) or 0.0 for name in ("worker-1", "sink")}
    pipe.stop("sink")   # the warehouse directory is the sink's: read it once the sink is gone
    since = f"fromUnixTimestamp64Milli({start_ms})"
    rows = query(dsn, {
        "raw": " UNION ALL ".join(
            f"SELECT '{t.name}', kafka_partition, kafka_offset, toUnixTimestamp64Milli(occurred_at) "
            f"FROM {table} WHERE occurred_at >= {since}"
            for t, table in zip(SOURCE_TOPICS, ("raw_tickets", "sensor_events", "raw_app_reports"))),
        # Only the update an event caused: later versions (escalation by the overdue timer, a co-reporter
        # merged in) keep the case's event time and would count hours of case life as latency.
        "cases": "SELECT kafka_partition, kafka_offset, toUnixTimestamp64Milli(occurred_at), "
                 "toUnixTimestamp64Milli(processed_at) FROM case_history FINAL "
                 f"WHERE occurred_at >= {since} AND (case_id, event_id, version) IN "
                 f"(SELECT case_id, event_id, min(version) FROM case_history WHERE occurred_at >= {since} "
                 "GROUP BY case_id, event_id)",
        "alerts": f"SELECT alert_id, toUnixTimestamp64Milli(occurred_at), rule = '{AlertRule.volume_anomaly}' "
                  f"FROM alerts FINAL WHERE raised_at >= {since}",
    })

    def lat(topic, p, o, occurred_ms):
        t = watcher.when(topic, int(p), int(o))
        return None if t is None else t * 1000 - int(occurred_ms)

    raw = [x for r in rows["raw"] if (x := lat(r[0], r[1], r[2], r[3])) is not None]
    cases = [x for r in rows["cases"] if (x := lat(CASES.name, r[0], r[1], r[2])) is not None]
    worker = [int(r[3]) - int(r[2]) for r in rows["cases"]]
    # A volume anomaly's occurred_at is the start of the minute it counts: the count crosses the line somewhere
    # in that minute, so its latency is measured apart from alerts an event raised.
    alerts: list[float] = []
    anomalies: list[float] = []
    if pager:
        occurred = {a: (int(ms), bool(int(anomaly))) for a, ms, anomaly in rows["alerts"]}
        for a, times in pager.receiver.delivered(list(occurred)).items():
            ms, anomaly = occurred[a]
            (anomalies if anomaly else alerts).extend(t * 1000 - ms for t in times[:1])
    return Latency(rate, achieved, sent, _percentiles(raw), _percentiles(cases), _percentiles(worker),
                   _percentiles(alerts) if pager else None, len(alerts) + len(anomalies),
                   samples={"raw": raw, "cases": cases, "alerts": alerts}, stalled=stalled,
                   anomaly_ms=_percentiles(anomalies) if pager else None, generator_cores=generator,
                   cores=cores), peaks


class Pager:
    """`cityops pager` against a local webhook receiver; None when the command does not exist."""

    def __init__(self, pipe: Pipeline, receiver):
        self.pipe, self.receiver = pipe, receiver

    @classmethod
    def start(cls, pipe: Pipeline):
        from bench.webhook import Receiver, pager_argv, pager_env

        argv = pager_argv()
        if argv is None:
            return None
        receiver = Receiver()
        pipe._start("pager", [*argv, "--group", "bench-pager"], {**pipe.env, **pager_env(receiver, pipe.home / "pager")})
        return cls(pipe, receiver)

    def settle(self, quiet_s: float = 3.0) -> None:
        self.receiver.wait_quiet(quiet_s)

    def stop(self) -> None:
        self.pipe.stop("pager")
        self.receiver.close()
