"""Shared fixtures. Integration tests run against a real broker started once per pytest run on free
loopback ports in a temporary directory, so they never touch a running demo."""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest


def pytest_addoption(parser):
    parser.addoption("--reverse", action="store_true",
                     help="run the tests in reverse order: no test may depend on another's data or on the order")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--reverse"):
        items.reverse()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory) -> dict[str, str]:
    """CITYOPS_* variables of this pytest run's own broker and warehouse."""
    data = tmp_path_factory.mktemp("cityops")
    env = {
        "CITYOPS_DATA_DIR": str(data),
        "CITYOPS_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "CITYOPS_KAFKA_CONTROLLER_PORT": str(free_port()),
        "CITYOPS_WORKER_PORT": str(free_port()),
        "CITYOPS_CLICKHOUSE_URL": f"chdb://{data / 'clickhouse'}",
        "CITYOPS_COCKPIT_ADDR": f"127.0.0.1:{free_port()}",
    }
    os.environ.update(env)
    from cityops.settings import get_settings

    get_settings.cache_clear()
    return env


@pytest.fixture(scope="session")
def broker(stack_env):
    """A real Kafka broker (KRaft, single node) with every catalogue topic created."""
    from cityops.settings import get_settings
    from cityops.stack.kafka import Broker

    b = Broker(get_settings())
    b.up()
    yield b
    b.down()


@pytest.fixture
def subprocess_env(stack_env) -> dict[str, str]:
    """Environment for starting cityops processes (worker, sink, producers) under test."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, **stack_env, "PYTHONUNBUFFERED": "1", "PATH": path,
            "PYTHONPATH": str(Path(__file__).parents[1])}
