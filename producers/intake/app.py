"""The Open311 GeoReport v2 endpoints under /open311/v2/ (JSON format).

A request is acknowledged (201) only after Kafka acknowledged its AppReport (acks=all). When that takes longer
than the ack timeout the answer is 503 with the request's id, and the report is stored once, under that id, when
Kafka is back (producers/intake/delivery.py). Repeats of a request (the same Idempotency-Key from the same
api_key, or the same fields on the same day) get the first request's id and are not sent again; an
Idempotency-Key reused with other fields is refused (409). Reads show the public view of a request unless the
caller gives a read key (open311.as_open311), with the status of the request's case as the intake follows it on
`cases` (follow.py, casebook.py). Departments report on their cases under /departments/v1/ (departments.py).
Bodies, JSON and request rates are bounded (limits.py).
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from cityops.models import AppReport, ReporterRole
from cityops.pii import mask_text
from cityops.registry import CityRegistry
from cityops.settings import Settings
from cityops.topics import APP_REPORTS, CASE_EVENTS, CASES
from producers.errors import InvalidEvent
from producers.intake.casebook import CaseBook
from producers.intake.delivery import Courier, acknowledged
from producers.intake.departments import department_router
from producers.intake.follow import CaseFollower
from producers.intake.keys import allowed, api_keys, department_keys, read_keys, sign
from producers.intake.limits import RateLimiter, parse_fields, read_body
from producers.intake.open311 import Open311Error, as_open311, error, open_or_closed, receipt, services
from producers.intake.store import TZ, RequestStore
from producers.serde import encode, validate

PREFIX = "/open311/v2"
MAX_DESCRIPTION = 4000
MAX_ADDRESS = 200
MAX_IDEMPOTENCY_KEY = 200
log = logging.getLogger("cityops.intake")


def create_app(settings: Settings, sink, registry: CityRegistry | None = None) -> FastAPI:
    store = RequestStore(settings.data_dir / "intake" / "requests.sqlite")
    book = CaseBook(store, CASES.name)
    courier = Courier(sink, APP_REPORTS, "report_id", store.mark_sent, settings.bootstrap_servers)
    events = Courier(sink, CASE_EVENTS, "event_id", book.mark_sent, settings.bootstrap_servers)
    keys, readers, departments = api_keys(settings), read_keys(settings), department_keys(settings)
    city = registry or CityRegistry.default()
    codes = {s["service_code"]: s for s in services()}
    per_key = RateLimiter(settings.intake_rate_per_key, "for this api_key")
    per_address = RateLimiter(settings.intake_rate_per_address, "from this address")
    retention = timedelta(days=settings.intake_retention_days)
    ack_timeout = settings.intake_ack_timeout_s
    secret = settings.pii_key.encode()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        stop = threading.Event()
        keeper = threading.Thread(target=_housekeeping, args=(store, book, courier, events, retention, ack_timeout,
                                                               stop), name="intake-housekeeping", daemon=True)
        follower = threading.Thread(target=CaseFollower(settings.bootstrap_servers, book, stop).run,
                                    name="intake-cases", daemon=True)
        keeper.start()
        follower.start()
        try:
            yield
        finally:
            stop.set()
            keeper.join(timeout=30)
            follower.join(timeout=30)
            courier.close()
            events.close()
            try:   # sends acknowledged now are marked sent; the others are sent again at the next start
                sink.flush(timeout=10)
            except Exception as e:  # noqa: BLE001 — shutting down either way
                log.warning("Kafka did not acknowledge every request before shutdown: %s", e)
            store.close()

    async def charge_address(request: Request) -> None:
        per_address.charge(request.client.host if request.client else "unknown")

    app = FastAPI(title="cityops Open311 GeoReport v2", docs_url=None, redoc_url=None, lifespan=lifespan,
                  dependencies=[Depends(charge_address)])

    @app.exception_handler(Open311Error)
    async def _open311(_req, e: Open311Error):
        return error(e.code, e.description, e.headers, **e.extra)

    @app.exception_handler(HTTPException)
    async def _http(_req, e: HTTPException):
        return error(e.status_code, str(e.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req, e: RequestValidationError):
        first = e.errors()[0]
        return error(400, f"{'.'.join(str(p) for p in first['loc'][1:])}: {first['msg']}")

    app.include_router(department_router(book, events, departments, per_key, ack_timeout, secret))

    @app.get(PREFIX + "/services.json")
    def list_services():
        return list(codes.values())

    @app.get(PREFIX + "/services/{code}.json")
    def service_definition(code: str):
        if code not in codes:
            raise Open311Error(404, f"service_code {code} not found")
        return {"service_code": code, "attributes": []}

    @app.post(PREFIX + "/requests.json", status_code=201)
    async def post_request(request: Request):
        form = parse_fields(await read_body(request), request.headers.get("content-type", ""))
        api_key = form.get("api_key")
        if not allowed(api_key, keys):
            raise Open311Error(403, "api_key is missing or not valid")
        per_key.charge(api_key)
        header = request.headers.get("idempotency-key")
        if header is not None and not 0 < len(header) <= MAX_IDEMPOTENCY_KEY:
            raise Open311Error(400, f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
        event, fields = _report(form, codes, city)
        sig = sign(secret, json.dumps(sorted(form.items()), ensure_ascii=False))
        # Keyed hashes: the store holds no digest of a phone number that could be tried against every number.
        key = sign(secret, f"key\0{api_key}\0{header}") if header else \
            sign(secret, f"day\0{datetime.now(TZ):%Y%m%d}\0{sig}")
        row, created, event = await anyio.to_thread.run_sync(_register, key, sig, event, fields)
        if row["sent"]:
            return JSONResponse([receipt(row["service_request_id"])], status_code=200)
        return await _delivered(event, created)

    def _register(key: str, sig: str, event: AppReport, fields: dict):
        rid = f"SR{datetime.now(TZ):%Y%m%d}-{key[:12]}"
        try:
            event = event.model_copy(update={"report_id": rid,
                                             "event_id": hashlib.sha256(rid.encode()).hexdigest()[:32]})
            event = validate(APP_REPORTS, json.loads(event.model_dump_json(exclude_none=True)))
            encode(APP_REPORTS, event)   # refuses what the topic would not take
        except InvalidEvent as e:
            raise Open311Error(400, str(e)) from None
        row, created = store.register({**fields, "service_request_id": rid, "idempotency_key": key, "body_sig": sig,
                                       "requested_at": event.occurred_at.isoformat(),
                                       "event": event.model_dump_json(exclude_none=True, exclude={"reporter_phone"})})
        if not created and row["body_sig"] != sig:
            raise Open311Error(409, "this Idempotency-Key was already used for a request with other fields: "
                                    "send a new key for a new request, or the same fields to repeat it")
        if not created and row["event"]:   # resend what was sent first, with the phone the store does not keep
            event = AppReport.model_validate_json(row["event"]).model_copy(
                update={"reporter_phone": event.reporter_phone})
        return row, created, event

    async def _delivered(event: AppReport, first: bool) -> JSONResponse:
        why = await acknowledged(courier, event, first, ack_timeout)
        if why is None:
            return JSONResponse([receipt(event.report_id)], status_code=201)
        return error(503, f"request {event.report_id} is kept but not yet stored: {why}. It will be stored once, "
                          "under this id, when Kafka is back; send the same request again for its receipt",
                     headers={"Retry-After": "10"}, service_request_id=event.report_id)

    def _exact(request: Request, api_key: str | None) -> bool:
        """Whether the caller may see the exact place: a read key (api_key or X-API-Key); none: public view."""
        key = api_key or request.headers.get("x-api-key")
        if not key:
            return False
        if not allowed(key, readers):
            raise Open311Error(403, "api_key is not a read key: leave it out for the public view, or use a key "
                                    "listed in CITYOPS_INTAKE_READ_KEYS")
        per_key.charge(key)
        return True

    @app.get(PREFIX + "/requests.json")
    def get_requests(request: Request, service_request_id: str | None = None, service_code: str | None = None,
                     start_date: str | None = None, end_date: str | None = None, status: str | None = None,
                     api_key: str | None = None):
        exact = _exact(request, api_key)
        ids = [x for x in (service_request_id or "").split(",") if x]
        codes_q = [x for x in (service_code or "").split(",") if x]
        start, end = _w3c(start_date, "start_date"), _w3c(end_date, "end_date")
        if not ids and start is None:   # the spec's default window: the last 90 days
            start = (datetime.now(TZ) - timedelta(days=90)).isoformat()
        wanted = {s.strip() for s in (status or "").split(",") if s.strip()}
        if wanted - {"open", "closed"}:
            raise Open311Error(400, "status must be open, closed or both (comma-separated)")
        rows = store.query(ids, codes_q, start, end)
        cases = book.cases([r["service_request_id"] for r in rows])
        found = [(r, cases.get(r["service_request_id"])) for r in rows]
        return [as_open311(r, codes, exact, case) for r, case in found if not wanted or open_or_closed(case) in wanted]

    @app.get(PREFIX + "/requests/{request_id}.json")
    def get_request(request: Request, request_id: str, api_key: str | None = None):
        exact = _exact(request, api_key)
        rows = store.query([request_id])
        if not rows:
            raise Open311Error(404, f"service_request_id {request_id} not found")
        return [as_open311(rows[0], codes, exact, book.case(request_id))]

    return app


def _housekeeping(store: RequestStore, book: CaseBook, courier: Courier, events: Courier, retention: timedelta,
                  ack_timeout: float, stop: threading.Event) -> None:
    """Forget what is past the retention; send again what is unsent and no request is waiting for."""
    every = min(max(retention.total_seconds() / 4, 0.5), 60.0)
    while True:
        try:
            now = datetime.now(TZ)
            cases = book.forget(now - retention)
            forgotten = store.forget(now - retention)   # last: its checkpoint takes both out of the log
            waited = now - timedelta(seconds=ack_timeout)
            resent = courier.redeliver([(r["service_request_id"], r["event"]) for r in store.pending(before=waited)])
            resent_events = events.redeliver(book.unsent(before=waited))
            if forgotten or resent or cases or resent_events:
                log.info("request store: %d requests and %d cases or events forgotten, %d unsent requests and %d "
                         "unsent events sent again", forgotten, cases, resent, resent_events)
        except Exception:  # noqa: BLE001 — the next round tries again
            log.exception("request store housekeeping failed; trying again in %.0f s", every)
        if stop.wait(every):
            return


def _report(form: dict[str, str], codes: dict, city: CityRegistry) -> tuple[AppReport, dict]:
    code = form.get("service_code", "").strip()
    if not code:
        raise Open311Error(400, "service_code is required")
    if code not in codes:
        raise Open311Error(400, f"service_code {code} not found: see services.json")
    description = form.get("description", "").strip()
    if not description:
        raise Open311Error(400, "description is required")
    if len(description) > MAX_DESCRIPTION:
        raise Open311Error(400, f"description is longer than {MAX_DESCRIPTION} characters")
    address = form.get("address_string", "").strip() or None
    if address and len(address) > MAX_ADDRESS:
        raise Open311Error(400, f"address_string is longer than {MAX_ADDRESS} characters")
    lat = lon = None
    if form.get("lat") or form.get("long"):
        try:
            lat, lon = float(form["lat"]), float(form["long"])
        except (KeyError, ValueError):
            raise Open311Error(400, "lat and long must both be given as numbers") from None
        if not city.in_city(lat, lon):
            raise Open311Error(400, f"lat/long {lat}, {lon} is outside {city.name}")
    if lat is None and not address:
        raise Open311Error(400, "a location is required: lat and long, or address_string")
    media = form.get("media_url") or None
    if media and urlparse(media).scheme not in ("http", "https"):
        raise Open311Error(400, "media_url must be an http(s) URL")
    role = form.get("attribute[reporter_role]", ReporterRole.resident)
    if role not in ReporterRole.__members__.values():
        raise Open311Error(400, f"attribute[reporter_role] must be one of {', '.join(ReporterRole)}")
    grid, _ = city.place(lat, lon, address)
    now = datetime.now(TZ)
    # Open311's first_name, last_name and email go nowhere; the phone travels in the event only, where the
    # streams turn it into a keyed caller hash.
    raw = {"report_id": "SR-pending", "text": description, "photo_url": media, "lat": lat, "lon": lon,
           "address": address, "reporter_role": role, "reporter_phone": form.get("phone") or None,
           "service_code": code, "occurred_at": now, "received_at": now,
           "grid_code": grid.code if grid else None, "district_code": grid.district_code if grid else None}
    try:
        event = AppReport.model_validate({k: v for k, v in raw.items() if v is not None})
    except Exception as e:  # noqa: BLE001 — pydantic's error, one line for the client
        inv = InvalidEvent.of(e) if hasattr(e, "errors") else InvalidEvent("(request)", str(e))
        raise Open311Error(400, str(inv)) from None
    fields = {"service_code": code, "description": mask_text(description), "lat": lat, "lon": lon,
              "address": address, "media_url": media}
    return event, fields


def _w3c(value: str | None, name: str) -> str | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} must be a W3C datetime, e.g. 2026-01-01T00:00:00Z") from None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).astimezone(TZ).isoformat()
