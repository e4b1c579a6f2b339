"""The case taxonomy: operator-edited YAML loaded into typed, immutable categories."""
from __future__ import annotations

from datetime import time
from enum import StrEnum
from functools import cached_property, lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_PATH = Path(__file__).parent / "data" / "taxonomy.yaml"
OTHER_LABEL = "其他"


class Tier(StrEnum):
    """The levels a case is handled at (四级贯通 with the grid below), lowest first: dispatch starts at the
    category's level, and each overdue step moves one step right, stopping at the city."""

    grid = "grid"              # 网格
    community = "community"    # 村(社区)
    street = "street"          # 镇街
    district = "district"      # 区县
    city = "city"              # 市

    def escalated(self) -> Tier:
        order = list(Tier)
        return order[min(order.index(self) + 1, len(order) - 1)]

    @property
    def zh(self) -> str:
        """The level's name as the control room says it."""
        return LEVEL_NAMES[self]


LEVEL_NAMES = {Tier.grid: "网格", Tier.community: "社区", Tier.street: "街道", Tier.district: "区县", Tier.city: "市"}


class Category(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    code: str = Field(pattern=r"^(B?\d{4})$")
    major: str = Field(alias="class")
    label: str
    department: str
    time_limit: int = Field(gt=0, description="minutes")
    clock: bool = Field(False, description="limit runs on the clock (emergency), not working hours")
    tier: Tier
    page: bool = Field(False, description="page the department at once")
    accept_limit: int | None = Field(None, gt=0, description="minutes to 签收 once dispatched (on the same clock "
                                     "as time_limit); unset: the taxonomy's accept_limit")


class WorkingHours(BaseModel):
    model_config = ConfigDict(frozen=True)

    timezone: str = "Asia/Shanghai"
    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    periods: tuple[tuple[time, time], ...]

    @field_validator("periods", mode="before")
    @classmethod
    def _parse(cls, v):
        return tuple((time.fromisoformat(a), time.fromisoformat(b)) for a, b in v)


class Taxonomy(BaseModel):
    model_config = ConfigDict(frozen=True)

    working_hours: WorkingHours
    accept_limit: int = Field(120, gt=0, description="minutes to 签收 once dispatched, unless a category says")
    categories: tuple[Category, ...]

    @field_validator("categories")
    @classmethod
    def _unique(cls, cats):
        for attr in ("code", "label"):
            seen = [getattr(c, attr) for c in cats]
            dup = {x for x in seen if seen.count(x) > 1}
            if dup:
                raise ValueError(f"duplicate {attr}: {sorted(dup)}")
        if OTHER_LABEL not in {c.label for c in cats}:
            raise ValueError(f"the taxonomy needs a fallback category labelled {OTHER_LABEL}")
        return cats

    def by_label(self, label: str) -> Category:
        return self.index["label"][label]

    def by_code(self, code: str) -> Category:
        return self.index["code"][code]

    def accept_limit_of(self, category: Category) -> int:
        return category.accept_limit or self.accept_limit

    @property
    def other(self) -> Category:
        return self.by_label(OTHER_LABEL)

    @cached_property
    def index(self) -> dict[str, dict[str, Category]]:
        """Categories by label and by code (looked up per case: built once)."""
        return {attr: {getattr(c, attr): c for c in self.categories} for attr in ("label", "code")}


@lru_cache(maxsize=8)
def load_taxonomy(path: Path | str = DEFAULT_PATH) -> Taxonomy:
    with open(path, encoding="utf-8") as f:
        return Taxonomy.model_validate(yaml.safe_load(f))
