"""`cityops pager`: deliver alerts to departments' WeCom / DingTalk robots and JSON webhooks."""
from __future__ import annotations

import logging
import os
import signal

import typer

from cityops.errors import UserError


def register(root: typer.Typer) -> None:
    @root.command()
    def pager(
        retry_for: float = typer.Option(3600.0, min=0.0, help="seconds a failing delivery is retried after its "
                                        "first attempt, then given up"),
        backoff: float = typer.Option(1.0, min=0.001, help="seconds before the first retry (then doubling)"),
        backoff_max: float = typer.Option(300.0, min=0.001, help="most seconds between two attempts"),
        timeout: float = typer.Option(10.0, min=0.1, help="seconds to wait for a webhook's answer"),
        max_age: float = typer.Option(3600.0, help="alerts raised longer ago than this (s) when their first "
                                      "attempt comes are not paged"),
        host: str = typer.Option("127.0.0.1", envvar="CITYOPS_PAGER_HOST",
                                 help="address of the Grafana webhook receiver"),
        port: int = typer.Option(0, envvar="CITYOPS_PAGER_PORT",
                                 help="port of the Grafana webhook receiver (POST /departments/<slug>); 0: off"),
        group: str = typer.Option("cityops-pager", help="Kafka consumer group"),
    ) -> None:
        """Deliver alerts (topic `alerts`) to the webhooks of CITYOPS_PAGER_WEBHOOKS; record every attempt."""
        from cityops.settings import get_settings
        from cityops.alerting import load_alerting
        from pager.grafana import serve
        from pager.delivery import Retry
        from pager.service import Pager
        from pager.targets import resolve

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("httpx").setLevel(logging.WARNING)   # it logs each request's URL: the robots' keys
        s = get_settings()
        try:
            webhooks = load_alerting().webhooks
        except ValueError as e:
            raise UserError(f"{e} (check CITYOPS_PAGER_WEBHOOKS)") from None
        try:
            webhooks = resolve(webhooks, os.environ)
        except ValueError as e:
            raise UserError(f"{e}: set it, or change the webhook in CITYOPS_PAGER_WEBHOOKS") from None
        p = Pager(s.bootstrap_servers, webhooks, s.data_dir / "pager" / f"{group}.sqlite",
                  Retry(first_s=backoff, max_s=backoff_max, for_s=retry_for, timeout_s=timeout), max_age_s=max_age,
                  group_id=group)
        signal.signal(signal.SIGTERM, lambda *_: p.stop.set())
        signal.signal(signal.SIGINT, lambda *_: p.stop.set())
        server = None
        if port:
            try:
                server = serve(host, port, p.publish)
            except OSError as e:
                raise UserError(f"cannot listen on {host}:{port} for Grafana ({e.strerror}); "
                                "choose another --port / CITYOPS_PAGER_PORT") from None
        hooks = sum(len(v) for v in webhooks.values())
        logging.getLogger("cityops.pager").info(
            "paging %d webhooks of %d departments%s", hooks, len(webhooks),
            f"; Grafana webhooks on http://{host}:{port}/departments/<slug>" if server else "")
        try:
            p.run()
        finally:
            if server:
                server.shutdown()
