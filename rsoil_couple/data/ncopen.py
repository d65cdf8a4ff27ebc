"""Opening and closing NetCDF files under one process-wide lock (HDF5 is not thread-safe).

Every module that opens an input NetCDF file (CLM history files, canonical predict inputs, evaluation
sources) goes through `open_netcdf` / `close_netcdf`; `rsoil_couple.prediction`'s output writer takes
`OPEN_LOCK` too, before xarray's own netCDF4 lock, always in that order.
"""
from __future__ import annotations

import threading

import xarray as xr

__all__ = ["OPEN_LOCK", "close_netcdf", "open_netcdf"]

#: Serialises opening AND closing NetCDF files within a process. HDF5 is not thread-safe, and xarray's
#: lock covers each call but not an open's sequence of calls: two threaded dask workers opening at once
#: failed with "NetCDF: Can't open HDF5 attribute", and a worker closing its handle on the input while
#: another was half-way through opening the same file (HDF5 shares one file object between the handles)
#: segfaulted once in CI (stop 17; closes now take it too: `close_netcdf`). rsoil_couple.predict's
#: writer holds it too (taken before xarray's lock, always in that order).
OPEN_LOCK = threading.Lock()


def open_netcdf(path, **kwargs) -> xr.Dataset:
    """`xr.open_dataset` under `OPEN_LOCK`, with an unreadable file reported as ValueError naming it."""
    try:
        with OPEN_LOCK:
            return xr.open_dataset(path, **kwargs)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable NetCDF file ({exc})") from None


def close_netcdf(ds) -> None:
    """Close a dataset `open_netcdf` opened, under `OPEN_LOCK` (never between the calls of another open)."""
    with OPEN_LOCK:
        ds.close()
