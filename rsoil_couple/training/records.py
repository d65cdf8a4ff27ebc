"""Site records as arrays for training: one `SiteArrays` per site, read from the configured files.

`load_sites` reads every ``data.sites`` entry, checks that it has every variable the model uses, and
brings it to the model's step (``data.step_minutes``; default the first site's step) with the one
resampling rule of `rsoil_couple.data.resample` (drivers averaged, rain summed, gaps kept, Rsoil the
mean of its valid values). A site whose step is coarser than the model's is refused: a coarse record
cannot be made finer. Each `SiteArrays` records where it came from: name, file, original step, depth.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import DataSection, SiteConfig


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
    original_step_seconds: int = 0      # the step of the file before resampling (0: not recorded)

    def origin(self) -> dict:
        """Where the record came from: name, file, original and current step [s], depth [m]."""
        return {"name": self.name, "source": self.source, "original_step_seconds": self.original_step_seconds,
                "step_seconds": self.step_seconds, "depth_m": self.depth_m}


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
    original = int(ds.attrs.get("resampled_from_step_seconds", step))
    return SiteArrays(site_name, t, step, drivers, _masked(col, "rsoil"), source,
                      original_step_seconds=original)


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


def model_step_seconds(data_cfg: DataSection) -> int | None:
    """The model's step [s] from ``data.step_minutes`` (None: the first site's step)."""
    return int(round(data_cfg.step_minutes * 60)) if data_cfg.step_minutes > 0 else None


def load_data(data_cfg: DataSection) -> list[SiteArrays]:
    """`load_sites` for a config's ``[data]``: its sites, its model step, its past/future variables."""
    return load_sites(data_cfg.sites, model_step_seconds(data_cfg),
                      list(dict.fromkeys(list(data_cfg.past_vars) + list(data_cfg.future_vars))))


def load_sites(sites: Sequence[SiteConfig], step_seconds: int | None = None,
               variables: Sequence[str] = ()) -> list[SiteArrays]:
    """Read every configured site with rsoil_couple.data and bring it to one step.

    Parameters
    ----------
    sites : list of SiteConfig
        ``data.sites``.
    step_seconds : int
        The model's step [s]; None: the first site's step. Finer sites are resampled to it
        (`rsoil_couple.data.resample`); a coarser one is refused naming both steps.
    variables : list
        Drivers the model reads; a site without one of them is refused naming the site and the
        variable.
    """
    from .. import data
    datasets = [data.read_site(sc.path) for sc in sites]
    return sites_from_datasets(sites, datasets, step_seconds, variables)


def sites_from_datasets(sites: Sequence[SiteConfig], datasets, step_seconds: int | None = None,
                        variables: Sequence[str] = ()) -> list[SiteArrays]:
    """`load_sites` on canonical Datasets already read (one per ``SiteConfig``)."""
    from ..data import resample
    if not datasets:
        raise ValueError("data.sites: no site given")
    target = int(step_seconds) if step_seconds else int(datasets[0].attrs["step_seconds"])
    out = []
    for i, (sc, ds) in enumerate(zip(sites, datasets)):
        name = sc.name or str(ds.attrs.get("site", Path(sc.path).stem))
        where = f"data.sites[{i}] '{name}' ({sc.path})"
        missing = [v for v in variables if v not in ds.data_vars]
        if missing:
            names = ", ".join(repr(v) for v in missing)
            raise ValueError(f"{where}: has no {names} but the model uses it (data.past_vars / "
                             "data.future_vars); leave it out of those lists or leave this site out")
        fine = int(ds.attrs["step_seconds"])
        if fine > target:
            raise ValueError(f"{where}: its step {fine} s is coarser than the model's step {target} s "
                             "(data.step_minutes); a coarse record cannot be made finer: set "
                             f"data.step_minutes to a multiple of {fine // 60:g} min or leave this site out")
        try:
            ds = resample(ds, target)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        s = site_from_dataset(ds, name=name, source=sc.path)
        s.depth_m = _depth(sc, ds, where)
        s.original_step_seconds = fine
        out.append(s)
    return out


def _depth(sc: SiteConfig, ds, where: str) -> float:
    """The config's ``depth_m``; refused when the file states another depth."""
    file_depth = float(ds.attrs.get("depth_m", float("nan")))
    if np.isfinite(file_depth) and abs(file_depth - sc.depth_m) > 1e-9:
        raise ValueError(f"{where}: depth_m = {sc.depth_m:g} m in the config, but the file's soil "
                         f"drivers are at {file_depth:g} m; set depth_m = {file_depth:g}")
    return float(sc.depth_m)


def hours_to_steps(hours: float, step_seconds: int, key: str) -> int:
    """Window length [h] -> steps; error naming ``key`` if not a whole number of steps."""
    steps = hours * 3600.0 / step_seconds
    if abs(steps - round(steps)) > 1e-6:
        raise ValueError(f"{key} = {hours} h is not a multiple of the data step ({step_seconds} s)")
    return int(round(steps))
