"""Per-kind limits from `cityops/data/sensors.yaml` (or CITYOPS_SENSOR_LIMITS), checked on load."""
from __future__ import annotations

import os
from datetime import datetime, time
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cityops.models.sensors import SensorKind

DEFAULT_PATH = Path(__file__).parents[2] / "cityops" / "data" / "sensors.yaml"
TZ = ZoneInfo("Asia/Shanghai")
VERIFY_HOLD_S = 1800   # a repaired device reads normal this long before its case is verified (核查)


class KindLimit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: float | None = Field(description="null: readings of this kind never open incidents")
    limit_night: float | None = None
    clear: float | None = None
    clear_margin: float | None = None
    sustain_s: int = Field(0, ge=0)
    clear_s: int = Field(0, ge=0)
    verify_hold_s: int = Field(VERIFY_HOLD_S, ge=0, description="readings normal this long after a repair verify it")

    @model_validator(mode="after")
    def _band(self):
        if self.limit is not None and self.clear is None and self.clear_margin is None:
            raise ValueError("give clear (a level) or clear_margin (below the limit)")
        if self.clear is not None and self.limit is not None and self.clear > self.limit:
            raise ValueError(f"clear {self.clear} is above limit {self.limit}")
        return self


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    night: tuple[time, time]
    kinds: dict[SensorKind, KindLimit]

    def bounds(self, kind: str, at: datetime) -> tuple[float, float] | None:
        """(open level, clear level) for a reading of `kind` at `at`, or None when it opens nothing."""
        k = self.kinds.get(kind)
        if k is None or k.limit is None:
            return None
        limit = k.limit
        if k.limit_night is not None and self.is_night(at):
            limit = k.limit_night
        clear = limit - k.clear_margin if k.clear_margin is not None else min(k.clear, limit)
        return limit, clear

    def is_night(self, at: datetime) -> bool:
        t = at.astimezone(TZ).time()
        start, end = self.night
        return t >= start or t < end if start > end else start <= t < end


@lru_cache(maxsize=4)
def load_limits(path: Path | str | None = None) -> Limits:
    path = Path(path or os.environ.get("CITYOPS_SENSOR_LIMITS") or DEFAULT_PATH)
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        return Limits.model_validate(doc)
    except (OSError, yaml.YAMLError, ValidationError) as e:
        raise ValueError(f"sensor limits {path}: {e}".replace("\n", " ")) from None
