"""Unit conversion into the canonical units: every spelling a reader accepts, in one table."""
from __future__ import annotations

import re
from typing import Callable

import numpy as np

from ..errors import DataError
from ..variables import CANONICAL_VARS, GC_PER_UMOL_CO2


# Units: accepted spellings -> converter(values, step_seconds) into the canonical unit.
def _identity(x, step_s):
    return x


_UNIT_TABLE: dict[str, dict[str, Callable]] = {
    "degC": {
        **{u: _identity for u in ("degc", "deg c", "°c", "c", "celsius", "degree_celsius",
                                   "degrees_celsius", "deg_c", "degrees c")},
        **{u: (lambda x, s: x - 273.15) for u in ("k", "kelvin")},
        **{u: (lambda x, s: (x - 32.0) * 5.0 / 9.0) for u in ("degf", "deg f", "°f", "f",
                                                              "fahrenheit")},
    },
    "m3 m-3": {
        **{u: _identity for u in ("m3 m-3", "m3/m3", "m^3 m^-3", "m3.m-3", "m3 m**-3", "1",
                                   "fraction", "-", "cm3 cm-3", "cm3/cm3", "v/v")},
        **{u: (lambda x, s: x / 100.0) for u in ("%", "percent", "pct", "% vol", "%vol")},
    },
    "mm": {
        **{u: _identity for u in ("mm", "kg m-2", "mm per step", "mm/step", "mm step-1")},
        "m": lambda x, s: x * 1000.0,
        **{u: (lambda x, s: x * 25.4) for u in ("in", "inch", "inches")},
        **{u: (lambda x, s: x * s) for u in ("mm s-1", "mm/s", "kg m-2 s-1", "mm s^-1")},
        **{u: (lambda x, s: x * s / 3600.0) for u in ("mm h-1", "mm/h", "mm hr-1", "mm/hr")},
        **{u: (lambda x, s: x * s / 86400.0) for u in ("mm d-1", "mm/d", "mm day-1", "mm/day")},
    },
    "umol m-2 s-1": {
        **{u: _identity for u in ("umol m-2 s-1", "umol co2 m-2 s-1", "umolco2 m-2 s-1",
                                   "umol/m2/s", "umol m^-2 s^-1", "micromol m-2 s-1",
                                   "umol_m2_s")},
        **{u: (lambda x, s: x / GC_PER_UMOL_CO2) for u in ("gc m-2 s-1", "g c m-2 s-1",
                                                           "gc/m2/s")},
        **{u: (lambda x, s: x / GC_PER_UMOL_CO2 / 86400.0) for u in ("gc m-2 d-1",
                                                                     "g c m-2 d-1",
                                                                     "gc m-2 day-1")},
        **{u: (lambda x, s: x * 1e-3 / 44.0095 * 1e6) for u in ("mg co2 m-2 s-1",
                                                                 "mgco2 m-2 s-1")},
    },
    "W m-2": {u: _identity for u in ("w m-2", "w/m2", "w m^-2")},
}
_UNITS_OF_VAR = {name: spec.units for name, spec in CANONICAL_VARS.items()}
_UNITS_OF_VAR["ppfd"] = "umol m-2 s-1"


def _norm_unit(units: str) -> str:
    u = str(units).strip().replace("µ", "u").replace("μ", "u").replace("²", "2").replace("³", "3")
    return re.sub(r"\s+", " ", u).lower()


def convert_units(values: np.ndarray, units: str, var: str, *, step_seconds: float,
                  where: str) -> np.ndarray:
    """Convert `values` of canonical variable `var` from `units` to its canonical unit.

    Parameters
    ----------
    values : array
        Values in `units`.
    units : str
        The unit the file or mapping declares (e.g. ``"K"``, ``"%"``, ``"mm s-1"``).
    var : str
        Canonical variable name (``tsoil``, ``swc``, ``precip``, ``rsoil`` ...).
    step_seconds : float
        Step length [s]; converts precipitation rates to amounts per step.
    where : str
        ``"<file>: column '<name>'"`` used in error messages.

    Returns
    -------
    array  float64 values in ``CANONICAL_VARS[var].units``.
    """
    if var not in CANONICAL_VARS:
        raise DataError(f"{where}: unknown canonical variable '{var}'; "
                        f"expected one of {sorted(CANONICAL_VARS)}")
    table = _UNIT_TABLE[_UNITS_OF_VAR[var]]
    conv = table.get(_norm_unit(units))
    if conv is None:
        raise DataError(f"{where} ({var}): unknown unit '{units}'; expected one of "
                        f"{sorted(table)} (converted to {CANONICAL_VARS[var].units})")
    return np.asarray(conv(np.asarray(values, dtype=np.float64), float(step_seconds)),
                      dtype=np.float64)
