"""Kafka message → warehouse rows, or a dead letter saying why not. Never raises for bad input."""
from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from cityops.models.deadletters import DeadLetter
from cityops.topics import Topic
from cityops.warehouse.schema import DEAD_LETTERS, Table, tables_of


@dataclass
class Decoded:
    """Rows for each table the message fills (insert order kept), or one dead-letter row."""

    rows: list[tuple[Table, list]]


class Decoder:
    def __init__(self, topics: tuple[Topic, ...], pii_key: str):
        self.topics = {t.name: t for t in topics}
        self.builders = {t.name: [(tbl, tbl.row_builder(pii_key)) for tbl in tables_of(t.name)] for t in topics}
        self.dead_builder = DEAD_LETTERS.row_builder(pii_key)

    def decode(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None) -> Decoded:
        model = self.topics[topic].value
        try:
            if value is None:
                raise _Reject("empty", "message has no value (tombstone)")
            obj = model.model_validate_json(value)
        except _Reject as e:
            return self.dead(topic, partition, offset, e.reason, e.detail, value, key)
        except ValidationError as e:
            first = e.errors(include_url=False, include_input=False)
            reason = "invalid_json" if first and first[0]["type"] == "json_invalid" else "schema"
            detail = "; ".join(f"{'.'.join(map(str, er['loc'])) or '(message)'}: {er['msg']}" for er in first[:5])
            return self.dead(topic, partition, offset, reason, detail, value, key)
        return Decoded([(tbl, build(obj, topic, partition, offset)) for tbl, build in self.builders[topic]])

    def dead(self, topic: str, partition: int, offset: int, reason: str, detail: str,
             value: bytes | None, key: bytes | None) -> Decoded:
        letter = DeadLetter.of(topic, partition, offset, reason, f"rejected by the sink: {detail}", value, key)
        return Decoded([(DEAD_LETTERS, self.dead_builder(letter, topic, partition, offset))])


class _Reject(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail
