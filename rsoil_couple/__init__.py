"""rsoil_couple: knowledge-guided deep-learning soil respiration for land models (Jiang et al. 2022).

The compiled core is imported lazily: ``rsoil_couple.Coupler``, ``rsoil_couple.emulate`` and the status
constants load torch and ``rsoil_couple._core`` on first use, so pure-Python modules (data, q10, ...)
import without them.
"""
__version__ = "0.1.0"

# name -> module that defines it (PEP 562 lazy attributes)
_LAZY = {
    "Coupler": "rsoil_couple.core.coupler",
    "StepResult": "rsoil_couple.core.coupler",
    "STATUS_NAMES": "rsoil_couple.core.coupler",
    "POLICIES": "rsoil_couple.core.coupler",
    "emulate": "rsoil_couple.core.emulate",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rsoil_couple' has no attribute {name!r}")
