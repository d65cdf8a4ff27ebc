"""Events in a site record: the largest rain events (the Birch-effect pulses that figures zoom on)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def rain_events(time: np.ndarray, precip: np.ndarray, *, min_mm: float = 2.0,
                separation_days: float = 5.0, n: int = 4) -> list[np.datetime64]:
    """Start times of the largest rain events of a record, for the figures of rain pulses.

    Parameters
    ----------
    time : array of datetime64
        END of each step.
    precip : array
        Precipitation per step [mm]; NaN counts as no rain.
    min_mm : float
        Smallest daily total that makes an event [mm].
    separation_days : float
        Events are at least this far apart [d]; the larger one wins.
    n : int
        At most this many events.

    Returns
    -------
    list of datetime64  The END stamp of the first rainy step of each event's day, in time order.
    """
    s = pd.Series(np.nan_to_num(precip), index=pd.DatetimeIndex(time - np.timedelta64(1, "ns")))
    daily = s.resample("1D").sum()
    daily = daily[daily >= min_mm].sort_values(ascending=False)
    picked: list[pd.Timestamp] = []
    for day in daily.index:
        if all(abs((day - p) / pd.Timedelta(days=1)) >= separation_days for p in picked):
            picked.append(day)
        if len(picked) == n:
            break
    out = []
    for day in sorted(picked):  # the END stamp of the first rainy step of that day
        wet = s[day:day + pd.Timedelta(days=1)]
        out.append(wet[wet > 0].index[0].to_datetime64().astype("datetime64[ns]") + np.timedelta64(1, "ns"))
    return out
