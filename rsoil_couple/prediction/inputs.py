"""Inputs of batch prediction: the kind of file, a lazy open with a bounded chunk cache, model fit, column selection."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import netCDF4
import numpy as np
import xarray as xr

from ..data import check_physical_range, clm
from ..data.ncopen import close_netcdf, open_netcdf
from ..variables import DRIVER_UNITS as CANONICAL_UNITS
from ..variables import DRIVERS
from ..variables import OUTPUT_VARS as CF_OUTPUT_VARS

DEPTH_TOLERANCE_M = 0.005
# The HDF5/netCDF-C libraries are not thread-safe: with dask workers in threads (processes=False) the
# workers read the input through xarray while this process writes the output, so every direct
# netCDF4 call here holds the same lock xarray's netCDF4 backend takes, and ncopen.OPEN_LOCK (taken
# first), which serialises opens against each other and against these writes.
try:
    from xarray.backends.netCDF4_ import NETCDF4_PYTHON_LOCK as _NC_LOCK  # noqa: F401 (used by output, run)
except ImportError:  # pragma: no cover - older/newer xarray layout
    from xarray.backends.locks import HDF5_LOCK as _NC_LOCK  # noqa: F401
#: Rows per network forward call. libtorch's float32 kernels round differently with the batch size,
#: so fixed-size (padded) calls make every column's output independent of the blocking.
DEFAULT_BATCH_ROWS = 64
#: The variables a block returns and the output file holds: the coupler's outputs and their status.
OUTPUT_VARS = (*CF_OUTPUT_VARS, "status")


#: HDF5 chunk cache per open variable while predicting. netCDF-C's default (64 MiB per variable in
#: 4.10) could hold up to 7 x 64 MiB (3 drivers, 4 outputs) once variables are larger than that;
#: each chunk is read about once, so a small cache loses nothing and keeps memory independent of the
#: input size. (At 10,000 columns x 720 steps, 29 MB per variable, peak RSS was 394 MiB either way.)
CHUNK_CACHE_BYTES = 4 * 2**20


@contextlib.contextmanager
def bounded_chunk_cache(nbytes: int = CHUNK_CACHE_BYTES):
    """Files opened inside use an HDF5 chunk cache of `nbytes` per variable (process-wide setting)."""
    old = netCDF4.get_chunk_cache()
    netCDF4.set_chunk_cache(nbytes, old[1], old[2])
    try:
        yield
    finally:
        netCDF4.set_chunk_cache(*old)


@dataclass(frozen=True)
class InputSpec:
    """Where the drivers come from; picklable, so dask workers re-open the input themselves.

    paths : the input file(s); several only for CLM history files.
    kind : 'canonical' (NetCDF with tsoil/swc/precip on time, column), 'site' (anything
        `rsoil_couple.data.read_site` reads, e.g. the US-Hn1 CSV) or 'clm' (history files).
    depth_m : the model's depth; CLM soil levels are interpolated to it. [m]
    calendar, include_snow : CLM options (see `rsoil_couple.clm.read_drivers`).
    variables : the drivers the model reads (`model_variables`); only these are required and read.
    drop_variables : variables of a canonical file a block never opens (everything but `variables`
        and `time`, filled in by `predict` from its own open). A block must not read the file's
        NC_STRING variables (column names): HDF5 caches the file in a variable-length datatype, and
        once a second handle on a file has read strings and closed, the next open of that file
        segfaults (netcdf-c#2510, HDFGroup/hdf5#5359; netCDF-C 4.10.1 + HDF5 2.2.0 here). Only
        `predict`'s own handle reads the column names.
    """

    paths: tuple[str, ...]
    kind: str
    depth_m: float
    calendar: str | None = None
    include_snow: bool = False
    variables: tuple[str, ...] = DRIVERS
    drop_variables: tuple[str, ...] = ()


def model_variables(meta: dict) -> tuple[str, ...]:
    """The drivers a model reads (its past_vars then future_vars, each once), in `DRIVERS` order."""
    used = {v["name"] for v in meta.get("past_vars", []) + meta.get("future_vars", [])}
    return tuple(v for v in DRIVERS if v in used)


def detect_kind(paths: Sequence[str]) -> str:
    """'clm', 'canonical' or 'site' from the file names and contents."""
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f"{p}: input file not found")
    nc = [Path(p).suffix.lower() in (".nc", ".nc4", ".netcdf") for p in paths]
    if all(nc):
        if clm.is_history_file(paths[0]):
            return "clm"
        if len(paths) > 1:
            raise ValueError(f"{list(paths)}: several inputs are only supported for CLM history files")
        return "canonical"
    if len(paths) > 1:
        raise ValueError(f"{list(paths)}: several inputs are only supported for CLM history files")
    return "site"


def _finite_mean(x) -> float:
    """Mean of the finite values of `x` (NaN, without numpy's empty-slice warning, when none)."""
    x = np.asarray(x, dtype="float64").ravel()
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


def _open_canonical(path: str, variables: Sequence[str] = DRIVERS, drop: Sequence[str] = ()) -> xr.Dataset:
    """A canonical NetCDF opened lazily (dask), `variables` converted to canonical units lazily.

    Closing the result closes the file. ``encoding['other_variables']`` lists the file's variables
    besides `variables` and `time` (what a block's open drops, see `InputSpec`).
    """
    from ..data import convert_units

    ds = open_netcdf(path, chunks={}, drop_variables=list(drop) or None)
    try:
        for v in variables:
            if v not in ds.variables:
                raise ValueError(f"{path}: missing variable '{v}', which the model reads (a canonical "
                                 "file has tsoil [degC], swc [m3 m-3], precip [mm per step] on (time, column))")
            if set(ds[v].dims) != {"time", "column"}:
                raise ValueError(f"{path}: variable '{v}' has dims {ds[v].dims}; expected ('time', 'column')")
            if "units" not in ds[v].attrs:
                raise ValueError(f"{path}: variable '{v}' has no 'units' attribute")
        if not (np.issubdtype(ds["time"].dtype, np.datetime64) or ds["time"].dtype == object):
            raise ValueError(f"{path}: variable 'time' could not be decoded as CF time "
                             f"(units {ds['time'].attrs.get('units')!r})")
        step = ds.attrs.get("step_seconds")
        if step is None:
            step = clm.regular_step(clm.interval_seconds(ds["time"].values)[1:], f"{path}: variable 'time'")
        out = {}
        for v in variables:
            da = ds[v].transpose("time", "column")
            units = da.attrs["units"]
            # validate the unit now (on one value) so a bad unit fails before any work is done
            convert_units(np.zeros(1), units, v, step_seconds=float(step), where=f"{path}: variable '{v}'")
            out[v] = xr.apply_ufunc(convert_units, da, kwargs=dict(units=units, var=v,
                                    step_seconds=float(step), where=f"{path}: variable '{v}'"),
                                    dask="parallelized", output_dtypes=[np.float64],
                                    keep_attrs=False).assign_attrs(units=CANONICAL_UNITS[v],
                                                                   source_variable=v, source_units=units)
        res = xr.Dataset(out, coords={c: ds[c] for c in ds.coords if c != "time"})
        res = res.assign_coords(time=ds["time"])
        res.attrs = dict(ds.attrs)
        res.attrs["step_seconds"] = float(step)
        if "depth_m" not in res.attrs and "depth" in ds.coords:
            res.attrs["depth_m"] = _finite_mean(ds["depth"].values)
    except BaseException:
        close_netcdf(ds)
        raise
    res.set_close(ds.close)
    res.encoding["other_variables"] = tuple(str(v) for v in ds.variables if v not in (*variables, "time"))
    return res


def open_input(spec: InputSpec) -> xr.Dataset:
    """The drivers as a canonical (time, column) Dataset; lazy for NetCDF inputs."""
    if spec.kind == "clm":
        return clm.read_drivers(list(spec.paths), spec.depth_m, calendar=spec.calendar,
                                include_snow=spec.include_snow)
    if spec.kind == "canonical":
        return _open_canonical(spec.paths[0], spec.variables, spec.drop_variables)
    if spec.kind == "site":
        from ..data import read_site
        return read_site(spec.paths[0], variables=spec.variables)
    raise ValueError(f"unknown input kind {spec.kind!r}; expected 'clm', 'canonical' or 'site'")


def check_compatible(ds: xr.Dataset, meta: dict, where: str, model_path: str) -> list[str]:
    """Refuse drivers whose step or depth differ from the model's; return notes for the history."""
    notes = []
    step = ds.attrs.get("step_seconds")
    if step is None:
        raise ValueError(f"{where}: variable 'time': irregular or unknown time step; the model "
                         f"{model_path} needs a fixed step of {meta['step_seconds']} s")
    if abs(float(step) - float(meta["step_seconds"])) > 0.5:
        raise ValueError(f"{where}: variable 'time' has a step of {float(step):g} s but the model "
                         f"{model_path} was trained on steps of {meta['step_seconds']} s; resample "
                         "the drivers or use a model of that step")
    depth = ds.attrs.get("depth_m")
    depth = _finite_mean(depth) if depth is not None else float("nan")
    if np.isfinite(depth):
        if abs(depth - float(meta["depth_m"])) > DEPTH_TOLERANCE_M:
            raise ValueError(f"{where}: variable 'tsoil' is at {depth:g} m depth but the model "
                             f"{model_path} was trained at {meta['depth_m']} m; give drivers at "
                             "the model's depth")
    else:
        notes.append(f"input depth unknown; model depth {meta['depth_m']} m assumed")
    return notes


def check_driver_ranges(drivers: xr.Dataset, where: str) -> None:
    """The rule of the site readers (`rsoil_couple.data.check_physical_range`) on NetCDF drivers:
    more than 1 % of a driver outside its physical range means the file's units are wrong; the
    error names `where` (the file), the variable, its declared unit and the range.
    """
    for v in drivers.data_vars:
        da = drivers[v]
        check_physical_range(da.values, str(v), declared_units=da.attrs.get("source_units", "?"),
                             where=f"{where}: variable '{da.attrs.get('source_variable', v)}'")


def _selection(spec: str | None, ncol: int) -> np.ndarray:
    """Column indices from '--columns': 'a:b' (half-open) or 'i,j,k'; all columns when None."""
    if not spec:
        return np.arange(ncol)
    try:
        if ":" in spec:
            a, b = spec.split(":", 1)
            idx = np.arange(ncol)[slice(int(a) if a else None, int(b) if b else None)]
        else:
            idx = np.array([int(x) for x in spec.split(",") if x.strip()], dtype=int)
    except ValueError:
        raise ValueError(f"--columns {spec!r}: expected 'start:stop' or 'i,j,k' (column indices)") from None
    if idx.size == 0 or idx.min() < 0 or idx.max() >= ncol:
        raise ValueError(f"--columns {spec!r}: selects no column or one outside 0..{ncol - 1}")
    return idx


def _as_indexer(idx: np.ndarray):
    if idx.size and np.all(np.diff(idx) == 1):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx
