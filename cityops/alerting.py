"""The alerting configuration operators edit (cityops/data/alerting.yaml): each rule's severity and cooldown,
and where the pager delivers, department → webhooks (CITYOPS_PAGER_WEBHOOKS names a file of the same shape)."""
from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cityops.models.alerts import AlertRule, Severity

DEFAULT_PATH = Path(__file__).parent / "data" / "alerting.yaml"


class RuleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: Severity
    cooldown_s: int = Field(gt=0)
    factor: float = 4.0
    min_count: int = 20
    min_history_min: int = 10


# A reference to an environment variable in a webhook's url: robot keys and tokens stay out of config files.
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = Field(pattern=r"^(wecom|dingtalk|json)$")
    url: str = Field(pattern=r"^https?://", description="${NAME} is that environment variable's value")
    secret_env: str = Field("", pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$",
                            description="DingTalk signing (加签): the variable holding the robot's SEC… secret")

    @model_validator(mode="after")
    def _secrets_where_they_apply(self) -> Webhook:
        if self.secret_env and self.format != "dingtalk":
            raise ValueError("secret_env signs DingTalk robots only (format: dingtalk)")
        if "${" in ENV_REF.sub("", self.url):
            raise ValueError("url: write an environment variable as ${NAME} (letters, digits, _)")
        return self


class AlertingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: dict[AlertRule, RuleConfig]
    webhooks: dict[str, list[Webhook]] = {}


@lru_cache(maxsize=4)
def load_alerting(path: Path | str | None = None) -> AlertingConfig:
    path = Path(path or DEFAULT_PATH)
    try:
        with open(path, encoding="utf-8") as f:
            cfg = AlertingConfig.model_validate(yaml.safe_load(f))
        hooks = os.environ.get("CITYOPS_PAGER_WEBHOOKS")
        if hooks:
            with open(hooks, encoding="utf-8") as f:
                extra = AlertingConfig.model_validate({"rules": cfg.rules, **(yaml.safe_load(f) or {})})
            cfg = cfg.model_copy(update={"webhooks": extra.webhooks})
        return cfg
    except (OSError, yaml.YAMLError, ValidationError) as e:
        raise ValueError(f"alerting config: {e}".replace("\n", " ")) from None
