"""The cockpit (智慧驾驶舱) as code: panels defined once (`panels.py`), rendered to Grafana dashboards,
provisioning and alert rules (`grafana.py`, `alerting.py`, `provisioning.py`), to the terminal (`cockpit.py`) and
to the web cockpit (`web/`)."""
