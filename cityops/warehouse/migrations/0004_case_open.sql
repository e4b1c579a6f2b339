-- Open cases only, for the cockpit's current-state panels and rules (当前超期, 各部门在办案件, 部门超期案件,
-- 紧急案件未派单). case_current keeps every case ever (FINAL there merges a million of them at read time);
-- here every version lands too, a done one (resolved, return visit, closed) as a deletion, and cleanup merges
-- drop a deleted case entirely: FINAL reads the open cases plus the last minute's versions. A reopened case
-- comes back with its next version. Only the columns those queries read.
CREATE TABLE IF NOT EXISTS case_open
(
    `case_id` String,
    `version` UInt64,
    `status` LowCardinality(String),
    `received_at` DateTime64(3, 'Asia/Shanghai'),
    `district_code` LowCardinality(String),
    `street_code` LowCardinality(String),
    `label` LowCardinality(String),
    `department` LowCardinality(String),
    `tier` LowCardinality(String),
    `due_at` Nullable(DateTime64(3, 'Asia/Shanghai')),
    `overdue` Bool,
    `is_deleted` UInt8
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY case_id
-- Parts older than a minute are merged into one with the deleted cases cleaned out (checked on chdb 26:
-- without `on_partition_only` the forced merges keep the deletion rows).
SETTINGS allow_experimental_replacing_merge_with_cleanup = 1,
         enable_replacing_merge_with_cleanup_for_min_age_to_force_merge = 1,
         min_age_to_force_merge_seconds = 60,
         min_age_to_force_merge_on_partition_only = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS case_open_mv TO case_open AS
SELECT case_id, toUInt64(version) AS version, status, received_at, district_code, street_code, label, department,
       tier, due_at, overdue, toUInt8(status IN ('resolved', 'return_visit', 'closed')) AS is_deleted
FROM case_history;

-- Cases already stored when this migration runs.
INSERT INTO case_open
SELECT case_id, toUInt64(version), status, received_at, district_code, street_code, label, department, tier, due_at,
       overdue, toUInt8(status IN ('resolved', 'return_visit', 'closed'))
FROM case_current FINAL;
