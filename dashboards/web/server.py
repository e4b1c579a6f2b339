"""The web cockpit (智慧驾驶舱大屏): the panels of dashboards/panels.py as JSON, pushed to the browser by server-sent
events, and the page that draws them with the vendored ECharts (static/). Read-only: the only queries are the
panels' own SQL and one case's history, against the warehouse client the caller owns (the process holding an
embedded warehouse passes its own in).

One refresher thread queries every panel once per `refresh_s` for each district a screen is showing, whatever the
number of screens (none: no query at all); a screen gets a snapshot only when it changed."""
from __future__ import annotations

import asyncio
import hmac
import re
import threading
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from cityops.pii import mask_text
from dashboards.macros import ALL, QueryContext, expand
from dashboards.panels import HEADERS, PANELS, PanelDef
from dashboards.units import Units

STATIC = Path(__file__).parent / "static"
SPAN = timedelta(hours=6)        # as the Grafana and terminal cockpits
IDLE_S = 20.0                    # a district no screen asked for this long is no longer refreshed
CASE_ID = r"^[A-Za-z0-9._:@-]{1,64}$"


def _json(value):
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, (date, Decimal)):
        return str(value) if isinstance(value, date) else float(value)
    raise TypeError(type(value).__name__)


def dumps(value) -> bytes:
    return orjson.dumps(value, default=_json, option=orjson.OPT_NON_STR_KEYS)


def describe(p: PanelDef) -> dict:
    return {"key": p.key, "title": p.title, "kind": p.kind.value, "unit": p.unit, "decimals": p.decimals,
            "thresholds": [list(s) for s in p.thresholds], "size": list(p.size), "description": p.description}


class Snapshots:
    """Every panel's rows per district ('' = the whole city), refreshed by one thread."""

    def __init__(self, client, units: Units, refresh_s: float = 1.0):
        self.client, self.units, self.refresh_s = client, units, refresh_s
        self._lock = threading.Condition()
        self._latest: dict[str, tuple[int, bytes]] = {}   # district → (sequence, snapshot JSON)
        self._wanted: dict[str, float] = {}   # district ('' = the city) → when a screen last asked
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cockpit-web", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        if self._thread.is_alive():   # a query still running when the process exits can crash the engine
            self._thread.join(timeout=60)

    def want(self, district: str) -> None:
        with self._lock:
            self._wanted[district] = time.monotonic()
            self._lock.notify_all()

    def latest(self, district: str, after: int = 0, timeout: float = 0) -> tuple[int, bytes] | None:
        """The district's snapshot once its sequence is past `after` (None after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                got = self._latest.get(district)
                if got and got[0] > after:
                    return got
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return None
                self._lock.wait(left)

    async def next(self, district: str, after: int, timeout: float) -> tuple[int, bytes] | None:
        """`latest` for an event loop: waits without holding a thread (a wall of screens is many streams)."""
        loop, changed = asyncio.get_running_loop(), asyncio.Event()
        waiter = (loop, changed)
        with self._lock:
            self._waiters.add(waiter)
        try:
            if got := self.latest(district, after):
                return got
            try:
                await asyncio.wait_for(changed.wait(), timeout)
            except TimeoutError:
                return None
            return self.latest(district, after)
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def snapshot(self, district: str) -> dict:
        ctx = QueryContext.last(SPAN, district=district or ALL, street=ALL)
        panels = {}
        for p in PANELS:
            try:
                r = self.client.query(expand(p.render(self.units), ctx))
                panels[p.key] = {"columns": list(r.column_names), "headers": [HEADERS.get(c, c) for c in r.column_names],
                                "rows": r.result_rows}
            except Exception as e:  # noqa: BLE001 — one broken panel must not blank the wall screen
                panels[p.key] = {"error": str(e).splitlines()[0][:160]}
        return {"district": district, "name": self.units.districts.get(district, "全市"),
                "at": datetime.now(timezone.utc), "panels": panels}

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            with self._lock:
                self._wanted = {d: t for d, t in self._wanted.items() if now - t < IDLE_S}
                districts = list(self._wanted)
            for d in districts:
                body = self.snapshot(d)
                data = dumps({k: v for k, v in body.items() if k != "at"})
                with self._lock:
                    seq, old = self._latest.get(d, (0, b""))
                    if data != old:   # the time of day alone is no change
                        self._latest[d] = (seq + 1, data)
                        self._lock.notify_all()
                        for loop, changed in self._waiters:
                            loop.call_soon_threadsafe(changed.set)
            self._stop.wait(max(0.0, self.refresh_s - (time.monotonic() - now)))


def create_app(client, units: Units, token: str = "", refresh_s: float = 1.0) -> FastAPI:
    """The cockpit's app; with a token, every API request needs it (`Authorization: Bearer …` or `?token=`)."""
    snaps = Snapshots(client, units, refresh_s)
    app = FastAPI(title="cityops 智慧驾驶舱", docs_url=None, redoc_url=None, openapi_url=None,
                  on_startup=[snaps.start], on_shutdown=[snaps.stop])
    app.state.snapshots = snaps

    @app.middleware("http")
    async def read_only(request: Request, call_next):
        if request.method not in ("GET", "HEAD"):
            return JSONResponse({"error": "the cockpit is read-only"}, status_code=405)
        if token and request.url.path.startswith("/api/"):   # the page and vendored files are no secret
            given = request.headers.get("authorization", "").removeprefix("Bearer ") or \
                request.query_params.get("token", "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return JSONResponse({"error": "a token is required: Authorization: Bearer <token> or ?token="},
                                    status_code=401)
        return await call_next(request)

    def district_of(district: str) -> str:
        if district and district not in units.districts:
            raise HTTPException(400, f"unknown district code {district!r}; known: {', '.join(units.districts)}")
        return district

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/api/panels")
    def panels() -> Response:
        return Response(dumps({"panels": [describe(p) for p in PANELS], "districts": units.districts}),
                        media_type="application/json")

    @app.get("/api/snapshot")
    def snapshot(district: str = "") -> Response:
        d = district_of(district)
        snaps.want(d)
        got = snaps.latest(d, timeout=10)
        return Response(got[1] if got else dumps(snaps.snapshot(d)), media_type="application/json")

    @app.get("/api/stream")
    async def stream(request: Request, district: str = "") -> StreamingResponse:
        d = district_of(district)

        async def events():
            seq = 0
            yield b"retry: 2000\n\n"   # the browser reconnects 2 s after the server went away
            while not await request.is_disconnected():
                snaps.want(d)
                got = await snaps.next(d, seq, 5.0)
                if got is None:
                    yield b": keep-alive\n\n"
                    continue
                seq = got[0]
                yield b"event: snapshot\nid: " + str(seq).encode() + b"\ndata: " + got[1] + b"\n\n"

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.get("/api/cases/{case_id}")
    def case(case_id: str) -> Response:
        if not re.match(CASE_ID, case_id):
            raise HTTPException(400, "a case id is letters, digits and ._:@- (at most 64)")
        rows = client.query("SELECT version, status, occurred_at, department, tier, label, street_code, overdue, note "
                            "FROM case_history WHERE case_id = {id:String} ORDER BY version",
                            parameters={"id": case_id}).result_rows
        if not rows:
            raise HTTPException(404, f"no case {case_id}")
        keys = ("version", "status", "occurred_at", "department", "tier", "label", "street", "overdue", "note")
        history = [dict(zip(keys, r)) for r in rows]
        for h in history:   # the warehouse holds notes masked; masked again, whatever a system sent
            h["note"] = mask_text(h["note"] or "")
            h["street"] = units.streets.get(h["street"], h["street"])
        return Response(dumps({"case_id": case_id, "history": history}), media_type="application/json")

    @app.get("/api/query")
    def query(sql: str) -> Response:
        """`cityops query` through the process holding an embedded warehouse: the same read-only policy."""
        from cityops.errors import UserError
        from cityops.warehouse import readonly

        try:
            statement = readonly.checked(readonly.parser(client), sql)
            result = client.query(statement, settings=readonly.guard(client))
        except UserError as e:
            raise HTTPException(400, str(e)) from None
        except Exception as e:  # noqa: BLE001 — ClickHouse's message says what is wrong with the SQL
            raise HTTPException(400, f"query failed: {str(e).strip().splitlines()[0][:400]}") from None
        return Response(dumps({"columns": list(result.column_names), "rows": result.result_rows}),
                        media_type="application/json")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def check_bind(host: str, token: str) -> None:
    """Loopback needs no token; any other interface does (a wall screen's LAN is not the public)."""
    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        raise ValueError(f"the cockpit binds {host} only with a token: set CITYOPS_COCKPIT_TOKEN, or bind 127.0.0.1")


class Served:
    """Uvicorn in a daemon thread of the process holding the warehouse."""

    def __init__(self, app: FastAPI, host: str, port: int):
        import uvicorn

        # Open event streams never end by themselves: a stop closes them after 1 s.
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                                                    timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, name="cockpit-web-server", daemon=True)

    def stop(self) -> None:
        """Closes the connections and waits for the refresher's last query."""
        self.server.should_exit = True
        self.thread.join(timeout=60)


def serve_in_thread(app: FastAPI, host: str, port: int) -> Served:
    served = Served(app, host, port)
    served.thread.start()
    deadline = time.monotonic() + 10
    while not served.server.started and served.thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not served.server.started:
        raise OSError(f"the web cockpit could not listen on {host}:{port} (in use?)")
    return served
