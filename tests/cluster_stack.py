"""A three-broker Kafka cluster of a test module's own: free loopback ports, a temporary directory, stopped after."""
from __future__ import annotations

import socket

from tests.conftest import free_port


def free_controller_base(taken: set[int]) -> int:
    """A port c with c, c + 2 and c + 4 free: node i's controller listens on c + 2(i − 1)."""
    for _ in range(200):
        c = free_port()
        ports = [c, c + 2, c + 4]
        if taken.isdisjoint(ports) and all(_free(p) for p in ports):
            return c
    raise RuntimeError("no three free controller ports found")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_env(home, brokers: int = 3) -> dict[str, str]:
    """CITYOPS_* variables of a cluster on free ports in `home` (for the stack and every process beside it)."""
    ports = [free_port() for _ in range(brokers)]
    return {
        "CITYOPS_DATA_DIR": str(home),
        "CITYOPS_BOOTSTRAP_SERVERS": ",".join(f"127.0.0.1:{p}" for p in ports),
        "CITYOPS_KAFKA_CONTROLLER_PORT": str(free_controller_base(set(ports))),
        "CITYOPS_KAFKA_BROKERS": str(brokers),
        "CITYOPS_KAFKA_HEAP": "512m",
        "CITYOPS_WORKER_PORT": str(free_port()),
    }


def settings_of(env: dict[str, str]):
    from cityops.settings import Settings

    return Settings(data_dir=env["CITYOPS_DATA_DIR"], bootstrap_servers=env["CITYOPS_BOOTSTRAP_SERVERS"],
                    kafka_controller_port=int(env["CITYOPS_KAFKA_CONTROLLER_PORT"]),
                    kafka_brokers=int(env["CITYOPS_KAFKA_BROKERS"]), kafka_heap=env["CITYOPS_KAFKA_HEAP"])
