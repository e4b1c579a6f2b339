"""Realistic, reproducible city streams: `Simulator(seed, registry, start=...)` yields (Topic, event)."""
from producers.simulator.engine import TZ, Simulator

__all__ = ["Simulator", "TZ"]
