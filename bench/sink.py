"""Sink and warehouse benchmarks (not part of the test suite).

`sink`: the sink's own path — Kafka message bytes → checked columns (fast path, pydantic for the rest) →
mask/hash → insert in batches — into a fresh embedded warehouse with its materialized views attached.
`queries`: the cockpit's main queries over 10 million events generated inside ClickHouse.
"""
from __future__ import annotations

import platform
import statistics
import tempfile
import threading
import time
from datetime import date, datetime, timezone
from pathlib import Path

from dashboards.panels import HOTSPOT_CASES, HOTSPOT_DAYS

DOC_HEAD = "# Benchmarks: sink and warehouse\n\nAppended by `cityops bench sink` / `cityops bench queries`; newest last.\n\n"


def _warehouse(path: Path):
    from cityops.settings import Settings
    from cityops.warehouse import connect, migrate

    wh = connect(Settings(data_dir=path, clickhouse_url=f"chdb://{path / 'clickhouse'}"))
    migrate(wh)
    return wh


def _machine() -> str:
    import os

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def sink(messages: int = 400_000, batch_rows: int = 50_000) -> str:
    """Stages measured apart and together in one run (same load): decoding alone (fast path, and the
    pydantic-only path it replaces on a slice), inserting pre-decoded batches alone, then the whole path
    as the service runs it — the writer thread inserting batch n while two child processes decode the next two."""
    import os

    from bench.samples import make
    from cityops.topics import HOTLINE_TICKETS, SENSOR_EVENTS
    from sinks.batch import Batch
    from sinks.decode import Decoder
    from sinks.decode_pool import DecodePool
    from sinks.dedup import Dedup
    from sinks.flow import DECODE_AHEAD, Flow
    from sinks.store import Store

    # Mix as in the city: mostly sensor readings, some hotline tickets (masked and hashed on the way in).
    now = datetime.now(timezone.utc)
    pool = [("sensor.events", SENSOR_EVENTS.key_of(v), v.to_bytes()) for v in make("sensor.events", "bench01", 8_000, now)]
    pool += [("hotline.tickets", HOTLINE_TICKETS.key_of(v), v.to_bytes()) for v in make("hotline.tickets", "bench01", 2_000, now)]
    batches = []
    for start in range(0, messages, batch_rows):
        batch = Batch()
        for i in range(start, min(start + batch_rows, messages)):
            topic, key, value = pool[i % len(pool)]
            # each message an event of its own: the sink stores a resent event id once (sinks/dedup.py)
            batch.add(topic, i % 4, i, key, value[:13] + b"%08x" % i + value[21:])
        batches.append(batch)
    topics = (HOTLINE_TICKETS, SENSOR_EVENTS)
    decoder, reference = Decoder(topics, "bench-key"), Decoder(topics, "bench-key", fast=False)
    load_before = os.getloadavg()

    t0 = time.perf_counter()
    decoded = [decoder.inserts(b) for b in batches]
    decode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    reference.inserts(batches[0])
    reference_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="cityops-bench-") as tmp:
        wh = _warehouse(Path(tmp))
        store = Store(wh, threading.Event())
        stored = "SELECT (SELECT count() FROM sensor_events) + (SELECT count() FROM raw_tickets)"
        t0 = time.perf_counter()
        for batch, inserts in zip(batches, decoded):
            for ins in inserts:
                store.insert(ins, batch)
        insert_s = time.perf_counter() - t0
        del decoded
        for b in batches:   # the same messages again: other offsets, so nothing is deduplicated
            for m in b.topics.values():
                m.offsets = [o + messages for o in m.offsets]
        # As the service runs it (sinks/flow.py): child processes decode the next batches while the writer
        # inserts one; the dedup memory is the sink's (the offsets moved, the event ids are new to it).
        decoding = DecodePool(tuple(t.name for t in topics), "bench-key", min_rows=1)
        for job in [decoding.submit(b) for b in batches[:DECODE_AHEAD]]:   # starts the children (once per sink)
            decoding.result(job)
        flow = Flow(decoder, decoding, Dedup(capacity=1), store)
        t0 = time.perf_counter()
        for batch in batches:
            while flow.full():
                flow.wait(0.05)
                flow.advance()
                list(flow.done())
            flow.put(batch)
        list(flow.drain())
        whole_s = time.perf_counter() - t0
        flow.close()
        decoding.close()
        total = wh.query(stored).result_rows[0][0]
        wh.close()
    load_after = os.getloadavg()
    assert total == 2 * messages, f"stored {total} of {2 * messages}"
    rate = lambda n, s: f"{n / s:,.0f}"  # noqa: E731
    first = len(batches[0])
    return (f"## sink path, {date.today()} ({_machine()})\n\n"
            f"`cityops bench sink --messages {messages} --batch-rows {batch_rows}`: 80 % sensor events, 20 % hotline "
            "tickets (masked + keyed hash), embedded chdb with the materialized views attached. "
            f"Load average {load_before[0]:.1f} / {load_before[1]:.1f} (1 / 5 min) before, "
            f"{load_after[0]:.1f} / {load_after[1]:.1f} after.\n\n"
            "| stage | messages | seconds | rows/s |\n|---|---:|---:|---:|\n"
            f"| decode, pydantic per message (the path before; now only the fallback) | {first:,} | {reference_s:.2f} | "
            f"{rate(first, reference_s)} |\n"
            f"| decode, fast path: orjson → checked columns → mask/hash | {messages:,} | {decode_s:.2f} | "
            f"{rate(messages, decode_s)} |\n"
            f"| insert alone (JSONColumns → chdb, views attached) | {messages:,} | {insert_s:.2f} | "
            f"{rate(messages, insert_s)} |\n"
            f"| **whole sink path** (n+1 and n+2 decoded in two child processes while n is inserted) | {messages:,} | {whole_s:.2f} | "
            f"**{rate(messages, whole_s)}** |\n")


# Cockpit queries, as the dashboards ask them (FINAL / rollups as docs/warehouse.md prescribes).
QUERIES = {
    "events per minute by source (last hour)":
        "SELECT minute, source, sum(events) FROM events_per_minute WHERE minute >= now() - INTERVAL 1 HOUR "
        "GROUP BY minute, source ORDER BY minute",
    "today's received / dispatched / resolved":
        "SELECT sumIf(updates, opened = 1) AS received, sumIf(updates, status = 'dispatched') AS dispatched, "
        "sumIf(updates, status = 'resolved') AS resolved FROM case_daily WHERE day = today()",
    "overdue open cases now":
        "SELECT count() FROM case_open FINAL WHERE overdue",
    "district ranking (30 days)":
        "SELECT district_code, sum(updates) AS cases FROM case_daily WHERE opened = 1 AND day >= today() - 30 "
        "GROUP BY district_code ORDER BY cases DESC",
    "top labels (30 days)":
        "SELECT label, sum(updates) AS cases FROM case_daily WHERE opened = 1 AND day >= today() - 30 "
        "GROUP BY label ORDER BY cases DESC LIMIT 10",
    "721 ratio by district (this month)":
        "SELECT district_code, resolution_mode, sum(updates) AS n, round(n / sum(n) OVER (PARTITION BY district_code), 3) "
        "FROM case_daily WHERE status = 'resolved' AND day >= toStartOfMonth(today()) "
        "GROUP BY district_code, resolution_mode ORDER BY district_code, resolution_mode",
    "open cases per department and tier":
        "SELECT department, tier, count() FROM case_open FINAL "
        "GROUP BY department, tier ORDER BY department, tier",
    "recurring hot spots (30 days)":
        f"WITH today() - 29 AS since SELECT grid_code, any(street_code), label, {HOTSPOT_DAYS} AS days, "
        f"{HOTSPOT_CASES} AS cases FROM hotspot_monthly WHERE month >= toStartOfMonth(since) "
        "GROUP BY grid_code, label HAVING days >= 3 ORDER BY days DESC, cases DESC LIMIT 20",
}

ROLLUPS = ("case_daily", "events_per_minute", "hotspot_monthly")
LABELS = "['油烟污染','占道经营','非法小广告','暴露垃圾','井盖缺损','噪声扰民','露天烧烤','道路积水','物业服务','其他']"
DEPTS = "['生态环境','城管执法','城管执法','环卫','市政','生态环境','城管执法','水务','物业','12345热线分拨']"
DISTRICTS = "['370302','370303','370304','370305','370306','370321','370322','370323']"


def _generate(wh, events: int) -> dict[str, int]:
    """`events` raw events (40 % tickets, 40 % sensor readings, 20 % app reports) over 60 days, and the case
    history they imply (three versions per ticket/report: created, dispatched, resolved) — all inside ClickHouse."""
    tickets, sensors = events * 2 // 5, events * 2 // 5
    reports = events - tickets - sensors
    # One event per ~0.5 s of the last 60 days, newest now.
    when = "now64(3) - toIntervalMillisecond(intHash32(number) % 5184000000)"
    # INSERT … SELECT maps columns by position: grid_code first, as in the column lists below.
    geo = ("concat(district_code, leftPad(toString(number % 9 + 1), 3, '0'), leftPad(toString(intHash32(number) % 12 + 1), 3, '0'), "
           f"leftPad(toString(number % 17 + 1), 3, '0')) AS grid_code, {DISTRICTS}[number % 8 + 1] AS district_code")
    wh.command(f"""INSERT INTO raw_tickets (event_id, source, schema_version, occurred_at, received_at, grid_code,
        district_code, ticket_id, status, caller_hash, text, channel, kafka_partition, kafka_offset)
        SELECT toString(number), 'hotline', 1, {when} AS t, t, {geo}, concat('T', toString(number)), 'created',
        hex(intHash64(number % 500000)), '楼下烧烤油烟很大', 'phone', number % 4, number FROM numbers({tickets})""",
               settings={"max_insert_threads": 2})
    wh.command(f"""INSERT INTO sensor_events (event_id, source, schema_version, occurred_at, received_at, grid_code,
        district_code, device_id, kind, event, value, lat, lon, kafka_partition, kafka_offset)
        SELECT toString(number), 'sensor', 1, {when} AS t, t, {geo}, concat('D', toString(number % 3000)),
        ['cooking_fume','noise','water_depth','manhole','bin_fill','street_light'][number % 6 + 1], 'reading',
        (intHash32(number) % 1000) / 100, 36.8, 118.05, number % 4, number FROM numbers({sensors})""",
               settings={"max_insert_threads": 2})
    wh.command(f"""INSERT INTO raw_app_reports (event_id, source, schema_version, occurred_at, received_at, grid_code,
        district_code, report_id, text, lat, lon, reporter_role, kafka_partition, kafka_offset)
        SELECT toString(number), 'app', 1, {when} AS t, t, {geo}, concat('R', toString(number)), '路边有人占道经营',
        36.8, 118.0, 'resident', number % 4, number FROM numbers({reports})""", settings={"max_insert_threads": 2})
    cases = tickets + reports
    # Versions 1..3 of each case; a third of the cases stop before being resolved, some overdue.
    wh.command(f"""INSERT INTO case_history (case_id, version, event_id, source, status, occurred_at, received_at,
        processed_at, text, placed, grid_code, district_code, street_code, label, code, department, tier,
        time_limit_minutes, confidence, overdue, reporter_count, resolution_mode, satisfaction,
        kafka_partition, kafka_offset)
        SELECT concat('C', toString(c)) AS case_id, v AS version, toString(number), if(c % 5 = 0, 'app', 'hotline'),
        ['created','dispatched','resolved'][v] AS status,
        now64(3) - toIntervalMillisecond(intHash32(c) % 5184000000) + toIntervalMinute(v * 40) AS t, t, t,
        '楼下烧烤油烟很大', true, {geo.replace('number', 'c')}, substring(grid_code, 1, 9),
        {LABELS}[c % 10 + 1], '0105', {DEPTS}[c % 10 + 1], ['grid','community','street'][c % 3 + 1], 120, 0.9,
        (v < 3 AND c % 7 = 0), 1, if(v = 3, ['服务','服务','服务','服务','服务','服务','服务','管理','管理','执法'][c % 10 + 1], ''),
        '', c % 4, number
        FROM (SELECT number, intDiv(number, 3) AS c, number % 3 + 1 AS v FROM numbers({cases * 3}))
        WHERE NOT (c % 3 = 0 AND v = 3)""", settings={"max_insert_threads": 2})
    # case_current is what the sink writes beside the history: every version; FINAL keeps the newest.
    wh.command("INSERT INTO case_current SELECT * FROM case_history", settings={"max_insert_threads": 2})
    wh.command("OPTIMIZE TABLE case_current FINAL")
    wh.command("OPTIMIZE TABLE case_open FINAL CLEANUP")   # its forced cleanup merge, a minute after a live insert
    return {t: wh.query(f"SELECT count() FROM {t}").result_rows[0][0]
            for t in ("raw_tickets", "sensor_events", "raw_app_reports", "case_history", "case_current")}


def queries(events: int = 10_000_000, repeat: int = 10, path: Path | None = None) -> str:
    with tempfile.TemporaryDirectory(prefix="cityops-bench-") as tmp:
        wh = _warehouse(path or Path(tmp))
        if not wh.query("SELECT count() FROM raw_tickets").result_rows[0][0]:
            t0 = time.perf_counter()
            counts = _generate(wh, events)
            gen_s = time.perf_counter() - t0
        else:
            counts, gen_s = {}, 0.0
        loaded = _timings(wh, repeat)
        # The bulk load is one 16 M-row INSERT … SELECT: the rollups hold a part per block until background
        # merges catch up, which a live sink's small inserts never pile up to. Both states are reported.
        for table in ROLLUPS:
            wh.command(f"OPTIMIZE TABLE {table} FINAL")
        merged = _timings(wh, repeat)
        wh.close()
    table = "\n".join(f"| {n} | {a:.1f} | {b:.1f} | {mx:.1f} | {'✓' if b < 100 else '✗'} |"
                      for (n, a, _), (_, b, mx) in zip(loaded, merged))
    sizes = ", ".join(f"{t} {n:,}" for t, n in counts.items())
    return (f"## cockpit queries, {date.today()} ({_machine()})\n\n"
            f"`cityops bench queries --events {events}`: {events:,} raw events over 60 days generated inside ClickHouse "
            f"(`INSERT … SELECT … FROM numbers()`, {gen_s:.0f} s; {sizes}); median of {repeat} runs after a warm-up, "
            "embedded chdb through clickhouse-connect; right after the bulk load, and once the rollups are merged "
            f"(`OPTIMIZE … FINAL` of {', '.join(ROLLUPS)}).\n\n"
            "| query | median ms, just loaded | median ms, merged | max ms, merged | < 100 ms merged |\n"
            "|---|---:|---:|---:|:-:|\n" + table + "\n")


def _timings(wh, repeat: int) -> list[tuple[str, float, float]]:
    rows = []
    for name, sql in QUERIES.items():
        wh.query(sql)   # warm-up: the first run reads from disk
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            wh.query(sql)
            times.append((time.perf_counter() - t0) * 1000)
        rows.append((name, statistics.median(times), max(times)))
    return rows


def append(path: Path, section: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else DOC_HEAD
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n\n" + section, encoding="utf-8")
