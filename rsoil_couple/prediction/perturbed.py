"""A scale-test input: real drivers replicated into many columns with per-column perturbations (benchmarks, tests)."""
from __future__ import annotations

import os
from pathlib import Path

import netCDF4
import numpy as np

from ..variables import DRIVER_UNITS
from .output import _time_numbers


# ----------------------------------------------------------------------------------------------
# scale-test input
def write_perturbed_columns(source: str | os.PathLike, path: str | os.PathLike, ncol: int, *,
                            ntime: int | None = None, start: int = 0, seed: int = 0,
                            block: int = 1000) -> Path:
    """A canonical NetCDF of `ncol` columns made from one real site's drivers, each column perturbed.

    source : a site file `rsoil_couple.data.read_site` reads (its first column is used).
    ntime, start : the steps taken from the source ([start, start + ntime); all when None).
    Column j gets: its own time shift (0..47 steps, a different phase of the same weather), a soil
    temperature offset (uniform -4..+4 degC), a soil-water factor (0.7..1.3, kept in 0.01..0.6) and a
    rain factor (0.5..1.5). Written block by block (float32, NetCDF chunks of 64 columns), so
    building a 10,000-column file needs memory for `block` columns only. Reproducible for a seed.
    """
    from ..data import read_site

    src = read_site(source)
    n = src.sizes["time"] - start if ntime is None else int(ntime)
    pad = 48
    if start + n + pad > src.sizes["time"]:
        raise ValueError(f"{source}: {src.sizes['time']} steps; {start + n + pad} needed")
    base = {v: src[v].isel(column=0).values[start:start + n + pad].astype("float64")
            for v in ("tsoil", "swc", "precip")}
    rng = np.random.default_rng(seed)
    shift = rng.integers(0, pad, ncol)
    dt = rng.uniform(-4.0, 4.0, ncol)
    fw = rng.uniform(0.7, 1.3, ncol)
    fp = rng.uniform(0.5, 1.5, ncol)
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
        nc.createDimension("time", n)
        nc.createDimension("column", ncol)
        tnum, _, tunits, cal = _time_numbers(src["time"].values[start:start + n], 0.0, "standard")
        v = nc.createVariable("time", "f8", ("time",))
        v.setncatts({"units": tunits, "calendar": cal, "standard_name": "time",
                     "long_name": "time at the END of each step"})
        v[:] = tnum
        v = nc.createVariable("column", "i8", ("column",))
        v[:] = np.arange(ncol)
        units = DRIVER_UNITS
        for name, u in units.items():
            var = nc.createVariable(name, "f4", ("time", "column"), chunksizes=(n, min(64, ncol)),
                                    fill_value=np.float32(np.nan))
            var.units = u
        for a in range(0, ncol, block):
            b = min(ncol, a + block)
            idx = np.arange(n)[:, None] + (pad - shift[a:b])[None, :]
            nc["tsoil"][:, a:b] = (base["tsoil"][idx] + dt[a:b]).astype("float32")
            nc["swc"][:, a:b] = np.clip(base["swc"][idx] * fw[a:b], 0.01, 0.6).astype("float32")
            nc["precip"][:, a:b] = (base["precip"][idx] * fp[a:b]).astype("float32")
        nc.setncatts({"Conventions": "CF-1.10", "site": f"{src.attrs.get('site', 'site')} x {ncol} perturbed",
                      "source": f"{Path(source).name}, per-column perturbations (seed {seed})",
                      "step_seconds": float(src.attrs["step_seconds"]),
                      "depth_m": float(src.attrs.get("depth_m", np.nan)), "synthetic": "perturbed real drivers"})
    os.replace(tmp, path)
    return path
