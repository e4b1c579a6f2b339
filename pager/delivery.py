"""One delivery attempt of an alert to a target, and when the next one is due.

A delivery that keeps failing is retried with exponential backoff (`Retry`) until `for_s` after its first
attempt (an hour by default: a robot down for maintenance, a rate limit, a network cut), then given up with
a record saying how long it tried. The attempt count, the first attempt's time and the next one's are kept
in the ledger's queue with each failed attempt's record, so a pager restarted mid-backoff makes the same
delivery's next attempt, numbered on, at its time. The stale rule (`max_age_s`) applies before a first
attempt only: an alert is not dropped part-way through its hour because it has grown old meanwhile."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx

from cityops.models.alerts import Alert, Delivery, DeliveryStatus
from pager import formats
from pager.ledger import Ledger
from pager.targets import Target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retry:
    first_s: float = 1.0         # backoff: first_s, 2×, 4× … capped at max_s
    max_s: float = 300.0
    for_s: float = 3600.0        # retried until this long after the first attempt, then gave_up
    timeout_s: float = 10.0      # per HTTP request

    def after(self, attempt: int, first_at: float, now: float) -> float | None:
        """When to try again after attempt number `attempt` failed at `now` (the first began at `first_at`);
        None: give up. The last attempt is made `for_s` after the first, not up to one backoff later."""
        give_up_at = first_at + self.for_s
        if now >= give_up_at:
            return None
        return min(now + min(self.first_s * 2 ** min(attempt - 1, 64), self.max_s), give_up_at)


class Deliverer:
    def __init__(self, ledger: Ledger, http: httpx.Client, retry: Retry, max_age_s: float,
                 clock: Callable[[], float] = time.time):
        self.ledger, self.http, self.retry, self.max_age_s, self.clock = ledger, http, retry, max_age_s, clock

    def attempt(self, target: Target, alert: Alert) -> float | None:
        """One attempt (or the stale give-up); when the next is due, None once the delivery is finished."""
        try:
            return self._attempt(target, alert)
        except Exception:  # noqa: BLE001 — stays queued in the ledger; the lane goes on with the next alert
            log.exception("alert %s to %s: delivery failed", alert.alert_id, target.shown)
            return None

    def give_up(self, alert: Alert, target: Target | None, why: str, url: str | None = None, *,
                key: str | None = None) -> None:
        self.ledger.record(Delivery(alert_id=alert.alert_id, department=alert.department,
                                    channel=formats.CHANNELS[target.format] if target else "none",
                                    target=target.shown if target else "", attempt=1,
                                    status=DeliveryStatus.gave_up, error=why), url, target=key)

    def _attempt(self, target: Target, alert: Alert) -> float | None:
        progress = self.ledger.progress(alert.alert_id, target.name)
        if progress is None:
            return None   # finished already
        done, first_at, _ = progress
        started = self.clock()
        if not done and (age := started - alert.raised_at.timestamp()) > self.max_age_s:
            self.give_up(alert, target, f"stale: raised {age / 60:.0f} minutes ago, older than the pager's max age",
                         target.name)
            return None
        code, error = self._post(target, formats.body(target.format, alert), started)
        attempt, first_at, now = done + 1, started if first_at is None else first_at, self.clock()
        again = self.retry.after(attempt, first_at, now) if error else None
        status = (DeliveryStatus.delivered if not error else
                  DeliveryStatus.failed if again is not None else DeliveryStatus.gave_up)
        if status == DeliveryStatus.gave_up:
            error = f"gave up after {attempt} attempts in {_span(now - first_at)}: {error}"[:300]
        record = Delivery(alert_id=alert.alert_id, department=alert.department,
                          channel=formats.CHANNELS[target.format], target=target.shown, attempt=attempt,
                          status=status, http_status=code, error=error,
                          attempted_at=datetime.fromtimestamp(started, timezone.utc))
        if again is None:
            self.ledger.record(record, target.name)
        else:
            self.ledger.retry(record, target.name, first_at, again)
        return again

    def _post(self, target: Target, body: dict, now: float) -> tuple[int, str]:
        try:
            r = self.http.post(target.send_url(now), json=body)
        except httpx.HTTPError as e:
            return 0, target.scrub(f"{type(e).__name__}: {e}")[:300]
        if not 200 <= r.status_code < 300:
            return r.status_code, target.scrub(f"HTTP {r.status_code}: {r.text}")[:300]
        try:
            answer = r.json()
        except ValueError:
            answer = None
        return r.status_code, target.scrub(formats.robot_error(target.format, answer))


def _span(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
