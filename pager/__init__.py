"""The pager: delivers alerts (topic `alerts`) to each department's WeCom / DingTalk robots and plain JSON
webhooks, with retries, and records every attempt (topic `deliveries`). It also takes Grafana's webhook
notifications and turns them into alerts on the same path. A kafka-python process, not a Faust agent."""
