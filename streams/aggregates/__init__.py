"""Per-minute event-time counts by district, street, source and label (exact under replay)."""
