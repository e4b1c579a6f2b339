"""One client for the warehouse named by the DSN: embedded chdb (default) or a ClickHouse server.

An embedded directory can be opened by one process only, so within a process every caller shares one
client per DSN, and calls go through a lock (the demo runs the sink and the live display in threads)."""
from __future__ import annotations

import fcntl
import threading
from pathlib import Path
from urllib.parse import urlparse

from cityops.errors import UserError
from cityops.settings import Settings
from cityops.stack.process import Managed

# Processes that may hold the embedded directory, by pid-file name, with what to do about each.
HOLDERS = {"sink": "stop it (`cityops sink --stop` or `cityops stack down`)",
           "demo": "stop the demo (Ctrl-C in its terminal)"}


class Warehouse:
    """A clickhouse-connect client whose calls are serialised by a lock (safe from several threads)."""

    def __init__(self, client, dsn: str):
        self.client = client
        self.dsn = dsn
        self._lock = threading.RLock()

    def __getattr__(self, name):
        attr = getattr(self.client, name)
        if not callable(attr):
            return attr

        def locked(*args, **kwargs):
            with self._lock:
                return attr(*args, **kwargs)

        return locked

    def another(self) -> "Warehouse":
        """A second client on the same warehouse, with its own handle and lock, for a thread whose calls must
        not wait behind this one's (the sink's lanes insert side by side). Embedded, it shares the engine this
        process opened, so the directory's lock is not probed again (this process holds it)."""
        import clickhouse_connect

        dsn = f"chdb://{_chdb_path(self.dsn)}" if self.embedded else self.dsn
        return Warehouse(clickhouse_connect.get_client(dsn=dsn), self.dsn)

    def close(self) -> None:
        """Release the client (and the embedded directory's lock, so another process may open it)."""
        with _clients_lock, self._lock:
            if _clients.get(self.dsn) is self:
                del _clients[self.dsn]
            self.client.close()

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith("chdb://")


_clients: dict[str, Warehouse] = {}
_clients_lock = threading.Lock()


def connect(settings: Settings) -> Warehouse:
    """The shared client for `settings.warehouse_url`; raises UserError with what to do when it cannot."""
    dsn = settings.warehouse_url
    with _clients_lock:
        if dsn not in _clients:
            _clients[dsn] = Warehouse(_open(dsn, settings), dsn)
        return _clients[dsn]


def _open(dsn: str, settings: Settings):
    import clickhouse_connect

    if dsn.startswith("chdb://"):
        path = _chdb_path(dsn)
        path.mkdir(parents=True, exist_ok=True)
        if _locked_elsewhere(path):
            raise UserError(locked_message(path, settings))
        try:
            return clickhouse_connect.get_client(dsn=f"chdb://{path}")
        except Exception as e:  # noqa: BLE001 — chdb raises plain errors; the lock message is what matters
            if "lock" in str(e).lower() or "already running" in str(e):
                raise UserError(locked_message(path, settings)) from e
            raise UserError(f"cannot open the embedded warehouse {path}: {str(e).splitlines()[0]}") from e
    try:
        return clickhouse_connect.get_client(dsn=dsn)
    except Exception as e:  # noqa: BLE001
        u = urlparse(dsn)
        raise UserError(f"cannot reach ClickHouse at {u.hostname}:{u.port}: {str(e).splitlines()[0][:200]} "
                        "— check CITYOPS_CLICKHOUSE_URL and that the server runs") from e


def _chdb_path(dsn: str) -> Path:
    return Path(urlparse(dsn).path)


def _locked_elsewhere(path: Path) -> bool:
    """ClickHouse holds an flock on <dir>/status while it runs; probe it before chdb (which would print
    its own stack of errors to stderr and raise a message that no longer mentions the lock)."""
    status = path / "status"
    if not status.exists():
        return False
    with open(status, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


def locked_message(path: Path, settings: Settings) -> str:
    for name, todo in HOLDERS.items():
        pid = Managed(name, settings.data_dir / "run").pid()
        if pid:
            return (f"the embedded warehouse {path} is open in the {name} process (pid {pid}); only one process "
                    f"may open it: {todo}, or query through that process, or use a ClickHouse server "
                    f"(CITYOPS_CLICKHOUSE_URL=http://…)")
    return (f"the embedded warehouse {path} is locked by another process (no cityops pid file names it; "
            f"find it with `fuser -v {path}/status` or `lsof +D {path}`): stop it, then retry")
