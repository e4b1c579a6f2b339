-- Tables the sink fills. Columns mirror the pydantic models (cityops/warehouse/columns.py); a model change
-- needs a new migration, and tests/test_warehouse_schema.py fails until it exists.

-- 12345 ticket lifecycle events as received; caller phone → keyed hash, name dropped, text masked.
CREATE TABLE IF NOT EXISTS raw_tickets
(
    `event_id` String,
    `source` LowCardinality(String),
    `schema_version` Int64,
    `occurred_at` DateTime64(3, 'Asia/Shanghai'),
    `received_at` DateTime64(3, 'Asia/Shanghai'),
    `grid_code` LowCardinality(String),
    `district_code` LowCardinality(String),
    `ticket_id` String,
    `status` LowCardinality(String),
    `caller_hash` String,
    `text` String,
    `address` String,
    `lat` Nullable(Float64),
    `lon` Nullable(Float64),
    `channel` LowCardinality(String),
    `department` LowCardinality(String),
    `tier` LowCardinality(String),
    `resolution_mode` LowCardinality(String),
    `satisfaction` LowCardinality(String),
    `note` String,
    `kafka_partition` UInt16,
    `kafka_offset` UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (occurred_at, ticket_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- IoT readings and device alerts; kept 180 days (incidents keep what matters longer).
CREATE TABLE IF NOT EXISTS sensor_events
(
    `event_id` String,
    `source` LowCardinality(String),
    `schema_version` Int64,
    `occurred_at` DateTime64(3, 'Asia/Shanghai'),
    `received_at` DateTime64(3, 'Asia/Shanghai'),
    `grid_code` LowCardinality(String),
    `district_code` LowCardinality(String),
    `device_id` String,
    `kind` LowCardinality(String),
    `event` LowCardinality(String),
    `value` Float64,
    `alert_code` LowCardinality(String),
    `lat` Float64,
    `lon` Float64,
    `kafka_partition` UInt16,
    `kafka_offset` UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (kind, device_id, occurred_at)
TTL toDateTime(occurred_at) + INTERVAL 180 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- citizen app reports (随手拍) as received; reporter phone → keyed hash, text masked.
CREATE TABLE IF NOT EXISTS raw_app_reports
(
    `event_id` String,
    `source` LowCardinality(String),
    `schema_version` Int64,
    `occurred_at` DateTime64(3, 'Asia/Shanghai'),
    `received_at` DateTime64(3, 'Asia/Shanghai'),
    `grid_code` LowCardinality(String),
    `district_code` LowCardinality(String),
    `report_id` String,
    `text` String,
    `photo_url` String,
    `lat` Nullable(Float64),
    `lon` Nullable(Float64),
    `address` String,
    `reporter_role` LowCardinality(String),
    `reporter_hash` String,
    `service_code` LowCardinality(String),
    `kafka_partition` UInt16,
    `kafka_offset` UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (occurred_at, report_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- newest state per case: read with FINAL (or argMax by version). A case's versions span
-- months, so no time partition: each case must live in one partition for the replacement to work.
CREATE TABLE IF NOT EXISTS case_current
(
    `case_id` String,
    `version` Int64,
    `event_id` String,
    `source` LowCardinality(String),
    `status` LowCardinality(String),
    `occurred_at` DateTime64(3, 'Asia/Shanghai'),
    `received_at` DateTime64(3, 'Asia/Shanghai'),
    `processed_at` DateTime64(3, 'Asia/Shanghai'),
    `text` String,
    `address` String,
    `lat` Nullable(Float64),
    `lon` Nullable(Float64),
    `placed` Bool,
    `grid_code` LowCardinality(String),
    `district_code` LowCardinality(String),
    `street_code` LowCardinality(String),
    `label` LowCardinality(String),
    `code` LowCardinality(String),
    `department` LowCardinality(String),
    `tier` LowCardinality(String),
    `time_limit_minutes` Int64,
    `confidence` Float64,
    `due_at` Nullable(DateTime64(3, 'Asia/Shanghai')),
    `overdue` Bool,
    `reporter_count` Int64,
    `reopen_count` Int64,
    `resolution_mode` LowCardinality(String),
    `satisfaction` LowCardinality(String),
    `caller_hash` String,
    `kafka_partition` UInt16,
    `kafka_offset` UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY case_id
SETTINGS non_replicated_deduplication_window = 1000;

-- every state of every case; the sort key includes (case_id, version) so a replayed update replaces
-- its twin. Exact counts: FINAL.
CREATE TABLE IF NOT EXISTS case_history
(
    `case_id` String,
    `version` Int64,
    `event_id` String,
    `source` LowCardinality(String),
    `status` LowCardinality(String),
    `occurred_at` DateTime64(3, 'Asia/Shanghai'),
    `received_at` DateTime64(3, 'Asia/Shanghai'),
    `processed_at` DateTime64(3, 'Asia/Shanghai'),
    `text` String,
    `address` String,
    `lat` Nullable(Float64),
    `lon` Nullable(Float64),
    `placed` Bool,
    `grid_code` LowCardinality(String),
    `district_code` LowCardinality(String),
    `street_code` LowCardinality(String),
    `label` LowCardinality(String),
    `code` LowCardinality(String),
    `department` LowCardinality(String),
    `tier` LowCardinality(String),
    `time_limit_minutes` Int64,
    `confidence` Float64,
    `due_at` Nullable(DateTime64(3, 'Asia/Shanghai')),
    `overdue` Bool,
    `reporter_count` Int64,
    `reopen_count` Int64,
    `resolution_mode` LowCardinality(String),
    `satisfaction` LowCardinality(String),
    `caller_hash` String,
    `kafka_partition` UInt16,
    `kafka_offset` UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (status, toDate(occurred_at), district_code, case_id, version)
SETTINGS non_replicated_deduplication_window = 1000;

-- sensor incidents, one row per state change; newest version per incident: FINAL.
CREATE TABLE IF NOT EXISTS incidents
(
    `incident_id` String,
    `version` Int64,
    `device_id` String,
    `kind` LowCardinality(String),
    `state` LowCardinality(String),
    `opened_at` DateTime64(3, 'Asia/Shanghai'),
    `closed_at` Nullable(DateTime64(3, 'Asia/Shanghai')),
    `peak_value` Float64,
    `limit` Float64,
    `unit` LowCardinality(String),
    `lat` Float64,
    `lon` Float64,
    `grid_code` LowCardinality(String),
    `district_code` LowCardinality(String),
    `street_code` LowCardinality(String),
    `label` LowCardinality(String),
    `department` LowCardinality(String),
    `updated_at` DateTime64(3, 'Asia/Shanghai'),
    `kafka_partition` UInt16,
    `kafka_offset` UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(opened_at)
ORDER BY (kind, incident_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- per-minute counts from the streams; a re-emitted window replaces the earlier one (FINAL).
CREATE TABLE IF NOT EXISTS minute_counts
(
    `minute` DateTime64(3, 'Asia/Shanghai'),
    `district_code` LowCardinality(String),
    `street_code` LowCardinality(String),
    `source` LowCardinality(String),
    `label` LowCardinality(String),
    `count` Int64,
    `emitted_at` DateTime64(3, 'Asia/Shanghai'),
    `kafka_partition` UInt16,
    `kafka_offset` UInt64
)
ENGINE = ReplacingMergeTree(emitted_at)
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, source, district_code, street_code, label)
SETTINGS non_replicated_deduplication_window = 1000;

-- alerts raised for departments; alert_id is the dedup key.
CREATE TABLE IF NOT EXISTS alerts
(
    `alert_id` String,
    `rule` LowCardinality(String),
    `severity` LowCardinality(String),
    `department` LowCardinality(String),
    `dedup_key` String,
    `title` String,
    `detail` String,
    `district_code` LowCardinality(String),
    `grid_code` LowCardinality(String),
    `subject_id` String,
    `occurred_at` DateTime64(3, 'Asia/Shanghai'),
    `raised_at` DateTime64(3, 'Asia/Shanghai'),
    `kafka_partition` UInt16,
    `kafka_offset` UInt64
)
ENGINE = ReplacingMergeTree(raised_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY alert_id
SETTINGS non_replicated_deduplication_window = 1000;

-- every delivery attempt of an alert.
CREATE TABLE IF NOT EXISTS deliveries
(
    `alert_id` String,
    `department` LowCardinality(String),
    `channel` LowCardinality(String),
    `target` String,
    `attempt` Int64,
    `status` LowCardinality(String),
    `http_status` Int64,
    `error` String,
    `attempted_at` DateTime64(3, 'Asia/Shanghai'),
    `kafka_partition` UInt16,
    `kafka_offset` UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(attempted_at)
ORDER BY (alert_id, attempt, status)
SETTINGS non_replicated_deduplication_window = 1000;

-- rejected input (by the streams or by this sink), masked; the original bytes stay on the deadletters topic.
CREATE TABLE IF NOT EXISTS dead_letters
(
    `topic` LowCardinality(String),
    `partition` Int64,
    `offset` Int64,
    `reason` LowCardinality(String),
    `detail` String,
    `payload_b64` String,
    `key_b64` String,
    `failed_at` DateTime64(3, 'Asia/Shanghai'),
    `kafka_topic` LowCardinality(String),
    `kafka_partition` UInt16,
    `kafka_offset` UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(failed_at)
ORDER BY (topic, `partition`, `offset`, reason)
SETTINGS non_replicated_deduplication_window = 1000;
