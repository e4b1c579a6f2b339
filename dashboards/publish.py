"""Upserts the cockpit into a running Grafana through its HTTP API (grafana-client): folder, datasource,
dashboards, alert rules, contact points and the notification policy. Running it twice changes nothing the
second time: everything is addressed by a fixed uid and written with overwrite semantics."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlparse

from dashboards import alerting, grafana, provisioning
from dashboards.units import Units


class PublishError(Exception):
    """One line saying what went wrong and what to do."""


@dataclass
class Report:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


def _api(url: str, token: str | None, timeout: float):
    from grafana_client import GrafanaApi
    from grafana_client.client import TokenAuth

    u = urlparse(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise PublishError(f"--url must be http(s)://host[:port], got {url!r}")
    return GrafanaApi.from_url(url, credential=TokenAuth(token) if token else None, timeout=timeout)


def _missing(e: Exception) -> bool:
    from grafana_client.client import GrafanaClientError

    return isinstance(e, GrafanaClientError) and e.status_code == 404


def _explain(e: Exception, url: str) -> PublishError:
    import niquests
    from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaTimeoutError, \
        GrafanaUnauthorizedError

    host = urlparse(url).netloc
    if isinstance(e, niquests.exceptions.ConnectionError | niquests.exceptions.Timeout | GrafanaTimeoutError):
        return PublishError(f"Grafana at {host} is unreachable ({type(e).__name__}): is it running and is --url right?")
    if isinstance(e, GrafanaUnauthorizedError):
        return PublishError(f"Grafana at {host} refused the credentials (401): set GRAFANA_TOKEN to a service "
                            "account token with the Admin role, or put user:password in --url")
    if isinstance(e, GrafanaClientError | GrafanaException):
        return PublishError(f"Grafana at {host} refused the request ({getattr(e, 'status_code', '?')}): "
                            f"{str(getattr(e, 'message', e)).splitlines()[0][:200]}")
    return PublishError(f"publishing to {host} failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}")


def publish(url: str, units: Units, token: str | None = None, target=provisioning.Target(),
            timeout: float = 10, env: dict[str, str] | None = None) -> Report:
    api = _api(url, token if token is not None else os.environ.get("GRAFANA_TOKEN"), timeout)
    try:
        return _upsert(api, units, target, env)
    except PublishError:
        raise
    except Exception as e:  # noqa: BLE001 — every failure becomes one actionable line
        raise _explain(e, url) from e


def _upsert(api, units: Units, target, env) -> Report:
    report = Report()
    _ensure(report, f"folder {alerting.FOLDER_UID}", lambda: api.folder.get_folder(alerting.FOLDER_UID), lambda: None,
            lambda: api.folder.create_folder(alerting.FOLDER_TITLE, uid=alerting.FOLDER_UID))

    ds = provisioning.datasource(target)["datasources"][0]
    ds = ds | {"access": "proxy", "secureJsonData": {"password": os.environ.get("CLICKHOUSE_READER_PASSWORD", "")}}
    _ensure(report, f"datasource {ds['uid']}", lambda: api.datasource.get_datasource_by_uid(ds["uid"]),
            lambda: api.datasource.update_datasource_by_uid(ds["uid"], ds), lambda: api.datasource.create_datasource(ds))

    for uid, dash in grafana.dashboards(units).items():
        api.dashboard.update_dashboard({"dashboard": dash | {"id": None}, "folderUid": alerting.FOLDER_UID,
                                        "overwrite": True, "message": "cityops dashboards publish"})
        report.updated.append(f"dashboard {uid}")

    existing = {cp.get("uid") for cp in api.alertingprovisioning.get_contactpoints()}
    for cp in alerting.contact_points(env):
        for receiver in cp["receivers"]:
            body = {"name": cp["name"], **receiver, "settings": _env_expanded(receiver["settings"])}
            if receiver["uid"] in existing:
                api.alertingprovisioning.update_contactpoint(receiver["uid"], body)
                report.updated.append(f"contact point {receiver['uid']}")
            else:
                api.alertingprovisioning.create_contactpoint(body)
                report.created.append(f"contact point {receiver['uid']}")
    api.alertingprovisioning.set_notification_policy_tree(alerting.policy_tree())
    report.updated.append("notification policy")

    for rule in alerting.RULES:
        body = alerting.api_rule(rule)
        _ensure(report, f"alert rule {rule.uid}", lambda: api.alertingprovisioning.get_alertrule(rule.uid),
                lambda: api.alertingprovisioning.update_alertrule(rule.uid, body),
                lambda: api.alertingprovisioning.create_alertrule(body))
    return report


def _ensure(report: Report, what: str, get, update, create) -> None:
    """Update `what` if Grafana has it, else create it (a 404 from `get` means absent; any other error stands)."""
    try:
        get()
    except Exception as e:
        if not _missing(e):
            raise
        create()
        report.created.append(what)
        return
    update()
    report.updated.append(what)


def _env_expanded(settings: dict) -> dict:
    """The API gets real URLs (provisioning files keep `${VAR}` for Grafana to expand)."""
    return {k: os.path.expandvars(v) if isinstance(v, str) else v for k, v in settings.items()}
