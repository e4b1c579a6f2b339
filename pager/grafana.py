"""Grafana's webhook contact points (`${CITYOPS_PAGER_URL}/departments/<slug>`) POST here; each alert in
the notification becomes an `Alert` on the `alerts` topic, so it is delivered, retried and recorded like
the streams' own. The department is the alert's `department` label, else the contact point's name
(`receiver`: one contact point per department). Names and texts are masked (`cityops.pii`) on the way in:
the alert is stored in the warehouse as well as paged."""
from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from pydantic import ValidationError

from cityops.models.alerts import Alert, AlertRule
from cityops.pii import mask_text

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024


def _time(s: str | None) -> datetime:
    try:
        return datetime.fromisoformat((s or "").replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(timezone.utc)


def alerts_of(payload: dict) -> list[Alert]:
    """Alerts of one Grafana webhook notification (firing and resolved). The id is the alert's fingerprint
    and start time, so Grafana's repeats of one firing alert are delivered once."""
    out = []
    for a in payload.get("alerts") or []:
        labels, notes = a.get("labels") or {}, a.get("annotations") or {}
        start = _time(a.get("startsAt"))
        name = mask_text(labels.get("alertname") or payload.get("title") or "Grafana 告警")
        resolved = a.get("status") == "resolved"
        fp = (a.get("fingerprint") or "")[:32]
        severity = labels.get("severity") if labels.get("severity") in ("critical", "warning", "info") else "warning"
        out.append(Alert(
            alert_id=f"grafana:{fp}@{int(start.timestamp())}{':ok' if resolved else ''}", rule=AlertRule.grafana,
            severity="info" if resolved else severity,
            department=labels.get("department") or payload.get("receiver") or "",
            dedup_key=f"grafana:{name}:{fp}"[:160], title=(f"已恢复：{name}" if resolved else name)[:200],
            detail=mask_text(notes.get("summary") or notes.get("description") or "")[:2000],
            district_code=labels.get("district_code", ""), grid_code=labels.get("grid_code", ""),
            subject_id=fp, occurred_at=_time(a.get("endsAt")) if resolved else start))
    return out


def serve(host: str, port: int, publish: Callable[[list[Alert]], None]) -> ThreadingHTTPServer:
    """Start the receiver in a daemon thread. 200 once the alerts are on the topic (acks=all); 400 for a
    body that is not a Grafana notification; 503 when the broker did not take them (Grafana retries)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 — http.server's naming
            if not self.path.startswith("/departments/"):
                return self._answer(404, "POST /departments/<slug>")
            try:
                n = int(self.headers.get("Content-Length") or 0)
                if n > MAX_BODY:
                    return self._answer(413, "notification too large")
                alerts = alerts_of(json.loads(self.rfile.read(n)))
            except (ValueError, TypeError, AttributeError, ValidationError) as e:
                return self._answer(400, mask_text(f"not a Grafana webhook notification: {e}")[:300])
            try:
                publish(alerts)
            except Exception as e:  # noqa: BLE001 — tell Grafana to retry
                log.warning("grafana notification not published: %r", e)
                return self._answer(503, "alerts topic unavailable")
            self._answer(200, f"{len(alerts)} alerts queued")

        def _answer(self, code: int, text: str) -> None:
            data = json.dumps({"status": code, "message": text}, ensure_ascii=False).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt, *args):
            log.info("grafana webhook: " + fmt, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="grafana-webhook", daemon=True).start()
    return server
