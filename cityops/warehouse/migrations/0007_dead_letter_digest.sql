-- A dead letter keeps a masked excerpt of its message, not the message: the original's size, digest and the
-- encoding it was read in say which message it was (it stays on its source topic for the retention).
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS `payload_size` Int64 AFTER `payload_b64`;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS `payload_sha256` String AFTER `payload_size`;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS `payload_encoding` String AFTER `payload_sha256`;
