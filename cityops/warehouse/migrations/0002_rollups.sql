-- Rollups for the cockpit, kept current by materialized views on the sink's tables. They sum what arrives:
-- the sink never inserts a row twice (it resumes from the warehouse's own offsets), so sums stay exact.

-- Events per minute by source and district, from the three raw tables.
CREATE TABLE IF NOT EXISTS events_per_minute
(
    `minute` DateTime('Asia/Shanghai'),
    `source` LowCardinality(String),
    `district_code` LowCardinality(String),
    `events` UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, source, district_code);

CREATE MATERIALIZED VIEW IF NOT EXISTS events_per_minute_tickets TO events_per_minute AS
SELECT toStartOfMinute(occurred_at) AS minute, source, district_code, count() AS events
FROM raw_tickets GROUP BY minute, source, district_code;

CREATE MATERIALIZED VIEW IF NOT EXISTS events_per_minute_sensors TO events_per_minute AS
SELECT toStartOfMinute(occurred_at) AS minute, source, district_code, count() AS events
FROM sensor_events GROUP BY minute, source, district_code;

CREATE MATERIALIZED VIEW IF NOT EXISTS events_per_minute_reports TO events_per_minute AS
SELECT toStartOfMinute(occurred_at) AS minute, source, district_code, count() AS events
FROM raw_app_reports GROUP BY minute, source, district_code;

-- Case updates per day by status and every code the cockpit groups by. `opened` = 1 for a case's first
-- version: received cases are `opened = 1`, dispatched/resolved are status rows.
CREATE TABLE IF NOT EXISTS case_daily
(
    `day` Date,
    `status` LowCardinality(String),
    `opened` UInt8,
    `source` LowCardinality(String),
    `district_code` LowCardinality(String),
    `street_code` LowCardinality(String),
    `label` LowCardinality(String),
    `department` LowCardinality(String),
    `tier` LowCardinality(String),
    `resolution_mode` LowCardinality(String),
    `satisfaction` LowCardinality(String),
    `overdue` Bool,
    `updates` UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, status, opened, source, district_code, street_code, label, department, tier,
          resolution_mode, satisfaction, overdue);

CREATE MATERIALIZED VIEW IF NOT EXISTS case_daily_mv TO case_daily AS
SELECT toDate(occurred_at) AS day, status, toUInt8(version = 1) AS opened, source, district_code, street_code,
       label, department, tier, resolution_mode, satisfaction, overdue, count() AS updates
FROM case_history
GROUP BY day, status, opened, source, district_code, street_code, label, department, tier, resolution_mode,
         satisfaction, overdue;

-- New cases per day, grid and label: recurring hot spots (问题多发点位).
CREATE TABLE IF NOT EXISTS hotspot_daily
(
    `day` Date,
    `district_code` LowCardinality(String),
    `street_code` LowCardinality(String),
    `grid_code` LowCardinality(String),
    `label` LowCardinality(String),
    `cases` UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, grid_code, label, district_code, street_code);

CREATE MATERIALIZED VIEW IF NOT EXISTS hotspot_daily_mv TO hotspot_daily AS
SELECT toDate(occurred_at) AS day, district_code, street_code, grid_code, label, count() AS cases
FROM case_history WHERE version = 1
GROUP BY day, district_code, street_code, grid_code, label;

-- Sensor readings per hour, kind and district (烧烤油烟 by hour: kind = 'cooking_fume').
CREATE TABLE IF NOT EXISTS sensor_hourly
(
    `hour` DateTime('Asia/Shanghai'),
    `kind` LowCardinality(String),
    `district_code` LowCardinality(String),
    `readings` SimpleAggregateFunction(sum, UInt64),
    `value_sum` SimpleAggregateFunction(sum, Float64),
    `value_max` SimpleAggregateFunction(max, Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (kind, hour, district_code);

CREATE MATERIALIZED VIEW IF NOT EXISTS sensor_hourly_mv TO sensor_hourly AS
SELECT toStartOfHour(occurred_at) AS hour, kind, district_code, count() AS readings, sum(value) AS value_sum,
       max(value) AS value_max
FROM sensor_events WHERE event = 'reading'
GROUP BY hour, kind, district_code;
