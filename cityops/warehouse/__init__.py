"""The ClickHouse warehouse shared by the sink, the dashboards and historians: connection from the DSN,
the model → column mapping, the tables and their migrations."""
from cityops.warehouse.client import Warehouse, connect
from cityops.warehouse.migrate import migrate

__all__ = ["Warehouse", "connect", "migrate"]
