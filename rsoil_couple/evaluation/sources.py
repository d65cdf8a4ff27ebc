"""What validation compares: observations, model runs, Q10 baselines and CLM fluxes on the observations' time axis."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..data import clm
from ..data.ncopen import open_netcdf
from ..metrics import all_metrics

DEFAULT_MIN_VALID = 0.75


# ----------------------------------------------------------------------------------------------
# time helpers
def to_datetime64(values, where: str = "time") -> np.ndarray:
    """datetime64[ns] from datetime64 or cftime values (noleap/360_day dates by their fields)."""
    v = np.asarray(values)
    if np.issubdtype(v.dtype, np.datetime64):
        return v.astype("datetime64[ns]")
    try:
        return np.array([np.datetime64(f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:"
                                       f"{d.minute:02d}:{d.second:02d}", "ns") for d in v])
    except (AttributeError, ValueError) as exc:
        raise ValueError(f"{where}: cannot place these dates on the observations' calendar ({exc})") from None


def aggregate(fine_time: np.ndarray, values: np.ndarray, step_s: float, end_time: np.ndarray,
              interval_s: np.ndarray, min_valid: float = DEFAULT_MIN_VALID) -> tuple[np.ndarray, np.ndarray]:
    """Mean of a fine series over coarse intervals (end - interval, end], with its valid fraction.

    fine_time : END stamps of the fine series (datetime64). values : [n_fine] (NaN = invalid).
    step_s : fine step [s]. end_time, interval_s : END stamps and lengths [s] of the coarse records.
    Returns (mean, valid_fraction), each [n_coarse]; mean is NaN where the fraction < min_valid.
    """
    ft = fine_time.astype("datetime64[ns]").astype("int64")
    et = end_time.astype("datetime64[ns]").astype("int64")
    start = et - (np.asarray(interval_s) * 1e9).astype("int64")
    k = np.searchsorted(et, ft, side="left")
    inside = (k < len(et))
    inside[inside] &= ft[inside] > start[k[inside]]
    v = np.asarray(values, dtype="float64")
    ok = inside & np.isfinite(v)
    sums = np.bincount(k[ok], weights=v[ok], minlength=len(et))
    counts = np.bincount(k[ok], minlength=len(et)).astype("float64")
    frac = counts / np.maximum(np.asarray(interval_s) / step_s, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where((frac >= min_valid) & (counts > 0), sums / counts, np.nan)
    return mean, frac


# ----------------------------------------------------------------------------------------------
# inputs
@dataclass
class Sources:
    """Everything compared, for one observed column, at the observations' step."""

    column: str
    time: np.ndarray  # datetime64, END stamps
    step_s: float
    obs: np.ndarray
    drivers: dict  # tsoil [degC], swc [m3 m-3], precip [mm per step]
    series: dict = field(default_factory=dict)  # name -> values at obs times
    clm: dict = field(default_factory=dict)  # name -> (time, values, interval_s)
    notes: list = field(default_factory=list)


def _run_name(path: str, ds: xr.Dataset, taken: set) -> str:
    # "lstm (persistence)": the model kind and, for rsoil-couple predict output, the policy
    name = str(ds.attrs.get("model_kind", Path(path).stem))
    if "policy" in ds.attrs:
        name = f"{name} ({ds.attrs['policy']})"
    base, i = name, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    return name


def _match_column(ids: Sequence, want: str, n_obs: int, where: str) -> int:
    ids = [str(c) for c in ids]
    if want in ids:
        return ids.index(want)
    if len(ids) == 1 and n_obs == 1:
        return 0
    raise ValueError(f"{where}: variable 'column' has no column {want!r} (has {ids[:10]}) and the "
                     "files cannot be paired one-to-one")


def load_sources(obs_path: str, runs: Sequence[str] = (), clm_paths: Sequence[str] = (), *,
                 q10: bool = False, fit_period: tuple[str, str] | None = None,
                 clm_calendar: str | None = None, clm_column: int = 0,
                 columns: Sequence[str] | None = None) -> list[Sources]:
    """Read observations, model runs, baselines and CLM fluxes; one `Sources` per observed column."""
    from ..data import read_site

    obs = read_site(obs_path)
    if "rsoil" not in obs.data_vars:
        raise ValueError(f"{obs_path}: missing variable 'rsoil' (observed soil respiration, "
                         "umol m-2 s-1): nothing to validate against")
    step = float(obs.attrs["step_seconds"])
    ids = [str(c) for c in obs["column"].values]
    if columns:
        missing = [c for c in columns if c not in ids]
        if missing:
            raise ValueError(f"{obs_path}: variable 'column' has no column(s) {missing}")
        ids = list(columns)
    t = obs["time"].values.astype("datetime64[ns]")
    run_ds = []
    for r in runs:
        if not Path(r).is_file():
            raise FileNotFoundError(f"{r}: model run not found")
        ds = open_netcdf(r)
        if "rsoil" not in ds.variables:
            raise ValueError(f"{r}: missing variable 'rsoil' (a `rsoil-couple predict` output)")
        if _norm(ds["rsoil"].attrs.get("units", "")) not in ("umolm-2s-1",):
            raise ValueError(f"{r}: variable 'rsoil' has units {ds['rsoil'].attrs.get('units')!r}; "
                             "expected 'umol m-2 s-1'")
        run_ds.append((r, ds))
    flux = None
    if clm_paths:
        flux = clm.read_fluxes(list(clm_paths), calendar=clm_calendar).load()
        if not 0 <= clm_column < flux.sizes["column"]:
            raise ValueError(f"{clm_paths[0]}: variable 'column': no column {clm_column}")

    out = []
    for cid in ids:
        o = obs.sel(column=cid)
        src = Sources(cid, t, step, o["rsoil"].values.astype("float64"),
                      {v: o[v].values.astype("float64") for v in ("tsoil", "swc", "precip") if v in o})
        taken: set = set()
        for r, ds in run_ds:
            j = _match_column(ds["column"].values, cid, len(obs["column"]), r)
            rt = to_datetime64(ds["time"].values, f"{r}: variable 'time'")
            s = pd.Series(ds["rsoil"].isel(column=j).values.astype("float64"), index=rt)
            s = s[~s.index.duplicated()]
            vals = s.reindex(pd.DatetimeIndex(t)).values
            if not np.isfinite(vals).any():
                raise ValueError(f"{r}: variable 'time' does not overlap the observations in {obs_path}")
            name = _run_name(r, ds, taken)
            taken.add(name)
            src.series[name] = vals
            if "status" in ds.variables:
                st = pd.Series(ds["status"].isel(column=j).values, index=rt)
                st = st[~st.index.duplicated()].reindex(pd.DatetimeIndex(t))
                ok = np.isfinite(src.obs) & st.notna().values
                frac_net = float(np.mean(st.values[ok] <= 1)) if ok.any() else float("nan")
                src.notes.append(f"{name}: the network ran (status active/extrapolating) on "
                                 f"{100 * frac_net:.1f} % of the observed steps; the rest are Q10 fallback")
        if q10:
            _add_baselines(src, fit_period)
        if flux is not None:
            ft = to_datetime64(flux["time"].values, f"{clm_paths[0]}: variable 'time'")
            for v in (k.lower() for k in clm.FLUX_VARS):
                if v in flux:
                    src.clm[f"clm_{v}"] = (ft, flux[v].isel(column=clm_column).values.astype("float64"),
                                           flux["interval_s"].values.astype("float64"))
        out.append(src)
    return out


def _norm(u: str) -> str:
    return str(u).replace(" ", "").replace("µ", "u").lower()


def _add_baselines(src: Sources, fit_period: tuple[str, str] | None) -> None:
    """Fit the Q10 family and the CLM-structure baseline on the observations (or `fit_period`)."""
    from ..baselines import q10

    ts, sw = src.drivers["tsoil"], src.drivers.get("swc")
    fit_mask = np.ones(len(src.time), bool)
    if fit_period:
        a, b = (np.datetime64(pd.Timestamp(x), "ns") for x in fit_period)
        fit_mask = (src.time > a) & (src.time <= b)
        src.notes.append(f"Q10 baselines fitted on {fit_period[0]} .. {fit_period[1]} "
                         f"({int(fit_mask.sum())} steps)")
    else:
        src.notes.append("Q10 baselines fitted on the observations they are evaluated on (in-sample, "
                         "as the paper fits them on train+validation): an upper bound of their skill")
    r = np.where(fit_mask, src.obs, np.nan)
    for name, f in q10.fit_family(ts, sw, r).items():
        src.series[name] = np.asarray(f.predict(ts, sw), dtype="float64")
        if isinstance(f, q10.ClmFit):
            src.notes.append(f"{name}: k = {f.k:.4f} umol m-2 s-1 (sand {f.sand} %, clay {f.clay} %)")
        else:
            src.notes.append(f"{name}: params {json.dumps({k: round(float(v), 4) for k, v in f.params.items()})} "
                             f"(swc in {f.swc_units})")


def _metrics(obs: np.ndarray, sim: np.ndarray) -> dict:
    ok = np.isfinite(obs) & np.isfinite(sim)
    if ok.sum() < 2:
        return {"n": int(ok.sum())}
    return all_metrics(obs[ok], sim[ok])
