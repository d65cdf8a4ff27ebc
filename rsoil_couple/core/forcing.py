"""Write the Fortran host's forcing NetCDF (CLM history names, units and time axis) from a Dataset.

The file looks like a CLM5 column-level history tape (`hist_dov2xy = .false.`, see
`../shared/CLM.md`), so the host reads drivers exactly as a CLM-coupled model would see them:

- dims ``time`` (unlimited), ``levgrnd``, ``levsoi``, ``column``, ``hist_interval`` (2);
- ``TSOI`` [K] on ``(time, levgrnd, column)``, ``H2OSOI`` [mm3/mm3] on ``(time, levsoi, column)``,
  ``RAIN`` [mm/s] on ``(time, column)``; float64, missing values as CLM's ``spval`` 1e36;
- ``levgrnd``/``levsoi`` node depths [m] (CLM5's top nodes by default); a canonical Dataset has one
  measurement depth (attribute ``depth_m``), so the profile is built as
  ``T(z) = T_obs + tsoi_gradient_k_per_m * (z - depth_m)`` (uniform with the default gradient 0),
  which linear interpolation to ``depth_m`` returns exactly — the host must interpolate, and a test
  can make the gradient non-zero to prove that it does; ``H2OSOI`` is uniform in depth;
- time in CLM's convention: ``time`` [days since the start of the first step] with ``calendar``
  and ``bounds``, ``time_bounds`` (start, end), ``mcdate`` (YYYYMMDD) and ``mcsec`` [s] of the END
  of each step, ``nstep``.

`replicate_columns` turns a one-site Dataset into many columns with small, deterministic
perturbations (for decompositions and benchmarks).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["CLM5_NODE_DEPTHS", "SPVAL", "replicate_columns", "write_forcing"]

#: CLM5's soil node depths [m] (`levgrnd` of a CLM5 history file, top 8 of 25).
CLM5_NODE_DEPTHS = (0.01, 0.04, 0.09, 0.16, 0.26, 0.40, 0.58, 0.80)
#: CLM's missing value (`spval`).
SPVAL = 1.0e36
T0C = 273.15  # K


def replicate_columns(ds: xr.Dataset, ncol: int, *, tsoil_spread_k: float = 0.0,
                      swc_spread: float = 0.0) -> xr.Dataset:
    """`ncol` columns copied round-robin from `ds`'s columns, each with its own perturbation.

    Column j (0-based) gets ``tsoil + o_j`` and ``swc * (1 + s_j)`` with ``o_j`` spread evenly over
    ``[-tsoil_spread_k, +tsoil_spread_k]`` [K] and ``s_j`` over ``[-swc_spread, +swc_spread]`` [-];
    precipitation is copied unchanged. The result is a canonical Dataset (column ids
    ``<source column>_<j>``), so Python references (`rsoil_couple.emulate`, `rsoil_couple.q10`)
    can be computed on exactly the drivers the host reads.
    """
    if ncol < 1:
        raise ValueError(f"replicate_columns: ncol must be >= 1, got {ncol}")
    src = np.arange(ncol) % ds.sizes["column"]
    out = ds.isel(column=src)
    frac = np.linspace(-1.0, 1.0, ncol) if ncol > 1 else np.zeros(1)
    names = [f"{c}_{j:04d}" for j, c in enumerate(np.asarray(ds["column"].values)[src].astype(str))]
    out = out.assign_coords(column=names)
    out["tsoil"] = (out["tsoil"] + xr.DataArray(frac * tsoil_spread_k, dims="column",
                                                coords={"column": names})).assign_attrs(ds["tsoil"].attrs)
    if "swc" in out:
        out["swc"] = (out["swc"] * xr.DataArray(1.0 + frac * swc_spread, dims="column",
                                                coords={"column": names})).assign_attrs(ds["swc"].attrs)
    return out


def _clm_time(time: np.ndarray, step_seconds: float):
    """CLM time variables for step-END stamps: days since the first step's start, bounds, mcdate, mcsec."""
    end = pd.DatetimeIndex(time)
    step = pd.Timedelta(seconds=float(step_seconds))
    ref = end[0] - step
    days = (end - ref) / pd.Timedelta(days=1)
    bounds = np.stack([days - step / pd.Timedelta(days=1), days], axis=1)
    mcdate = (end.year * 10000 + end.month * 100 + end.day).astype(np.int32)
    mcsec = (end.hour * 3600 + end.minute * 60 + end.second).astype(np.int32)
    units = f"days since {ref:%Y-%m-%d %H:%M:%S}"
    return np.asarray(days, float), np.asarray(bounds, float), np.asarray(mcdate), np.asarray(mcsec), units


def write_forcing(ds: xr.Dataset, path: str | Path, *, depth_m: float | None = None,
                  levgrnd: Sequence[float] = CLM5_NODE_DEPTHS,
                  levsoi: Sequence[float] = CLM5_NODE_DEPTHS,
                  tsoi_gradient_k_per_m: float = 0.0) -> Path:
    """Write `ds` (canonical: ``tsoil`` [degC], ``swc`` [m3 m-3], ``precip`` [mm per step] on
    (time, column), attrs ``step_seconds``, ``depth_m``) as the host's forcing file at `path`.

    depth_m : the measurement depth the drivers are valid at [m] (default ``ds.attrs['depth_m']``,
        else 0.15); it must lie within `levgrnd` and `levsoi`.
    levgrnd, levsoi : node depths of the written levels [m], increasing.
    tsoi_gradient_k_per_m : vertical temperature gradient of the written profile [K m-1].
    Returns the path. NaN drivers are written as 1e36 (CLM's spval) and stay missing in the host.
    """
    for var in ("tsoil", "swc", "precip"):
        if var not in ds:
            raise ValueError(f"write_forcing: dataset has no variable '{var}' (canonical drivers needed)")
    for var, units in (("tsoil", "degC"), ("swc", "m3 m-3"), ("precip", "mm")):
        if ds[var].attrs.get("units", units) != units:
            raise ValueError(f"write_forcing: '{var}' has units {ds[var].attrs['units']!r}; "
                             f"expected {units!r}")
    step = float(ds.attrs.get("step_seconds", 0) or 0)
    if step <= 0:
        t = pd.DatetimeIndex(ds["time"].values)
        step = float((t[1] - t[0]).total_seconds())
    depth = float(depth_m if depth_m is not None else ds.attrs.get("depth_m", 0.15))
    zg = np.asarray(levgrnd, float)
    zs = np.asarray(levsoi, float)
    for name, z in (("levgrnd", zg), ("levsoi", zs)):
        if z.ndim != 1 or z.size < 2 or np.any(np.diff(z) <= 0):
            raise ValueError(f"write_forcing: {name} must be >= 2 increasing depths, got {list(z)}")
        if not (z[0] <= depth <= z[-1]):
            raise ValueError(f"write_forcing: depth_m={depth} m lies outside {name} "
                             f"[{z[0]}, {z[-1]}] m")

    tsoil = ds["tsoil"].transpose("time", "column").values.astype(float)
    swc = ds["swc"].transpose("time", "column").values.astype(float)
    precip = ds["precip"].transpose("time", "column").values.astype(float)
    tsoi = (tsoil + T0C)[:, None, :] + tsoi_gradient_k_per_m * (zg - depth)[None, :, None]
    h2osoi = np.broadcast_to(swc[:, None, :], (swc.shape[0], zs.size, swc.shape[1]))
    rain = precip / step
    days, bounds, mcdate, mcsec, tunits = _clm_time(ds["time"].values, step)

    def field(dims, values, units, long_name):
        return xr.Variable(dims, np.where(np.isfinite(values), values, SPVAL),
                           {"units": units, "long_name": long_name, "cell_methods": "time: mean"})

    out = xr.Dataset(
        {
            "TSOI": field(("time", "levgrnd", "column"), tsoi, "K", "soil temperature (natural vegetated)"),
            "H2OSOI": field(("time", "levsoi", "column"), h2osoi, "mm3/mm3",
                            "volumetric soil water (natural vegetated)"),
            "RAIN": field(("time", "column"), rain, "mm/s", "atmospheric rain"),
            "time_bounds": xr.Variable(("time", "hist_interval"), bounds,
                                       {"long_name": "history time interval endpoints"}),
            "mcdate": xr.Variable("time", mcdate, {"long_name": "current date (YYYYMMDD)"}),
            "mcsec": xr.Variable("time", mcsec, {"long_name": "current seconds of current date",
                                                 "units": "s"}),
            "nstep": xr.Variable("time", np.arange(1, days.size + 1, dtype=np.int32),
                                 {"long_name": "time step"}),
        },
        coords={
            "time": xr.Variable("time", days, {"long_name": "time", "units": tunits,
                                               "calendar": "gregorian", "bounds": "time_bounds"}),
            "levgrnd": xr.Variable("levgrnd", zg, {"long_name": "coordinate ground levels",
                                                   "units": "m"}),
            "levsoi": xr.Variable("levsoi", zs, {"long_name": "coordinate soil levels (equivalent "
                                                 "to top nlevsoi levels of levgrnd)", "units": "m"}),
            "column": xr.Variable("column", np.asarray(ds["column"].values).astype(str),
                                  {"long_name": "column id of the source dataset"}),
        },
        attrs={
            "title": "rsoil_couple host forcing (CLM history conventions, hist_dov2xy = .false.)",
            "source": str(ds.attrs.get("source", ds.attrs.get("site", "unknown"))),
            "site": str(ds.attrs.get("site", "unknown")),
            "measurement_depth_m": depth,
            "tsoi_gradient_k_per_m": float(tsoi_gradient_k_per_m),
            "step_seconds": step,
            "Conventions": "CF-1.0",
        },
    )
    enc = {v: {"dtype": "float64", "_FillValue": SPVAL} for v in ("TSOI", "H2OSOI", "RAIN")}
    enc.update({v: {"_FillValue": None} for v in ("time", "time_bounds", "levgrnd", "levsoi")})
    enc.update({"mcdate": {"dtype": "int32"}, "mcsec": {"dtype": "int32"}, "nstep": {"dtype": "int32"}})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_netcdf(path, format="NETCDF4", engine="netcdf4", encoding=enc, unlimited_dims=["time"])
    return path
