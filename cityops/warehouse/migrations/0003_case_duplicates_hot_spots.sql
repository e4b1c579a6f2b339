-- CaseUpdate gained duplicate_of (the case a duplicate report merged into) and hot_spot (recurring category
-- in its grid).
ALTER TABLE case_current ADD COLUMN IF NOT EXISTS `duplicate_of` String AFTER `caller_hash`;
ALTER TABLE case_current ADD COLUMN IF NOT EXISTS `hot_spot` Bool AFTER `duplicate_of`;
ALTER TABLE case_history ADD COLUMN IF NOT EXISTS `duplicate_of` String AFTER `caller_hash`;
ALTER TABLE case_history ADD COLUMN IF NOT EXISTS `hot_spot` Bool AFTER `duplicate_of`;
