"""The cockpit (智慧驾驶舱) as code: panels defined once (`panels.py`), rendered to Grafana dashboards,
provisioning and alert rules (`grafana.py`, `alerting.py`, `provisioning.py`) and to the terminal (`cockpit.py`)."""
