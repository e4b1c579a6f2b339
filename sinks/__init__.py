"""The sink stage: Kafka topics → ClickHouse warehouse, in batches, idempotent across crashes."""
