"""Key-value state over a Faust table, with the changelog partition given explicitly.

Faust sends a table write to the changelog partition of the *current* event. A fetched batch mixes
partitions, and timers have no current event, so the agents name the partition themselves: the source
partition the key belongs to (co-partitioning is kept by construction: every key is only ever written for
one partition). Values are JSON (orjson) bytes; `DictKV` is the same interface for unit tests.

Writes reach the changelog once per key per offset commit, not once per put: a minute window or a case is
rewritten every batch, and each put sent would fill the broker with changelog. Each `TableKV` remembers the keys
written since; every offset commit writes their latest values first (streams/checkpoint.py), so the changelog
is never behind the committed offsets.
"""
from __future__ import annotations

from typing import Iterator, Protocol

import orjson


class KV(Protocol):
    def get(self, key: str) -> dict | None: ...

    def put(self, partition: int, key: str, value: dict) -> None: ...

    def delete(self, partition: int, key: str) -> None: ...

    def items(self) -> Iterator[tuple[str, dict]]: ...


class DictKV:
    def __init__(self):
        self.data: dict[str, dict] = {}
        self.partitions: dict[str, int] = {}

    def get(self, key: str) -> dict | None:
        v = self.data.get(key)
        return orjson.loads(orjson.dumps(v)) if v is not None else None  # a copy, like a real store

    def put(self, partition: int, key: str, value: dict) -> None:
        self.data[key] = orjson.loads(orjson.dumps(value))
        self.partitions[key] = partition

    def delete(self, partition: int, key: str) -> None:
        self.data.pop(key, None)

    def items(self) -> Iterator[tuple[str, dict]]:
        for k, v in list(self.data.items()):
            yield k, v


class TableKV:
    """A Faust table (key and value raw bytes) used through `KV`.

    With `cache`, decoded values are kept against the exact bytes object stored (a value replaced by changelog
    recovery is decoded afresh): for tables read far more often than their size, such as the devices'. A
    table of long-lived, rarely read values keeps only the bytes: decoded, each value is a few objects the
    cyclic collector walks on every full collection for as long as it lives (cases live up to 90 days;
    docs/streams.md). Callers may mutate what `get` returns only to `put` it back.
    """

    def __init__(self, table, cache: bool = True):
        self.table = table
        self.cache = cache
        self._decoded: dict[bytes, tuple[bytes, dict]] = {}
        self._unwritten: dict[bytes, tuple[int, bool]] = {}   # key → (partition, deleted) since the last write
        table.app.checkpoint.track(self)

    def write_changelog(self) -> None:
        """The latest value (or the deletion) of every key changed since the last call, into the producer's
        buffer. A key that is gone from the store without our delete was dropped by Faust's recovery (its
        partition moved away): it is not ours to delete in the changelog."""
        if not self._unwritten:
            return
        unwritten, self._unwritten = self._unwritten, {}
        put, store = self.table.app.producer.buffer.put_changelog, self._store
        topic = self.table.changelog_topic.get_topic_name()
        for k, (partition, deleted) in unwritten.items():
            if deleted:
                put(topic, partition, k, None)
            elif (v := store.get(k)) is not None:
                put(topic, partition, k, v)

    @property
    def _store(self) -> dict[bytes, bytes]:
        """The in-memory store's own dict: the Mapping methods of Faust's store raise and catch an exception
        per missing key, and most devices have no state."""
        return self.table.data.data

    def _load(self, k: bytes, raw: bytes) -> dict:
        if not self.cache:
            return orjson.loads(raw)
        hit = self._decoded.get(k)
        if hit is not None and hit[0] is raw:
            return hit[1]
        value = orjson.loads(raw)
        self._decoded[k] = (raw, value)
        return value

    def get(self, key: str) -> dict | None:
        k = key.encode()
        raw = self._store.get(k)
        return self._load(k, raw) if raw is not None else None

    def put(self, partition: int, key: str, value: dict) -> None:
        # An exact-size copy: orjson's output keeps its whole buffer (powers of two), and a value lives for days.
        k, v = key.encode(), bytes(memoryview(orjson.dumps(value)))
        self._store[k] = v
        if self.cache:
            self._decoded[k] = (v, value)
        self._unwritten[k] = (partition, False)

    def delete(self, partition: int, key: str) -> None:
        k = key.encode()
        self._store.pop(k, None)
        self._decoded.pop(k, None)
        self._unwritten[k] = (partition, True)

    def items(self) -> Iterator[tuple[str, dict]]:
        for k, v in list(self._store.items()):
            yield k.decode(), self._load(k, v)
