"""Where a webhook's deliveries go: its url with each `${NAME}` replaced by that environment variable, and for
a DingTalk robot with signing (加签) the secret from the variable `secret_env` names, a fresh `timestamp` and
`sign` on every request. The secrets stay in this object: records, logs and the ledger know a target by its
url as configured (`shown` redacts even that), and error texts pass through `scrub`."""
from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote_plus

from cityops.alerting import ENV_REF, Webhook
from pager import formats
from pager.ledger import target_key


def dingtalk_sign(secret: str, timestamp: str) -> str:
    """DingTalk's documented 加签: urlencode(base64(HMAC-SHA256(key=secret, msg=timestamp + "\\n" + secret)))."""
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(mac).decode())


@dataclass(frozen=True)
class Target:
    hook: Webhook                                         # as configured: ${NAME} references, no values
    url: str = field(repr=False)                          # the send URL, secrets expanded
    secret: str = field(default="", repr=False)           # DingTalk signing secret
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def format(self) -> str:
        return self.hook.format

    @property
    def name(self) -> str:
        """The url as configured, ${NAME} references unexpanded: the ledger keys its deliveries by this, so a
        rotated secret keeps its queue."""
        return self.hook.url

    @property
    def key(self) -> str:
        return target_key(self.name)

    @property
    def shown(self) -> str:
        return formats.redact(self.hook.url)

    def send_url(self, now: float) -> str:
        if not self.secret:
            return self.url
        ts = str(round(now * 1000))   # DingTalk refuses a timestamp more than an hour off: one per request
        return f"{self.url}{'&' if '?' in self.url else '?'}timestamp={ts}&sign={dingtalk_sign(self.secret, ts)}"

    def scrub(self, text: str) -> str:
        """An error text without this target's secrets (an HTTP error or a robot's answer may quote the URL)."""
        for s in self.secrets:
            text = text.replace(s, "***")
        return formats.redact(text)


def resolve(webhooks: dict[str, list[Webhook]], env: Mapping[str, str]) -> dict[str, list[Target]]:
    """Each department's targets, secrets read from `env`; ValueError naming every variable unset or empty."""
    missing: dict[str, set[str]] = {}
    for department, hooks in webhooks.items():
        for hook in hooks:
            for name in _names(hook):
                if not env.get(name):
                    missing.setdefault(name, set()).add(department)
    if missing:
        named = "; ".join(f"{name} (webhook of {', '.join(sorted(deps))})" for name, deps in sorted(missing.items()))
        raise ValueError(f"environment variables not set: {named}"
                         if len(missing) > 1 else f"environment variable not set: {named}")
    return {department: [_target(hook, env) for hook in hooks] for department, hooks in webhooks.items()}


def _names(hook: Webhook) -> list[str]:
    return [*ENV_REF.findall(hook.url), *([hook.secret_env] if hook.secret_env else [])]


def _target(hook: Webhook, env: Mapping[str, str]) -> Target:
    return Target(hook, ENV_REF.sub(lambda m: env[m.group(1)], hook.url),
                  env[hook.secret_env] if hook.secret_env else "", tuple(env[n] for n in _names(hook)))
