-- The closed loop of every case (受理 → 派单 → 签收 → 办结 → 核查 / 回访 → 结案, 退回, 重办) at five levels
-- (网格, 社区, 街道, 区县, 市), whatever the source: CaseUpdate gained how the case was found, its device and
-- the time of each step; Alert gained the level whose duty officer acts; `case.events` is a new source topic.
-- Cases stored before this migration read '' for discovered_by (it was not recorded then) in every table alike:
-- case_daily cannot give a new sorting-key column a default, so the others take none either.

ALTER TABLE case_current
    ADD COLUMN IF NOT EXISTS `discovered_by` LowCardinality(String) AFTER `caller_hash`,
    ADD COLUMN IF NOT EXISTS `device_id` String AFTER `discovered_by`,
    ADD COLUMN IF NOT EXISTS `dispatched_at` Nullable(DateTime64(3, 'Asia/Shanghai')) AFTER `device_id`,
    ADD COLUMN IF NOT EXISTS `accept_due_at` Nullable(DateTime64(3, 'Asia/Shanghai')) AFTER `dispatched_at`,
    ADD COLUMN IF NOT EXISTS `accepted_at` Nullable(DateTime64(3, 'Asia/Shanghai')) AFTER `accept_due_at`,
    ADD COLUMN IF NOT EXISTS `accept_overdue` Bool AFTER `accepted_at`,
    ADD COLUMN IF NOT EXISTS `resolved_at` Nullable(DateTime64(3, 'Asia/Shanghai')) AFTER `accept_overdue`,
    ADD COLUMN IF NOT EXISTS `closed_at` Nullable(DateTime64(3, 'Asia/Shanghai')) AFTER `resolved_at`,
    ADD COLUMN IF NOT EXISTS `escalations` Int64 AFTER `closed_at`,
    ADD COLUMN IF NOT EXISTS `false_closures` Int64 AFTER `escalations`,
    ADD COLUMN IF NOT EXISTS `note` String AFTER `false_closures`;

ALTER TABLE case_history
    ADD COLUMN IF NOT EXISTS `discovered_by` LowCardinality(String) AFTER `caller_hash`,
    ADD COLUMN IF NOT EXISTS `device_id` String AFTER `discovered_by`,
    ADD COLUMN IF NOT EXISTS `dispatched_at` Nullable(DateTime64(3, 'Asia/Shanghai')) AFTER `device_id`,
    ADD COLUMN IF NOT EXISTS `accept_due_at` Nullable(DateTime64(3, 'Asia/Shanghai')) AFTER `dispatched_at`,
    ADD COLUMN IF NOT EXISTS `accepted_at` Nullable(DateTime64(3, 'Asia/Shanghai')) AFTER `accept_due_at`,
    ADD COLUMN IF NOT EXISTS `accept_overdue` Bool AFTER `accepted_at`,
    ADD COLUMN IF NOT EXISTS `resolved_at` Nullable(DateTime64(3, 'Asia/Shanghai')) AFTER `accept_overdue`,
    ADD COLUMN IF NOT EXISTS `closed_at` Nullable(DateTime64(3, 'Asia/Shanghai')) AFTER `resolved_at`,
    ADD COLUMN IF NOT EXISTS `escalations` Int64 AFTER `closed_at`,
    ADD COLUMN IF NOT EXISTS `false_closures` Int64 AFTER `escalations`,
    ADD COLUMN IF NOT EXISTS `note` String AFTER `false_closures`;

ALTER TABLE alerts ADD COLUMN IF NOT EXISTS `level` String AFTER `department`;

-- Status events of any case as the case-handling systems sent them (12345, 数字城管, departments' apps, the
-- intake's department endpoint, devices); note and photo URL masked. A resent event (same event_id) is stored
-- once by the sink, as for the other raw tables.
CREATE TABLE IF NOT EXISTS raw_case_events
(
    `event_id` String,
    `case_id` String,
    `status` LowCardinality(String),
    `system` String,
    `occurred_at` DateTime64(3, 'Asia/Shanghai'),
    `received_at` DateTime64(3, 'Asia/Shanghai'),
    `department` LowCardinality(String),
    `tier` LowCardinality(String),
    `resolution_mode` LowCardinality(String),
    `satisfaction` LowCardinality(String),
    `false_closure` Bool,
    `note` String,
    `photo_url` String,
    `kafka_partition` UInt16,
    `kafka_offset` UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (occurred_at, case_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- Open cases by source, discovery channel and 签收 deadline. `verified` (核查通过) is done like resolved, return
-- visit and closed; a report merged into another case (duplicate_of) is handled as that case, so it leaves too:
-- otherwise it would wait in `created` for a dispatch that never comes.
ALTER TABLE case_open
    ADD COLUMN IF NOT EXISTS `source` LowCardinality(String) AFTER `status`,
    ADD COLUMN IF NOT EXISTS `discovered_by` LowCardinality(String) AFTER `source`,
    ADD COLUMN IF NOT EXISTS `accept_due_at` Nullable(DateTime64(3, 'Asia/Shanghai')) AFTER `overdue`,
    ADD COLUMN IF NOT EXISTS `accept_overdue` Bool AFTER `accept_due_at`;

DROP VIEW IF EXISTS case_open_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS case_open_mv TO case_open AS
SELECT case_id, toUInt64(version) AS version, status, source, discovered_by, received_at, district_code, street_code,
       label, department, tier, due_at, overdue, accept_due_at, accept_overdue,
       toUInt8(status IN ('resolved', 'verified', 'return_visit', 'closed') OR duplicate_of != '') AS is_deleted
FROM case_history;

-- Every stored case again, with its source: the same version replaces the row the view wrote (the later insert
-- wins), and merged duplicates arrive as deletions.
INSERT INTO case_open (case_id, version, status, source, discovered_by, received_at, district_code, street_code,
                       label, department, tier, due_at, overdue, accept_due_at, accept_overdue, is_deleted)
SELECT case_id, toUInt64(version), status, source, discovered_by, received_at, district_code, street_code, label,
       department, tier, due_at, overdue, accept_due_at, accept_overdue,
       toUInt8(status IN ('resolved', 'verified', 'return_visit', 'closed') OR duplicate_of != '')
FROM case_current FINAL;

-- Case updates per day by discovery channel too (tier, the level, is in the key already). A new sorting-key
-- column may only be added at the end of the key, in the same ALTER, without a default.
ALTER TABLE case_daily
    ADD COLUMN IF NOT EXISTS `discovered_by` LowCardinality(String) AFTER `source`,
    MODIFY ORDER BY (day, status, opened, source, district_code, street_code, label, department, tier,
                     resolution_mode, satisfaction, overdue, discovered_by);

DROP VIEW IF EXISTS case_daily_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS case_daily_mv TO case_daily AS
SELECT toDate(occurred_at) AS day, status, toUInt8(version = 1) AS opened, source, discovered_by, district_code,
       street_code, label, department, tier, resolution_mode, satisfaction, overdue, count() AS updates
FROM case_history
GROUP BY day, status, opened, source, discovered_by, district_code, street_code, label, department, tier,
         resolution_mode, satisfaction, overdue;
