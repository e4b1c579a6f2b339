"""`cityops intake serve`: the Open311 GeoReport v2 endpoint for citizen reports (随手拍)."""
from __future__ import annotations

import typer
from rich.console import Console

from cityops.errors import UserError
from cityops.settings import get_settings

out = Console()


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="Open311 GeoReport v2 intake: requests become app.reports events.", no_args_is_help=True)

    @app.command()
    def serve(port: int = typer.Option(8311, help="HTTP port"),
              host: str = typer.Option("127.0.0.1", help="interface to listen on")) -> None:
        """Serve /open311/v2/ (services, requests); POST needs an api_key, GET shows the public view
        unless given a read key; departments report on their cases under /departments/v1/ with their
        keys (docs/intake.md)."""
        import uvicorn
        from kafka.errors import KafkaError
        from pydantic import ValidationError

        from cityops.taxonomy import load_taxonomy
        from producers.intake.app import PREFIX, create_app
        from producers.intake.keys import api_keys, department_keys
        from producers.publisher import Publisher

        try:
            s = get_settings()
        except ValidationError as e:
            first = e.errors()[0]
            raise UserError(f"CITYOPS_{str(first['loc'][0]).upper()}: {first['msg']}") from None
        departments = department_keys(s)   # a bad key file stops the start, before Kafka is asked
        try:
            # A send never expires while the intake runs (producers/intake/delivery.py); send() waits for
            # metadata 5 s at most, so a request's wait stays within its ack timeout.
            sink = Publisher(client_id="cityops-intake", linger_ms=2, delivery_timeout_ms=2**31 - 1, max_block_ms=5000)
        except KafkaError as e:
            raise UserError(f"cannot reach Kafka ({e}): run `cityops stack up` or set CITYOPS_BOOTSTRAP_SERVERS") from None
        if not s.intake_api_keys:
            out.print(f"dev api_key in {s.data_dir / 'intake' / 'dev-api-key'} (set CITYOPS_INTAKE_API_KEYS in production)")
            api_keys(s)
        out.print(f"Open311 GeoReport v2 on http://{host}:{port}{PREFIX}/services.json")
        if departments:
            out.print(f"department endpoint on http://{host}:{port}/departments/v1/ for {', '.join(departments)}")
            unknown = sorted(set(departments) - {c.department for c in load_taxonomy().categories})
            if unknown:   # hotline dispatches may name other departments: matched by name, as written
                out.print(f"note: {', '.join(unknown)} not in the taxonomy; cases are matched by department name")
        else:
            out.print("department endpoint off: set CITYOPS_INTAKE_DEPARTMENT_KEYS to a file of department → key")
        try:
            uvicorn.run(create_app(s, sink), host=host, port=port, log_level="warning")
        finally:
            sink.close()

    root.add_typer(app, name="intake")
