"""Offline emulation: run a canonical Dataset through the C++ core, step by step, as a land model would.

`emulate` feeds every time step of a canonical Dataset (dims ``time``, ``column``; ``tsoil`` [degC],
``swc`` [m3 m-3], ``precip`` [mm per step]) to one `rsoil_couple.Coupler` and returns what the host
would receive: Rsoil, its gC flux, the respiration scalar and a status code per column and step.
Policy ``supplied`` passes the Dataset's own next ``future_steps`` drivers, so it reproduces the
model's offline predictions; ``lagged`` and ``persistence`` show what an online land model gets.
A streaming model file (metadata record ``streaming``) runs through `rsoil_couple.core.streaming`
instead: whole sequences in one scripted ``run`` call per block, with the coupler's streaming statuses.
"""
from __future__ import annotations

import os

import numpy as np
import xarray as xr

from ..variables import DRIVER_UNITS as _UNITS
from ..variables import DRIVERS as _DRIVERS
from ..variables import OUTPUT_VARS, status_attrs
from .coupler import STATUS_NAMES, Coupler, policy_code
from .streaming import STREAM_TIME_CHUNK, StreamingRun, is_streaming


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
            strict: bool = False, chunk_size: int = 0, num_threads: int = 0,
            time_chunk: int = STREAM_TIME_CHUNK, out_dtype=np.float64, run_threads: int = 1) -> xr.Dataset:
    """Run ``ds`` through the core; returns values and status codes on (time, column).

    Parameters
    ----------
    model_path : file written by `rsoil_couple.export.export_model`.
    ds : canonical Dataset; ``tsoil`` [degC], ``swc`` [m3 m-3], ``precip`` [mm per step] on
        (time, column) at the model's step length. Variables the model does not take may be absent.
    policy : 'supplied' | 'lagged' | 'persistence'
        Future-driver policy (docs/core.md). With
        'supplied' the last ``future_steps`` steps lack a full future and get status MISSING (Q10).
        Irrelevant for streaming models (no future window).
    mask : None (all columns use the model), [column] bool, or [time, column] bool; False = Q10.
    strict : columns outside the training envelope fall back to Q10.
    chunk_size, num_threads : as `rsoil_couple.Coupler`. For a streaming model ``chunk_size`` is the
        rows of every ``run`` call (the last block padded; 0: all columns in one call).
    time_chunk : streaming models only: steps per ``run`` call, the state carried across calls
        (0: the whole record in one call); results do not depend on it.
    out_dtype : streaming models only: dtype of rsoil, rsoil_gc and resp_scalar (computed in float64 and
        rounded once; predict asks float32, its output file's type, which halves the block's memory).
    run_threads : streaming models only: blocks of ``chunk_size`` columns run in this many threads.

    Returns
    -------
    Dataset with ``rsoil`` [umol m-2 s-1], ``rsoil_gc`` [gC m-2 s-1], ``resp_scalar`` [1] and
    ``status`` (int8 with ``flag_values``/``flag_meanings``) on (time, column). With 'lagged' the
    value at time t is the model's Rsoil for step t - future_steps (attribute ``lag_steps``), exactly as
    a coupled land model receives it.
    """
    from ..modelfile.export import read_meta

    ncol, ntime = ds.sizes.get("column", 0), ds.sizes.get("time", 0)
    if ncol < 1 or ntime < 1:
        raise ValueError(f"emulate: dataset needs >= 1 time step and >= 1 column (time={ntime}, column={ncol})")
    if is_streaming(read_meta(model_path)):
        return _emulate_streaming(model_path, ds, policy, mask, strict, chunk_size, num_threads, time_chunk,
                                  out_dtype, run_threads)
    c = Coupler(model_path, ncol, policy=policy, strict=strict, chunk_size=chunk_size, num_threads=num_threads)
    _check_step(ds, c.step_seconds)
    x = _drivers(ds, set(c.past_vars) | set(c.future_vars))
    m = _mask(mask, ntime, ncol)
    masks = None
    if m is not None and m.ndim == 1:
        c.set_mask(m)
    elif m is not None:
        masks = m
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
    attrs = {"model_id": c.model_id, "policy": c.policy, "strict": int(c.strict), "past_steps": c.past_steps,
             "future_steps": c.future_steps, "lag_steps": c.lag_steps, "spinup_steps": c.spinup_steps,
             "step_seconds": c.step_seconds,
             **{f"count_{s.lower()}": int(n) for s, n in zip(STATUS_NAMES, c.counters)}}
    return _to_dataset(ds, out, status, attrs)


def _mask(mask, ntime: int, ncol: int) -> np.ndarray | None:
    """`emulate`'s mask as a bool array [column] or [time, column] (None: every column runs the model)."""
    if mask is None:
        return None
    m = np.asarray(mask.transpose("time", "column").values if isinstance(mask, xr.DataArray)
                   and mask.ndim == 2 else mask, dtype=bool)
    if m.shape not in ((ncol,), (ntime, ncol)):
        raise ValueError(f"emulate: mask must have shape ({ncol},) or ({ntime}, {ncol}), got {m.shape}")
    return m


def _emulate_streaming(model_path, ds: xr.Dataset, policy: str, mask, strict: bool, chunk_size: int,
                       num_threads: int, time_chunk: int, out_dtype=np.float64, run_threads: int = 1) -> xr.Dataset:
    """`emulate` for a streaming model file: `rsoil_couple.core.streaming.StreamingRun` over the record."""
    policy_code(policy)  # refused as for window models, though a streaming model has no future window
    run = StreamingRun(model_path, strict=strict, batch_rows=chunk_size, time_chunk=time_chunk,
                       num_threads=num_threads, run_threads=run_threads)
    _check_step(ds, float(run.meta["step_seconds"]))
    x = _drivers(ds, set(run.past_vars))
    out = run(x, _mask(mask, ds.sizes["time"], ds.sizes["column"]), dtype=out_dtype)
    counts = np.bincount(out["status"].ravel().astype(np.int64), minlength=len(STATUS_NAMES))
    attrs = {"model_id": run.meta["model_id"], "policy": policy, "strict": int(run.strict),
             "past_steps": int(run.meta["past_steps"]), "future_steps": 0, "lag_steps": 0,
             "spinup_steps": run.spinup_steps, "step_seconds": float(run.meta["step_seconds"]), "streaming": 1,
             **{f"count_{s.lower()}": int(n) for s, n in zip(STATUS_NAMES, counts)}}
    return _to_dataset(ds, out, out["status"], attrs)


def _to_dataset(ds: xr.Dataset, out: dict, status: np.ndarray, attrs: dict) -> xr.Dataset:
    coords = {k: ds.coords[k] for k in ("time", "column") if k in ds.coords}
    dims = ("time", "column")
    data = {name: (dims, out[name], dict(a)) for name, a in OUTPUT_VARS.items()}
    data["status"] = (dims, status, status_attrs())
    return xr.Dataset(data, coords=coords, attrs=attrs)
