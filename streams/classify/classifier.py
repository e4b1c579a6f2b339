"""Placeholder: matches category labels literally. The rule-based classifier replaces it."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from cityops.taxonomy import Taxonomy, load_taxonomy


@dataclass(frozen=True)
class Classification:
    label: str
    code: str
    department: str
    tier: str
    time_limit_minutes: int
    confidence: float


class Classifier:
    def __init__(self, taxonomy: Taxonomy):
        self.taxonomy = taxonomy

    @classmethod
    @lru_cache(maxsize=1)
    def default(cls) -> Classifier:
        return cls(load_taxonomy())

    def classify(self, text: str) -> Classification:
        hit = next((c for c in self.taxonomy.categories if c.label in text), self.taxonomy.other)
        return Classification(hit.label, hit.code, hit.department, hit.tier, hit.time_limit,
                              0.9 if hit is not self.taxonomy.other else 0.0)
