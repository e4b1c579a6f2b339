-- 考核: per unit (department, district, street, community) and day, the numerator and denominator of every
-- indicator, kept current by a materialized view on case_history (docs/warehouse.md, 考核). A period (day, ISO
-- week, month, rolling 30 days) sums its days here; nothing reads case_history for it.
-- A case counts once per step because each step is counted on the version that makes it, chosen by what only
-- that version carries, and the sink stores each (case_id, version) once (sinks/dedup.py):
--   受理 (received, found_active, recurring): version 1;
--   办结 (resolved …, resolve_seconds): status 'resolved' (a done case is never escalated);
--   重办 (reopened, false_closures): status 'reopened' and not overdue (an escalation of a reopened case is
--   overdue; the reopening itself clears it);
--   回访 (visited, satisfied): status 'return_visit' with a satisfaction.
-- A report merged into another case (duplicate_of) is that case's: it counts nowhere on its own.
-- The day is the step's own (occurred_at). Community = the first 12 digits of the 15-digit grid code.
CREATE TABLE IF NOT EXISTS evaluation_daily
(
    `day` Date,
    `unit_kind` LowCardinality(String),
    `unit` LowCardinality(String),
    `received` UInt64,
    `found_active` UInt64,
    `recurring` UInt64,
    `resolved` UInt64,
    `resolved_on_time` UInt64,
    `resolved_local` UInt64,
    `dispatched_resolved` UInt64,
    `accepted_in_time` UInt64,
    `resolve_seconds` UInt64,
    `reopened` UInt64,
    `false_closures` UInt64,
    `visited` UInt64,
    `satisfied` UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (unit_kind, day, unit)
-- A batch the sink inserts again with its deduplication token (a retry after a lost acknowledgement) is skipped by
-- case_history, but its view still runs: the view's block, token derived from the batch's, is skipped here.
SETTINGS non_replicated_deduplication_window = 1000;

-- Cases stored before this migration, once: only while the table is empty, before its view exists (the sink
-- migrates before it consumes).
INSERT INTO evaluation_daily
SELECT toDate(occurred_at) AS day, u.1 AS unit_kind, u.2 AS unit,
       countIf(version = 1) AS received,
       countIf(version = 1 AND discovered_by IN ('patrol', 'sensor')) AS found_active,
       countIf(version = 1 AND hot_spot) AS recurring,
       countIf(status = 'resolved') AS resolved,
       countIf(status = 'resolved' AND NOT overdue) AS resolved_on_time,
       countIf(status = 'resolved' AND tier IN ('grid', 'community')) AS resolved_local,
       countIf(status = 'resolved' AND dispatched_at IS NOT NULL) AS dispatched_resolved,
       countIf(status = 'resolved' AND dispatched_at IS NOT NULL AND accepted_at IS NOT NULL
               AND NOT accept_overdue) AS accepted_in_time,
       sumIf(toUInt64(greatest(0, ifNull(dateDiff('second', dispatched_at, resolved_at), 0))),
             status = 'resolved' AND dispatched_at IS NOT NULL AND resolved_at IS NOT NULL) AS resolve_seconds,
       countIf(status = 'reopened' AND NOT overdue) AS reopened,
       countIf(status = 'reopened' AND NOT overdue AND false_closures > 0) AS false_closures,
       countIf(status = 'return_visit' AND satisfaction != '') AS visited,
       countIf(status = 'return_visit' AND satisfaction IN ('满意', '基本满意')) AS satisfied
FROM case_history
ARRAY JOIN [('department', toString(department)), ('district', toString(district_code)),
            ('street', toString(street_code)),
            ('community', if(length(grid_code) = 15, substring(toString(grid_code), 1, 12), ''))] AS u
WHERE duplicate_of = '' AND (SELECT count() FROM evaluation_daily) = 0
GROUP BY day, unit_kind, unit;

CREATE MATERIALIZED VIEW IF NOT EXISTS evaluation_daily_mv TO evaluation_daily AS
SELECT toDate(occurred_at) AS day, u.1 AS unit_kind, u.2 AS unit,
       countIf(version = 1) AS received,
       countIf(version = 1 AND discovered_by IN ('patrol', 'sensor')) AS found_active,
       countIf(version = 1 AND hot_spot) AS recurring,
       countIf(status = 'resolved') AS resolved,
       countIf(status = 'resolved' AND NOT overdue) AS resolved_on_time,
       countIf(status = 'resolved' AND tier IN ('grid', 'community')) AS resolved_local,
       countIf(status = 'resolved' AND dispatched_at IS NOT NULL) AS dispatched_resolved,
       countIf(status = 'resolved' AND dispatched_at IS NOT NULL AND accepted_at IS NOT NULL
               AND NOT accept_overdue) AS accepted_in_time,
       sumIf(toUInt64(greatest(0, ifNull(dateDiff('second', dispatched_at, resolved_at), 0))),
             status = 'resolved' AND dispatched_at IS NOT NULL AND resolved_at IS NOT NULL) AS resolve_seconds,
       countIf(status = 'reopened' AND NOT overdue) AS reopened,
       countIf(status = 'reopened' AND NOT overdue AND false_closures > 0) AS false_closures,
       countIf(status = 'return_visit' AND satisfaction != '') AS visited,
       countIf(status = 'return_visit' AND satisfaction IN ('满意', '基本满意')) AS satisfied
FROM case_history
ARRAY JOIN [('department', toString(department)), ('district', toString(district_code)),
            ('street', toString(street_code)),
            ('community', if(length(grid_code) = 15, substring(toString(grid_code), 1, 12), ''))] AS u
WHERE duplicate_of = ''
GROUP BY day, unit_kind, unit;
