-- hotspot_monthly drops a batch the sink inserts again after a crash, as the other rollups do since 0010. It was
-- left out because the reconciler's top-ups of it were sometimes dropped too: the embedded engine deduplicates
-- inserted rows by their content even with insert_deduplicate = 0, so a top-up equal to an earlier block was
-- taken for it. Each top-up of rows now carries a token of its own (sinks/reconcile.py, tests/test_reconcile.py).
ALTER TABLE hotspot_monthly MODIFY SETTING non_replicated_deduplication_window = 1000;
