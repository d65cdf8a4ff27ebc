"""Offline emulation: run a canonical Dataset through the C++ core, step by step, as a land model would.

`emulate` feeds every time step of a canonical Dataset (dims ``time``, ``column``; ``tsoil`` [degC],
``swc`` [m3 m-3], ``precip`` [mm per step]) to one `rsoil_couple.Coupler` and returns what the host
would receive: Rsoil, its gC flux, the respiration scalar and a status code per column and step.
Policy ``supplied`` passes the Dataset's own next ``future_steps`` drivers, so it reproduces the
model's offline predictions; ``lagged`` and ``persistence`` show what an online land model gets.
"""
from __future__ import annotations

import os

import numpy as np
import xarray as xr

from ..variables import DRIVER_UNITS as _UNITS
from ..variables import DRIVERS as _DRIVERS
from ..variables import OUTPUT_VARS, status_attrs
from .coupler import STATUS_NAMES, Coupler


def _drivers(ds: xr.Dataset, needed: set[str]) -> dict[str, np.ndarray]:
    for dim in ("time", "column"):
        if dim not in ds.dims:
            raise ValueError(f"emulate: dataset has no '{dim}' dimension (dims {tuple(ds.dims)})")
    out = {}
    for v in _DRIVERS:
        if v not in ds.data_vars:
            if v in needed:
                raise ValueError(f"emulate: the model needs variable '{v}' [{_UNITS[v]}], absent from the dataset")
            out[v] = np.full((ds.sizes["time"], ds.sizes["column"]), np.nan)
            continue
        units = ds[v].attrs.get("units", _UNITS[v])
        if units != _UNITS[v]:
            raise ValueError(f"emulate: variable '{v}' has units {units!r}, expected {_UNITS[v]!r} "
                             "(convert with rsoil_couple.data first)")
        if set(ds[v].dims) != {"time", "column"}:
            raise ValueError(f"emulate: variable '{v}' must have dims (time, column), has {ds[v].dims}")
        out[v] = np.ascontiguousarray(ds[v].transpose("time", "column").values, dtype=np.float64)
    return out


def _check_step(ds: xr.Dataset, step_seconds: float) -> None:
    if "step_seconds" in ds.attrs and float(ds.attrs["step_seconds"]) != step_seconds:
        raise ValueError(f"emulate: dataset step_seconds = {ds.attrs['step_seconds']} but the model's is "
                         f"{step_seconds}")
    if "time" in ds.coords and ds.sizes["time"] > 1 and np.issubdtype(ds["time"].dtype, np.datetime64):
        dt = np.diff(ds["time"].values).astype("timedelta64[s]").astype(np.int64)
        if np.any(dt != step_seconds):
            bad = int(np.flatnonzero(dt != step_seconds)[0])
            raise ValueError(f"emulate: time step {dt[bad]} s at index {bad + 1} differs from the model's "
                             f"step_seconds = {step_seconds}")


def emulate(model_path: str | os.PathLike, ds: xr.Dataset, policy: str = "supplied", mask=None,
            strict: bool = False, chunk_size: int = 0, num_threads: int = 0) -> xr.Dataset:
    """Run ``ds`` through the core; returns values and status codes on (time, column).

    Parameters
    ----------
    model_path : file written by `rsoil_couple.export.export_model`.
    ds : canonical Dataset; ``tsoil`` [degC], ``swc`` [m3 m-3], ``precip`` [mm per step] on
        (time, column) at the model's step length. Variables the model does not take may be absent.
    policy : 'supplied' | 'lagged' | 'persistence'
        Future-driver policy (docs/core.md). With
        'supplied' the last ``future_steps`` steps lack a full future and get status MISSING (Q10).
    mask : None (all columns use the model), [column] bool, or [time, column] bool; False = Q10.
    strict : columns outside the training envelope fall back to Q10.
    chunk_size, num_threads : as `rsoil_couple.Coupler`.

    Returns
    -------
    Dataset with ``rsoil`` [umol m-2 s-1], ``rsoil_gc`` [gC m-2 s-1], ``resp_scalar`` [1] and
    ``status`` (int8 with ``flag_values``/``flag_meanings``) on (time, column). With 'lagged' the
    value at time t is the model's Rsoil for step t - future_steps (attribute ``lag_steps``), exactly as
    a coupled land model receives it.
    """
    ncol, ntime = ds.sizes.get("column", 0), ds.sizes.get("time", 0)
    if ncol < 1 or ntime < 1:
        raise ValueError(f"emulate: dataset needs >= 1 time step and >= 1 column (time={ntime}, column={ncol})")
    c = Coupler(model_path, ncol, policy=policy, strict=strict, chunk_size=chunk_size, num_threads=num_threads)
    _check_step(ds, c.step_seconds)
    x = _drivers(ds, set(c.past_vars) | set(c.future_vars))
    masks = None
    if mask is not None:
        m = np.asarray(mask.transpose("time", "column").values if isinstance(mask, xr.DataArray)
                       and mask.ndim == 2 else mask, dtype=bool)
        if m.shape == (ncol,):
            c.set_mask(m)
        elif m.shape == (ntime, ncol):
            masks = m
        else:
            raise ValueError(f"emulate: mask must have shape ({ncol},) or ({ntime}, {ncol}), got {m.shape}")
    F = c.future_steps
    padded = {}
    if policy == "supplied" and F > 0:
        # future of step t = rows t+1 .. t+F; past the end of the record: NaN (status MISSING)
        padded = {v: np.concatenate([x[v], np.full((F, ncol), np.nan)]) for v in c.future_vars}
    out = {k: np.empty((ntime, ncol)) for k in ("rsoil", "rsoil_gc", "resp_scalar")}
    status = np.empty((ntime, ncol), dtype=np.int8)
    for t in range(ntime):
        if masks is not None:
            c.set_mask(masks[t])
        fut = {f"future_{v}": np.ascontiguousarray(padded[v][t + 1:t + 1 + F].T) for v in padded}
        r = c.step(x["tsoil"][t], x["swc"][t], x["precip"][t], **fut)
        out["rsoil"][t], out["rsoil_gc"][t], out["resp_scalar"][t] = r.rsoil, r.rsoil_gc, r.resp_scalar
        status[t] = r.status
    return _to_dataset(ds, c, out, status)


def _to_dataset(ds: xr.Dataset, c: Coupler, out: dict, status: np.ndarray) -> xr.Dataset:
    coords = {k: ds.coords[k] for k in ("time", "column") if k in ds.coords}
    dims = ("time", "column")
    data = {name: (dims, out[name], dict(attrs)) for name, attrs in OUTPUT_VARS.items()}
    data["status"] = (dims, status, status_attrs())
    return xr.Dataset(
        data,
        coords=coords,
        attrs={"model_id": c.model_id, "policy": c.policy, "strict": int(c.strict), "past_steps": c.past_steps,
               "future_steps": c.future_steps, "lag_steps": c.lag_steps, "spinup_steps": c.spinup_steps,
               "step_seconds": c.step_seconds,
               **{f"count_{s.lower()}": int(n) for s, n in zip(STATUS_NAMES, c.counters)}},
    )
