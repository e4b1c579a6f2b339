"""API keys for POST: from CITYOPS_INTAKE_API_KEYS, else one dev key generated into the data dir.
Read keys (GET with the exact place): from CITYOPS_INTAKE_READ_KEYS only, none by default."""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from cityops.settings import Settings


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
