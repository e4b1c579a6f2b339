"""Event models: each schema declared once; JSON Schema, ClickHouse columns and fixtures derive from them."""
from cityops.models.envelope import Envelope, Source
from cityops.models.tickets import Channel, ResolutionMode, Satisfaction, TicketEvent, TicketStatus
from cityops.models.sensors import SensorEvent, SensorKind
from cityops.models.reports import AppReport, ReporterRole
from cityops.models.cases import CaseUpdate, Discovery
from cityops.models.events import CaseEvent

__all__ = [
    "AppReport", "CaseEvent", "CaseUpdate", "Channel", "Discovery", "Envelope", "ReporterRole", "ResolutionMode",
    "Satisfaction", "SensorEvent", "SensorKind", "Source", "TicketEvent", "TicketStatus",
]
