"""The city registry (统一标准地址 + 网格): shared domain for producers (where things happen) and
streams (placing events in grids)."""
from cityops.registry.city import CityRegistry
from cityops.registry.model import Grid, PoiKind, StandardAddress, Unit

__all__ = ["CityRegistry", "Grid", "PoiKind", "StandardAddress", "Unit"]
