-- Recurring hot spots (问题多发点位) from one row per grid, label and month instead of one per grid, label and
-- day: the cockpit's 30-day panel grouped ~3 million rows over 10 million events (~400 ms with a busy day's
-- parts unmerged). `day_bits` has bit d-1 set when the month's day d had a new case (merged with OR), dNN
-- counts that day's new cases (merged by sum), so one pass over ≤ 2 months per grid and label gives the days
-- and the cases of any 30-day window. A map of day → cases was tried: sumMap over it took ~650 ms.
-- It replaces hotspot_daily: what that table answered, this one answers.
-- Filled from case_history (the source of truth) before its view exists, as the sink migrates before it
-- consumes. Every row is whole once written, so a fill cut short by a crash is finished by running it again:
-- it adds only the rows not there yet.
CREATE TABLE IF NOT EXISTS hotspot_monthly
(
    `month` Date,
    `district_code` LowCardinality(String),
    `street_code` LowCardinality(String),
    `grid_code` LowCardinality(String),
    `label` LowCardinality(String),
    `day_bits` SimpleAggregateFunction(groupBitOr, UInt32),
    `d01` SimpleAggregateFunction(sum, UInt64),
    `d02` SimpleAggregateFunction(sum, UInt64),
    `d03` SimpleAggregateFunction(sum, UInt64),
    `d04` SimpleAggregateFunction(sum, UInt64),
    `d05` SimpleAggregateFunction(sum, UInt64),
    `d06` SimpleAggregateFunction(sum, UInt64),
    `d07` SimpleAggregateFunction(sum, UInt64),
    `d08` SimpleAggregateFunction(sum, UInt64),
    `d09` SimpleAggregateFunction(sum, UInt64),
    `d10` SimpleAggregateFunction(sum, UInt64),
    `d11` SimpleAggregateFunction(sum, UInt64),
    `d12` SimpleAggregateFunction(sum, UInt64),
    `d13` SimpleAggregateFunction(sum, UInt64),
    `d14` SimpleAggregateFunction(sum, UInt64),
    `d15` SimpleAggregateFunction(sum, UInt64),
    `d16` SimpleAggregateFunction(sum, UInt64),
    `d17` SimpleAggregateFunction(sum, UInt64),
    `d18` SimpleAggregateFunction(sum, UInt64),
    `d19` SimpleAggregateFunction(sum, UInt64),
    `d20` SimpleAggregateFunction(sum, UInt64),
    `d21` SimpleAggregateFunction(sum, UInt64),
    `d22` SimpleAggregateFunction(sum, UInt64),
    `d23` SimpleAggregateFunction(sum, UInt64),
    `d24` SimpleAggregateFunction(sum, UInt64),
    `d25` SimpleAggregateFunction(sum, UInt64),
    `d26` SimpleAggregateFunction(sum, UInt64),
    `d27` SimpleAggregateFunction(sum, UInt64),
    `d28` SimpleAggregateFunction(sum, UInt64),
    `d29` SimpleAggregateFunction(sum, UInt64),
    `d30` SimpleAggregateFunction(sum, UInt64),
    `d31` SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(month)
ORDER BY (grid_code, label, month, district_code, street_code);

INSERT INTO hotspot_monthly
SELECT toStartOfMonth(toDate(occurred_at)) AS month, district_code, street_code, grid_code, label,
       groupBitOr(bitShiftLeft(toUInt32(1), toDayOfMonth(occurred_at) - 1)) AS day_bits,
       countIf(toDayOfMonth(occurred_at) = 1) AS d01, countIf(toDayOfMonth(occurred_at) = 2) AS d02, countIf(toDayOfMonth(occurred_at) = 3) AS d03, countIf(toDayOfMonth(occurred_at) = 4) AS d04,
       countIf(toDayOfMonth(occurred_at) = 5) AS d05, countIf(toDayOfMonth(occurred_at) = 6) AS d06, countIf(toDayOfMonth(occurred_at) = 7) AS d07, countIf(toDayOfMonth(occurred_at) = 8) AS d08,
       countIf(toDayOfMonth(occurred_at) = 9) AS d09, countIf(toDayOfMonth(occurred_at) = 10) AS d10, countIf(toDayOfMonth(occurred_at) = 11) AS d11, countIf(toDayOfMonth(occurred_at) = 12) AS d12,
       countIf(toDayOfMonth(occurred_at) = 13) AS d13, countIf(toDayOfMonth(occurred_at) = 14) AS d14, countIf(toDayOfMonth(occurred_at) = 15) AS d15, countIf(toDayOfMonth(occurred_at) = 16) AS d16,
       countIf(toDayOfMonth(occurred_at) = 17) AS d17, countIf(toDayOfMonth(occurred_at) = 18) AS d18, countIf(toDayOfMonth(occurred_at) = 19) AS d19, countIf(toDayOfMonth(occurred_at) = 20) AS d20,
       countIf(toDayOfMonth(occurred_at) = 21) AS d21, countIf(toDayOfMonth(occurred_at) = 22) AS d22, countIf(toDayOfMonth(occurred_at) = 23) AS d23, countIf(toDayOfMonth(occurred_at) = 24) AS d24,
       countIf(toDayOfMonth(occurred_at) = 25) AS d25, countIf(toDayOfMonth(occurred_at) = 26) AS d26, countIf(toDayOfMonth(occurred_at) = 27) AS d27, countIf(toDayOfMonth(occurred_at) = 28) AS d28,
       countIf(toDayOfMonth(occurred_at) = 29) AS d29, countIf(toDayOfMonth(occurred_at) = 30) AS d30, countIf(toDayOfMonth(occurred_at) = 31) AS d31
FROM case_history WHERE version = 1
GROUP BY month, district_code, street_code, grid_code, label
HAVING (grid_code, label, month, district_code, street_code) NOT IN
       (SELECT grid_code, label, month, district_code, street_code FROM hotspot_monthly);

CREATE MATERIALIZED VIEW IF NOT EXISTS hotspot_monthly_mv TO hotspot_monthly AS
SELECT toStartOfMonth(toDate(occurred_at)) AS month, district_code, street_code, grid_code, label,
       groupBitOr(bitShiftLeft(toUInt32(1), toDayOfMonth(occurred_at) - 1)) AS day_bits,
       countIf(toDayOfMonth(occurred_at) = 1) AS d01, countIf(toDayOfMonth(occurred_at) = 2) AS d02, countIf(toDayOfMonth(occurred_at) = 3) AS d03, countIf(toDayOfMonth(occurred_at) = 4) AS d04,
       countIf(toDayOfMonth(occurred_at) = 5) AS d05, countIf(toDayOfMonth(occurred_at) = 6) AS d06, countIf(toDayOfMonth(occurred_at) = 7) AS d07, countIf(toDayOfMonth(occurred_at) = 8) AS d08,
       countIf(toDayOfMonth(occurred_at) = 9) AS d09, countIf(toDayOfMonth(occurred_at) = 10) AS d10, countIf(toDayOfMonth(occurred_at) = 11) AS d11, countIf(toDayOfMonth(occurred_at) = 12) AS d12,
       countIf(toDayOfMonth(occurred_at) = 13) AS d13, countIf(toDayOfMonth(occurred_at) = 14) AS d14, countIf(toDayOfMonth(occurred_at) = 15) AS d15, countIf(toDayOfMonth(occurred_at) = 16) AS d16,
       countIf(toDayOfMonth(occurred_at) = 17) AS d17, countIf(toDayOfMonth(occurred_at) = 18) AS d18, countIf(toDayOfMonth(occurred_at) = 19) AS d19, countIf(toDayOfMonth(occurred_at) = 20) AS d20,
       countIf(toDayOfMonth(occurred_at) = 21) AS d21, countIf(toDayOfMonth(occurred_at) = 22) AS d22, countIf(toDayOfMonth(occurred_at) = 23) AS d23, countIf(toDayOfMonth(occurred_at) = 24) AS d24,
       countIf(toDayOfMonth(occurred_at) = 25) AS d25, countIf(toDayOfMonth(occurred_at) = 26) AS d26, countIf(toDayOfMonth(occurred_at) = 27) AS d27, countIf(toDayOfMonth(occurred_at) = 28) AS d28,
       countIf(toDayOfMonth(occurred_at) = 29) AS d29, countIf(toDayOfMonth(occurred_at) = 30) AS d30, countIf(toDayOfMonth(occurred_at) = 31) AS d31
FROM case_history WHERE version = 1
GROUP BY month, district_code, street_code, grid_code, label;

DROP VIEW IF EXISTS hotspot_daily_mv;

DROP TABLE IF EXISTS hotspot_daily;
