"""The one resampling rule: a canonical Dataset onto a coarser step that is a whole multiple of its own.

Rule (docs/data.md, "Resampling"); ``k = step_seconds / ds.step_seconds`` fine steps make one
coarse step:

- **Bins.** Time stays the END of each interval. A coarse step ending at ``T`` holds the fine steps
  ending in ``(T - step, T]``; the coarse END times are whole multiples of the new step counted from
  the fine grid's own phase (for usual files: from midnight), so 30-min data become hours ending
  at hh:00. Bins the record only partly covers (at its two ends) are padded with missing fine steps
  flagged ``time_inserted``.
- **Drivers** (`MEAN_VARS`: tsoil, swc, tair, rg, ppfd): the mean, and **precipitation** (`SUM_VARS`)
  the sum, of the k fine values — only when all k are valid; one missing fine value makes the coarse
  value NaN (gaps are kept, never filled: half an hour of rain missing is not zero rain).
- **Rsoil** (`SPARSE_VARS`): the mean of the VALID fine values when at least ``min_rsoil_n`` of them
  are valid, with ``rsoil_n`` = how many were averaged. Chamber records are sparse by design (a round
  every 2-5 h at SMER, interrupted rounds elsewhere); one chamber measurement in an hour is a sample
  of that hour's flux, and requiring every fine step would discard most of them. ``rsoil_n`` lets a
  user weight or threshold. Resampling an already resampled Dataset weights by its ``rsoil_n``, so
  30 min -> 1 h -> 2 h gives exactly 30 min -> 2 h.
- **qc.** Provenance bits (``rsoil_gapfilled_removed``, ``value_removed_out_of_range``,
  ``time_inserted``) are OR-ed over the fine steps; the bits that describe a value itself
  (``<var>_missing``, ``rsoil_negative``) are derived again from the coarse values, so that
  "the missing bit is set exactly where the value is NaN" stays true (for drivers this equals the OR).
- **attrs.** ``step_seconds``, ``n_time``, ``n_time_inserted``, ``n_<var>_missing`` and
  ``n_rsoil_negative`` count the coarse Dataset; ``n_rsoil_partial`` counts coarse Rsoil values from
  fewer than all fine steps; the reader's counts of values it removed from the file
  (``n_*_removed``) are kept; ``resampled_from_step_seconds`` records the original step.

A target step equal to the Dataset's returns a copy (identity); a finer step or one that is not a
whole multiple is refused naming both steps.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DataError
from ..variables import CANONICAL_VARS
from .canonical import _DERIVED_BITS, QC_FLAGS, _bit, check_canonical
from .timeaxis import _ns

#: Averaged, and NaN unless every fine value is valid.
MEAN_VARS = ("tsoil", "swc", "tair", "rg", "ppfd")
#: Summed (amounts per step), and NaN unless every fine value is valid.
SUM_VARS = ("precip",)
#: Averaged over the valid fine values (sparse observations), with a count ``<var>_n``.
SPARSE_VARS = ("rsoil",)
assert set(MEAN_VARS + SUM_VARS + SPARSE_VARS) == set(CANONICAL_VARS)


def resample(ds: xr.Dataset, step_seconds: int, *, min_rsoil_n: int = 1) -> xr.Dataset:
    """A canonical Dataset on a coarser step, by the module's rule.

    Parameters
    ----------
    ds : Dataset
        Canonical (any number of columns).
    step_seconds : int
        The new step [s]: equal to ``ds.attrs["step_seconds"]`` (a copy is returned) or a whole
        multiple of it.
    min_rsoil_n : int
        Fewest valid fine Rsoil values a coarse Rsoil needs (default 1); below it Rsoil is NaN
        (``rsoil_n`` still says how many there were).

    Returns
    -------
    Dataset  Canonical, step `step_seconds`, plus ``rsoil_n`` (time, column) where ``rsoil`` exists.
    """
    where = f"resample: {ds.attrs.get('source', 'dataset')}"
    check_canonical(ds, where)
    fine = int(ds.attrs["step_seconds"])
    target = int(step_seconds)
    if target != step_seconds or target <= 0:
        raise DataError(f"{where}: target step {step_seconds!r} s must be a positive whole number of seconds")
    if target == fine:
        return ds.copy(deep=True)
    if target < fine:
        raise DataError(f"{where}: cannot resample from step {fine} s to the finer step {target} s; "
                        "resampling only aggregates to a coarser step, it never interpolates")
    if target % fine:
        raise DataError(f"{where}: cannot resample from step {fine} s to step {target} s: "
                        f"{target} s is not a whole multiple of {fine} s")
    if min_rsoil_n < 1:
        raise DataError(f"{where}: min_rsoil_n = {min_rsoil_n}; expected >= 1")
    k = target // fine
    t = _ns(ds["time"].values).asi8
    s_ns, S_ns = fine * 1_000_000_000, target * 1_000_000_000
    t0 = int(t[0])
    phase = t0 % s_ns
    first_end = phase + -(-(t0 - phase) // S_ns) * S_ns          # END of the bin holding t0
    front = (t0 - (first_end - S_ns + s_ns)) // s_ns             # fine steps of that bin before t0
    nb = -(-(front + len(t)) // k)
    back = nb * k - front - len(t)
    ncol = ds.sizes["column"]

    def blocks(a: np.ndarray, fill) -> np.ndarray:
        a = np.asarray(a).reshape(len(t), ncol)
        pad = [np.full((front, ncol), fill, a.dtype), a, np.full((back, ncol), fill, a.dtype)]
        return np.concatenate(pad).reshape(nb, k, ncol)

    out_vars: dict[str, xr.DataArray] = {}
    for var in ds.data_vars:
        if var not in CANONICAL_VARS:
            continue
        x = blocks(ds[var].transpose("time", "column").values.astype(np.float64), np.nan)
        attrs = dict(ds[var].attrs)
        if var in SPARSE_VARS:
            n_name = f"{var}_n"
            w = (blocks(ds[n_name].transpose("time", "column").values.astype(np.float64), 0.0)
                 if n_name in ds.data_vars else np.ones_like(x))
            w = np.where(np.isfinite(x), w, 0.0)
            n = w.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                vals = np.where(n >= min_rsoil_n, (np.where(w > 0, x, 0.0) * w).sum(axis=1) / n, np.nan)
            full = target // int(ds.attrs.get("resampled_from_step_seconds", fine))
            out_vars[n_name] = xr.DataArray(n.astype(np.int16), dims=("time", "column"), attrs={
                "long_name": f"number of valid {int(ds.attrs.get('resampled_from_step_seconds', fine))} s "
                             f"values averaged into {var}", "units": "1", "valid_min": 0, "valid_max": full})
            attrs["cell_methods"] = f"time: mean (valid values only; see {n_name})"
        elif var in SUM_VARS:
            vals = x.sum(axis=1)          # NaN when any fine value is NaN
            attrs["cell_methods"] = "time: sum"
        else:
            vals = x.mean(axis=1)
            attrs["cell_methods"] = "time: mean"
        out_vars[var] = xr.DataArray(vals, dims=("time", "column"), attrs=attrs)

    qc_fine = blocks(ds["qc"].transpose("time", "column").values.astype(np.uint8), _bit("time_inserted"))
    qc = np.bitwise_or.reduce(qc_fine, axis=1) & np.uint8(~_DERIVED_BITS & 0xFF)
    for var, da in out_vars.items():
        if f"{var}_missing" in QC_FLAGS:
            qc[np.isnan(da.values)] |= _bit(f"{var}_missing")
    if "rsoil" in out_vars:
        with np.errstate(invalid="ignore"):
            qc[out_vars["rsoil"].values < 0] |= _bit("rsoil_negative")
    out_vars["qc"] = xr.DataArray(qc, dims=("time", "column"), attrs=dict(ds["qc"].attrs))

    ends = pd.DatetimeIndex(first_end + S_ns * np.arange(nb, dtype=np.int64))
    order = [v for v in ds.data_vars if v in out_vars] + [v for v in out_vars if v not in ds.data_vars]
    out = xr.Dataset({v: out_vars[v] for v in order},
                     coords={"time": ("time", ends.values, dict(ds["time"].attrs)),
                             "column": ds["column"], "depth": ds["depth"]} if "depth" in ds.coords
                     else {"time": ("time", ends.values, dict(ds["time"].attrs)), "column": ds["column"]})
    out.attrs = _attrs(ds, out, fine, target)
    return out


def _attrs(ds: xr.Dataset, out: xr.Dataset, fine: int, target: int) -> dict:
    a = dict(ds.attrs)
    a["step_seconds"] = target
    a["resampled_from_step_seconds"] = int(ds.attrs.get("resampled_from_step_seconds", fine))
    a["n_time"] = out.sizes["time"]
    a["n_time_inserted"] = int(((out["qc"].values & _bit("time_inserted")) > 0).any(axis=1).sum())
    for var in CANONICAL_VARS:
        if var in out.data_vars:
            a[f"n_{var}_missing"] = int(np.isnan(out[var].values).sum())
    if "rsoil" in out.data_vars:
        with np.errstate(invalid="ignore"):
            a["n_rsoil_negative"] = int((out["rsoil"].values < 0).sum())
        n = out["rsoil_n"].values
        a["n_rsoil_partial"] = int((np.isfinite(out["rsoil"].values)
                                    & (n < out["rsoil_n"].attrs["valid_max"])).sum())
    a["history"] = (str(ds.attrs.get("history", "")) + f"; resampled from {fine} s to {target} s "
                    "by rsoil_couple.data.resample").lstrip("; ")
    return a
