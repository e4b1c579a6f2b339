"""Simulated cockpit data for the dashboard and cockpit tests."""
from __future__ import annotations

import clickhouse_connect

from cityops.warehouse.migrate import migrate
from dashboards import simdata


def sim_database(name: str, events: int):
    """A database of its own inside this pytest run's embedded warehouse: chdb opens one data path per process,
    and simulated rows must not land in the tables other tests count."""
    from cityops.settings import get_settings
    from cityops.warehouse import connect

    shared = connect(get_settings())
    shared.command(f"DROP DATABASE IF EXISTS {name}")
    shared.command(f"CREATE DATABASE {name}")
    client = clickhouse_connect.get_client(dsn=get_settings().warehouse_url, database=name)
    migrate(client)
    if events:
        counts = simdata.fill(client, simdata.Mix.of(events, days=30), simdata.registry_grids(get_settings()))
        assert all(counts.values()), counts
    return client
