"""Timer bodies that survive their own bugs: an exception escaping an `@app.timer` stops the whole Faust
worker, so each body is wrapped to log the error and try again on the next tick."""
from __future__ import annotations

import functools
import logging
from typing import Awaitable, Callable

log = logging.getLogger(__name__)


def guarded(body: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    @functools.wraps(body)
    async def tick() -> None:
        try:
            await body()
        except Exception:  # noqa: BLE001 — a bug in one tick must not stop every agent
            log.exception("timer %s failed; retrying on its next tick", body.__name__)

    tick.guarded = True  # copied by the wrappers Faust adds (functools.wraps), so tests can check it
    return tick
