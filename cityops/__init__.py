"""cityops: real-time city operations (城市运行管理) — the shared domain and the `cityops` CLI."""
