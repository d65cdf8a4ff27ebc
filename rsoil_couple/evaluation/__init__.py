"""Evaluation: validation against observations and CLM history output, figures and the report."""
from ..data.events import rain_events
from .sources import DEFAULT_MIN_VALID, Sources, aggregate, load_sources, to_datetime64
from .validate import compare, periods_of, validate

__all__ = ["rain_events", "DEFAULT_MIN_VALID", "Sources", "aggregate", "load_sources", "to_datetime64",
           "compare", "periods_of", "validate"]
