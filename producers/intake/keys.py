"""API keys for POST: from CITYOPS_INTAKE_API_KEYS, else one dev key generated into the data dir.
Read keys (GET with the exact place): from CITYOPS_INTAKE_READ_KEYS only, none by default.
Department keys (the department endpoint): one per department, in the file CITYOPS_INTAKE_DEPARTMENT_KEYS names
(a file of its own, never in the repository); none by default."""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets

import yaml

from cityops.errors import UserError
from cityops.settings import Settings

MIN_DEPARTMENT_KEY = 16
SETTING = "CITYOPS_INTAKE_DEPARTMENT_KEYS"


def _listed(value: str) -> list[str]:
    return [k.strip() for k in value.split(",") if k.strip()]


def api_keys(settings: Settings) -> list[str]:
    configured = _listed(settings.intake_api_keys)
    if configured:
        return configured
    path = settings.data_dir / "intake" / "dev-api-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24))
    return [path.read_text().strip()]


def read_keys(settings: Settings) -> list[str]:
    return _listed(settings.intake_read_keys)


def sign(secret: bytes, text: str) -> str:
    """Keyed hash (HMAC with CITYOPS_PII_KEY): what the store keeps instead of a digest anyone could recompute."""
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def allowed(key: str | None, keys: list[str]) -> bool:
    return bool(key) and any(hmac.compare_digest(key.encode(), k.encode()) for k in keys)


def department_keys(settings: Settings) -> dict[str, str]:
    """Department → key from the key file (YAML or JSON); {} when unset. UserError saying what to fix otherwise."""
    path = settings.intake_department_keys
    if path is None:
        return {}
    if not path.is_file():
        raise UserError(f"{SETTING}: {path} does not exist or is not a file")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise UserError(f"{SETTING}: {path} cannot be read ({' '.join(str(e).split())})") from None
    if not isinstance(doc, dict) or not doc:
        raise UserError(f"{SETTING}: {path} must map each department → key, one per line, e.g. "
                        f"`环卫: <a long random key>`")
    seen: dict[str, str] = {}
    for department, key in doc.items():
        if not isinstance(department, str) or not department.strip() or not isinstance(key, str):
            raise UserError(f"{SETTING}: {path}: {department!r} must be a department name with a key as text")
        if len(key) < MIN_DEPARTMENT_KEY:
            raise UserError(f"{SETTING}: {path}: the key of {department} is shorter than {MIN_DEPARTMENT_KEY} "
                            "characters; make one with `python -c 'import secrets; print(secrets.token_urlsafe(24))'`")
        if key in seen:
            raise UserError(f"{SETTING}: {path}: {seen[key]} and {department} have the same key; each department "
                            "needs its own")
        seen[key] = department
    return {department.strip(): key for department, key in doc.items()}


def department_of(key: str | None, keys: dict[str, str]) -> str | None:
    """The department whose key `key` is (every key compared, in constant time each), or None."""
    found = None
    for department, k in keys.items():
        if key and hmac.compare_digest(key.encode(), k.encode()):
            found = department
    return found
