"""Alert rules: incident opened, emergency case, overdue case, volume far above its baseline."""
