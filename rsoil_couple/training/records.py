"""Site records as arrays for training: one `SiteArrays` per site, read from the configured files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import SiteConfig


# --------------------------------------------------------------------------------------------------
# Site arrays
@dataclass
class SiteArrays:
    """One site's drivers and target on a regular grid (time = END of step).

    drivers : name -> [n_time] in canonical units (tsoil °C, swc m3 m-3, precip mm per step).
    target : [n_time] Rsoil [µmol m-2 s-1], NaN where missing or flagged bad.
    """

    name: str
    time: np.ndarray
    step_seconds: int
    drivers: dict[str, np.ndarray]
    target: np.ndarray
    source: str = ""
    depth_m: float = 0.15


def site_from_dataset(ds, column: int = 0, name: str = "", source: str = "") -> SiteArrays:
    """Convert a canonical Dataset (rsoil_couple.data) column into :class:`SiteArrays`.

    The readers already set values their ``qc`` bits mark unusable (gap-filled Rsoil, spikes) to
    NaN, so windows never use them; non-finite values become NaN here.
    """
    col = ds.isel(column=column) if "column" in ds.dims else ds
    t = col["time"].values
    step = _step_seconds(t, source or name)
    drivers = {}
    for v in ("tsoil", "swc", "precip"):
        if v in col:
            drivers[v] = _masked(col, v)
    if "rsoil" not in col:
        raise ValueError(f"{source or name}: the dataset has no 'rsoil' variable (the training target)")
    site_name = name or str(col.attrs.get("site", "")) or "site"
    return SiteArrays(site_name, t, step, drivers, _masked(col, "rsoil"), source)


def _masked(col, v: str) -> np.ndarray:
    x = np.asarray(col[v].values, dtype=np.float64).copy()
    x[~np.isfinite(x)] = np.nan
    return x


def _step_seconds(t: np.ndarray, where: str) -> int:
    if len(t) < 2:
        raise ValueError(f"{where}: time: need at least 2 time steps")
    d = np.diff(t.astype("datetime64[s]").astype(np.int64))
    if not (d == d[0]).all() or d[0] <= 0:
        raise ValueError(f"{where}: time: irregular or non-increasing step; expected a regular grid")
    return int(d[0])


def load_sites(sites: Sequence[SiteConfig]) -> list[SiteArrays]:
    """Read every configured site with rsoil_couple.data."""
    from .. import data
    out = []
    for sc in sites:
        ds = data.read_site(sc.path)
        s = site_from_dataset(ds, name=sc.name or str(ds.attrs.get("site", Path(sc.path).stem)), source=sc.path)
        s.depth_m = sc.depth_m
        out.append(s)
    return out


def hours_to_steps(hours: float, step_seconds: int, key: str) -> int:
    """Window length [h] -> steps; error naming ``key`` if not a whole number of steps."""
    steps = hours * 3600.0 / step_seconds
    if abs(steps - round(steps)) > 1e-6:
        raise ValueError(f"{key} = {hours} h is not a multiple of the data step ({step_seconds} s)")
    return int(round(steps))
