"""Configuration from CITYOPS_* environment variables (and an optional .env file)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITYOPS_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path(".cityops"), description="broker logs, embedded ClickHouse, pids")
    cache_dir: Path = Field(Path.home() / ".cache" / "cityops", description="downloaded jars")
    bootstrap_servers: str = "127.0.0.1:9092"
    kafka_controller_port: int = 9093
    kafka_heap: str = "768m"
    kafka_brokers: int = Field(1, ge=1, le=9, description="brokers of the Kafka cluster: `cityops stack up` starts "
                               "this many on loopback, and every topic gets min(3, brokers) replicas")
    clickhouse_url: str = Field("", description="chdb:///abs/path (embedded) or http(s)://user:pass@host:8123/db")
    clickhouse_cluster: str = Field("", pattern=r"^[A-Za-z0-9_]*$", description="a ClickHouse cluster's name "
                                    "(remote_servers): migrations create replicated, sharded tables ON CLUSTER")
    clickhouse_reader_url: str = Field("", description="http(s)://reader:pass@host:8123/db, the read-only user "
                                       "`cityops query` connects as; unset: clickhouse_url",
                                       pattern=r"^(https?://.*)?$")
    partitions: int = Field(4, ge=1, description="partitions of every stream topic (Faust needs them equal)")
    worker_port: int = 6066
    pii_key: str = Field("cityops-dev-only-key", description="HMAC key for caller hashes; set in production")
    source_retention_hours: int = Field(72, ge=1, description="how long the source topics keep raw input, "
                                        "personal data in clear (the streams and the sink mask what they keep)")
    registry: Path | None = Field(None, description="directory with grids.geojson + addresses.csv; "
                                  "unset: the generated Zibo city")
    intake_api_keys: str = Field("", description="comma-separated Open311 API keys; unset: a dev key "
                                 "generated into the data dir")
    intake_read_keys: str = Field("", description="comma-separated keys that read requests' exact place "
                                  "(GET with api_key); without one a GET shows the public view")
    intake_retention_days: float = Field(7.0, gt=0, description="days the intake's request store keeps exact "
                                         "places and unsent reports' text; then masked")
    intake_rate_per_key: int = Field(600, ge=1, description="Open311 requests a minute per API key")
    intake_rate_per_address: int = Field(120, ge=1, description="Open311 requests a minute per client address")
    intake_ack_timeout_s: float = Field(10.0, gt=0, le=20, description="seconds a POST waits for Kafka's "
                                        "acknowledgement before answering 503")
    intake_department_keys: Path | None = Field(None, description="YAML or JSON file mapping each department to "
                                                "its key for the department endpoint; unset: the endpoint refuses all")
    classify_rules: Path | None = Field(None, description="complaint classification rules YAML (default: streams/classify/rules.yaml)")
    cockpit_addr: str = Field("127.0.0.1:8000", pattern=r"^[^\s:]+:\d{1,5}$", description="host:port of the "
                              "web cockpit (大屏), served by the process holding the warehouse")
    cockpit_token: str = Field("", description="token every cockpit API request must carry; required to bind "
                               "anything but loopback")

    @field_validator("data_dir", "cache_dir")
    @classmethod
    def _absolute(cls, p: Path) -> Path:
        return p.expanduser().resolve()

    @field_validator("clickhouse_url")
    @classmethod
    def _scheme(cls, url: str) -> str:
        if url and urlparse(url).scheme not in ("chdb", "http", "https"):
            raise ValueError("CITYOPS_CLICKHOUSE_URL must start with chdb://, http:// or https://")
        return url

    @model_validator(mode="after")
    def _every_broker(self) -> "Settings":
        """A cluster's clients know every broker: a single address is completed with port + 2, + 4 …"""
        addresses = self.bootstrap_servers.split(",")
        if len(addresses) < self.kafka_brokers:
            host, _, port = addresses[0].rpartition(":")
            addresses += [f"{host}:{int(port) + 2 * i}" for i in range(len(addresses), self.kafka_brokers)]
            self.bootstrap_servers = ",".join(addresses)
        return self

    @property
    def replication_factor(self) -> int:
        """Copies of every topic: three on a cluster of three brokers or more (one may die, one may be
        restarting), fewer on a smaller one."""
        return min(3, self.kafka_brokers)

    @property
    def warehouse_url(self) -> str:
        return self.clickhouse_url or f"chdb://{self.data_dir / 'clickhouse'}"

    @property
    def embedded_warehouse(self) -> bool:
        return self.warehouse_url.startswith("chdb://")

    @property
    def kafka_host_port(self) -> tuple[str, int]:
        host, _, port = self.bootstrap_servers.split(",")[0].rpartition(":")
        return host or "127.0.0.1", int(port)


@lru_cache
def get_settings() -> Settings:
    return Settings()
