"""The time axis of a site file: parsing timestamps and checking that the step is regular."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError


# --------------------------------------------------------------------------------------------
# Time axis
# --------------------------------------------------------------------------------------------
def _ns(t) -> pd.DatetimeIndex:
    """A DatetimeIndex in nanoseconds (pandas may pick s/us resolution; arithmetic here is ns)."""
    return pd.DatetimeIndex(t).as_unit("ns")


def _parse_time(raw: pd.Series, where: str, fmt: str | None, lines=None) -> pd.DatetimeIndex:
    """Timestamps of a file column; `lines` (each row's line in the file) names the bad row."""
    expected = fmt or "ISO dates like 2019-06-01 00:30:00"
    try:
        t = pd.to_datetime(raw.astype(str) if fmt == "%Y%m%d%H%M" else raw, format=fmt,
                           errors="coerce")
    except (ValueError, TypeError) as exc:
        raise DataError(f"{where}: cannot parse timestamps ({exc}); expected {expected}") from None
    t = _ns(t)
    if t.tz is not None:  # keep the clock time as written; the file's offset goes unused
        t = t.tz_localize(None)
    if t.isna().any():
        i = int(np.flatnonzero(t.isna())[0])
        at = f"line {int(lines[i])}" if lines is not None else f"data row {i + 1}"
        raise DataError(f"{where}: empty or unparsable timestamp {raw.iloc[i]!r} at {at}; "
                        f"expected {expected}")
    return t


def _regular_step(t: pd.DatetimeIndex, where: str) -> pd.Timedelta:
    """The step of a sorted, unique time axis; every difference must be a multiple of it."""
    if len(t) < 2:
        raise DataError(f"{where}: {len(t)} timestamp(s); need at least 2 to know the step")
    dup = t.duplicated()
    if dup.any():
        first = t[dup][0]
        raise DataError(f"{where}: duplicated timestamp {first} ({int(dup.sum())} duplicates); "
                        "expected one row per step")
    d = np.diff(t.asi8)
    if (d < 0).any():
        i = int(np.flatnonzero(d < 0)[0])
        raise DataError(f"{where}: time is not monotonic: {t[i + 1]} follows {t[i]} "
                        f"(data row {i + 2}); expected increasing END-of-step timestamps")
    values, counts = np.unique(d, return_counts=True)
    step = int(values[np.argmax(counts)])
    bad = d % step != 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where}: irregular time step: {t[i]} -> {t[i + 1]} is "
                        f"{pd.Timedelta(int(d[i]), 'ns')}, not a multiple of the usual step "
                        f"{pd.Timedelta(step, 'ns')}")
    return pd.Timedelta(step, "ns")
