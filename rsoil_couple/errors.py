"""The exceptions rsoil_couple raises for bad input; each message names the file, the field and what was expected."""
from __future__ import annotations

__all__ = ["DataError", "MetaError"]


class DataError(ValueError):
    """Bad input data; the message names the file, the field and the expected unit or range."""


class MetaError(ValueError):
    """Malformed ``rsoil_meta.json`` (the model file's metadata); the message names the field."""
