"""Tier rules on top of the taxonomy's default tier (三级处置: grid < community < street)."""
from __future__ import annotations

from cityops.taxonomy import Category, Tier

# Several citizens reporting the same thing, or a recurring hot spot, is more than a grid worker's errand.
MANY_REPORTERS = 3


def dispatch_tier(category: Category, *, reporters: int = 1, hot_spot: bool = False) -> Tier:
    tier = Tier(category.tier)
    if category.page:
        return Tier.street  # emergencies go straight to the street, which calls the departments
    if reporters >= MANY_REPORTERS or hot_spot:
        tier = tier.escalated()
    return tier
