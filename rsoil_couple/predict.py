"""Batch prediction of soil respiration from NetCDF/CSV/CLM drivers through the C++ core, chunked over columns.

`rsoil-couple predict --model MODEL.pt --input IN [IN ...] --output OUT.nc` reads drivers (a canonical
NetCDF, a site CSV readable by `rsoil_couple.data`, or CLM history files), runs
`rsoil_couple.emulate` on one block of columns at a time (memory is bounded by the block, not by the
input) in this process or on a dask distributed cluster (`--scheduler ADDRESS`), and writes a
CF-1.10 NetCDF file under a temporary name that is renamed to OUT.nc only when every block is in.
See docs/predict.md.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import shlex
import sys
import time as _time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cftime
import netCDF4
import numpy as np
import xarray as xr

from . import __version__, clm

#: Status codes of docs/model_format.md (same numbers in Python, C and Fortran), from the core.
STATUS_MEANINGS = ("active", "extrapolating", "spinup", "missing", "impossible", "masked",
                   "extrapolation_fallback", "bad_output")  # == [s.lower() for s in rsoil_couple.coupler.STATUS_NAMES] (tested)
GC_PER_UMOL = clm.GC_PER_UMOL
DEPTH_TOLERANCE_M = 0.005
# The HDF5/netCDF-C libraries are not thread-safe: with dask workers in threads (processes=False) the
# workers read the input through xarray while this process writes the output, so every direct
# netCDF4 call here holds the same lock xarray's netCDF4 backend takes, and clm.OPEN_LOCK (taken
# first), which serialises opens against each other and against these writes.
try:
    from xarray.backends.netCDF4_ import NETCDF4_PYTHON_LOCK as _NC_LOCK
except ImportError:  # pragma: no cover - older/newer xarray layout
    from xarray.backends.locks import HDF5_LOCK as _NC_LOCK
CANONICAL_UNITS = {"tsoil": "degC", "swc": "m3 m-3", "precip": "mm"}
#: Rows per network forward call. libtorch's float32 kernels round differently with the batch size,
#: so fixed-size (padded) calls make every column's output independent of the blocking.
DEFAULT_BATCH_ROWS = 64
OUTPUT_VARS = ("rsoil", "rsoil_gc", "resp_scalar", "status")


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
    """

    paths: tuple[str, ...]
    kind: str
    depth_m: float
    calendar: str | None = None
    include_snow: bool = False


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


def _open_canonical(path: str) -> xr.Dataset:
    """A canonical NetCDF opened lazily (dask), drivers converted to canonical units lazily."""
    from .data import convert_units

    ds = clm.open_netcdf(path, chunks={})
    for v in ("tsoil", "swc", "precip"):
        if v not in ds.variables:
            raise ValueError(f"{path}: missing variable '{v}' (a canonical file has tsoil [degC], "
                             "swc [m3 m-3], precip [mm per step] on (time, column))")
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
    for v in ("tsoil", "swc", "precip"):
        da = ds[v].transpose("time", "column")
        units = da.attrs["units"]
        # validate the unit now (on one value) so a bad unit fails before any work is done
        convert_units(np.zeros(1), units, v, step_seconds=float(step), where=f"{path}: variable '{v}'")
        out[v] = xr.apply_ufunc(convert_units, da, kwargs=dict(units=units, var=v,
                                step_seconds=float(step), where=f"{path}: variable '{v}'"),
                                dask="parallelized", output_dtypes=[np.float64],
                                keep_attrs=False).assign_attrs(units=CANONICAL_UNITS[v])
    res = xr.Dataset(out, coords={c: ds[c] for c in ds.coords if c != "time"})
    res = res.assign_coords(time=ds["time"])
    res.attrs = dict(ds.attrs)
    res.attrs["step_seconds"] = float(step)
    if "depth_m" not in res.attrs and "depth" in ds.coords:
        res.attrs["depth_m"] = float(np.nanmean(ds["depth"].values))
    return res


def open_input(spec: InputSpec) -> xr.Dataset:
    """The drivers as a canonical (time, column) Dataset; lazy for NetCDF inputs."""
    if spec.kind == "clm":
        return clm.read_drivers(list(spec.paths), spec.depth_m, calendar=spec.calendar,
                                include_snow=spec.include_snow)
    if spec.kind == "canonical":
        return _open_canonical(spec.paths[0])
    if spec.kind == "site":
        from .data import read_site
        return read_site(spec.paths[0])
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
    depth = float(np.nanmean(depth)) if depth is not None and np.size(depth) else float("nan")
    if np.isfinite(depth):
        if abs(depth - float(meta["depth_m"])) > DEPTH_TOLERANCE_M:
            raise ValueError(f"{where}: variable 'tsoil' is at {depth:g} m depth but the model "
                             f"{model_path} was trained at {meta['depth_m']} m; give drivers at "
                             "the model's depth")
    else:
        notes.append(f"input depth unknown; model depth {meta['depth_m']} m assumed")
    return notes


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


def predict_block(model_path: str, spec: InputSpec, columns: np.ndarray, policy: str,
                  strict: bool = False, threads: int = 1, batch_rows: int = DEFAULT_BATCH_ROWS
                  ) -> dict[str, np.ndarray]:
    """Run the core on one block of columns; the same function serves one process and dask workers.

    columns : indices (into the input's columns) of this block.
    Returns {'rsoil', 'rsoil_gc', 'resp_scalar', 'status'}: numpy arrays [time, len(columns)].
    """
    from .emulate import emulate

    with bounded_chunk_cache():
        ds = open_input(spec).isel(column=_as_indexer(np.asarray(columns)))
        # an explicit synchronous scheduler: inside a dask worker the input is read by this task only
        drivers = ds[["tsoil", "swc", "precip"]].compute(scheduler="synchronous")
    res = emulate(model_path, drivers, policy=policy, strict=strict, num_threads=threads,
                  chunk_size=batch_rows)
    return {v: np.asarray(res[v].transpose("time", "column").values) for v in OUTPUT_VARS}


# ----------------------------------------------------------------------------------------------
# CF output
def _time_numbers(time: np.ndarray, step_s: float, calendar: str) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(time, time_bnds, units, calendar) as numbers; bounds are [t - step, t] (END stamps)."""
    units = "seconds since 1970-01-01 00:00:00"
    if np.issubdtype(np.asarray(time).dtype, np.datetime64):
        t = (np.asarray(time, dtype="datetime64[ns]") - np.datetime64("1970-01-01", "ns")) / np.timedelta64(1, "s")
        cal = "proleptic_gregorian"
    else:
        cal = calendar
        t = np.asarray(cftime.date2num(list(time), units, calendar=cal), dtype="float64")
    t = np.asarray(t, dtype="float64")
    return t, np.stack([t - step_s, t], axis=1), units, cal


def create_output(path: str, ds: xr.Dataset, columns: np.ndarray, meta: dict, attrs: dict,
                  chunk_columns: int) -> netCDF4.Dataset:
    """Create the CF NetCDF-4 output with all variables defined and coordinates written."""
    ntime, ncol = ds.sizes["time"], len(columns)
    nc = netCDF4.Dataset(path, "w", format="NETCDF4")
    nc.createDimension("time", ntime)
    nc.createDimension("column", ncol)
    nc.createDimension("nv", 2)
    t, tb, tunits, cal = _time_numbers(ds["time"].values, float(ds.attrs["step_seconds"]),
                                       str(ds.attrs.get("calendar", "standard")))
    v = nc.createVariable("time", "f8", ("time",))
    v.setncatts({"standard_name": "time", "long_name": "time at the END of each step", "units": tunits,
                 "calendar": cal, "axis": "T", "bounds": "time_bnds"})
    v[:] = t
    v = nc.createVariable("time_bnds", "f8", ("time", "nv"))
    v[:] = tb
    ids = ds["column"].values[columns]
    if ids.dtype.kind in "OUS":
        v = nc.createVariable("column", str, ("column",))
        v.setncatts({"long_name": "column (site) identifier", "cf_role": "timeseries_id"})
        for i, s in enumerate(ids):
            v[i] = str(s)
    else:
        v = nc.createVariable("column", "i8", ("column",))
        v.setncatts({"long_name": "column index in the input", "cf_role": "timeseries_id"})
        v[:] = np.asarray(ids, dtype="int64")
    coords = []
    for name, std, units in (("lat", "latitude", "degrees_north"), ("lon", "longitude", "degrees_east")):
        if name in ds.coords and ds[name].dims == ("column",):
            v = nc.createVariable(name, "f8", ("column",))
            v.setncatts({"standard_name": std, "units": units})
            v[:] = np.asarray(ds[name].values, dtype="float64")[columns]
            coords.append(name)
    cs = (min(ntime, max(1, 4_000_000 // max(1, min(chunk_columns, ncol)))), min(chunk_columns, ncol))
    common = {"zlib": True, "complevel": 1, "chunksizes": cs}
    coord_attr = " ".join(coords)
    defs = {
        "rsoil": ("f4", {"units": "umol m-2 s-1",
                         "long_name": "soil respiration (CO2 efflux from the soil surface)",
                         "comment": "no CF standard name exists for total soil respiration "
                                    "(heterotrophic + root); 1 umol CO2 m-2 s-1 = 12.011e-6 gC m-2 s-1",
                         "cell_methods": "time: mean"}),
        "rsoil_gc": ("f4", {"units": "g m-2 s-1",
                            "long_name": "soil respiration as a carbon mass flux (gC m-2 s-1, CLM's unit)",
                            "cell_methods": "time: mean"}),
        "resp_scalar": ("f4", {"units": "1",
                          "long_name": "respiration scalar rsoil_model / rsoil_q10_reference",
                          "cell_methods": "time: mean"}),
    }
    for name, (dtype, a) in defs.items():
        var = nc.createVariable(name, dtype, ("time", "column"), fill_value=np.float32(np.nan), **common)
        var.setncatts({**a, **({"coordinates": coord_attr} if coords else {})})
    var = nc.createVariable("status", "i1", ("time", "column"), fill_value=np.int8(-1), **common)
    var.setncatts({"long_name": "coupler status of each column and step",
                   "flag_values": np.arange(len(STATUS_MEANINGS), dtype="i1"),
                   "flag_meanings": " ".join(STATUS_MEANINGS),
                   "comment": "0-1: the network ran; 2-6: the model's Q10 fallback (docs/model_format.md)",
                   **({"coordinates": coord_attr} if coords else {})})
    nc.setncatts(attrs)
    return nc


@dataclass
class PredictResult:
    """What `predict` did: where, how much, how fast, and the status counts."""

    output: str
    n_columns: int
    n_time: int
    status_counts: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def column_steps_per_s(self) -> float:
        return self.n_columns * self.n_time / self.seconds if self.seconds else float("nan")


def predict(model_path: str | os.PathLike, inputs: str | os.PathLike | Sequence, output: str | os.PathLike,
            *, policy: str = "supplied", columns: str | None = None, chunk_columns: int = 256,
            scheduler: str | None = None, strict: bool = False, calendar: str | None = None,
            include_snow: bool = False, progress: bool = True, threads: int = 1,
            batch_rows: int = DEFAULT_BATCH_ROWS,
            command: str | None = None) -> PredictResult:
    """Predict Rsoil for every (selected) column of `inputs` and write a CF NetCDF to `output`.

    model_path : model file (TorchScript + rsoil_meta.json).
    inputs : one input path or a list (CLM history files).
    policy : future-driver policy of the core ('supplied', 'lagged', 'persistence').
    columns : '--columns' selection ('a:b' or 'i,j,k'); all when None.
    chunk_columns : columns per block; peak memory grows with it, not with the input size.
    scheduler : address of a dask distributed scheduler; None runs blocks in this process.
    threads : torch threads per block (default 1: parallelism comes from blocks on workers; 0: torch's default).
    batch_rows : rows of every network forward call (the core pads the last one), so a column's value
        does not depend on which other columns share its block (0: one call per block, faster but
        float32 results then vary in the last bits with the block's size).
    Returns a `PredictResult`; raises ValueError/FileNotFoundError naming file and variable.
    """
    from .export import load_model

    t0 = _time.perf_counter()
    model_path = os.fspath(model_path)
    paths = [os.fspath(p) for p in ([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)]
    _, meta = load_model(model_path)
    kind = detect_kind(paths)
    spec = InputSpec(tuple(paths), kind, float(meta["depth_m"]), calendar, include_snow)
    with bounded_chunk_cache():  # xarray keeps the file open: later blocks reuse this handle
        ds = open_input(spec)
    where = paths[0] if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} files)"
    notes = check_compatible(ds, meta, where, model_path)
    sel = _selection(columns, ds.sizes["column"])
    chunk_columns = max(1, int(chunk_columns))
    blocks = [sel[i:i + chunk_columns] for i in range(0, len(sel), chunk_columns)]

    output = os.fspath(output)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{output}.partial-{os.getpid()}"
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    command = command or "rsoil_couple.predict.predict(" + ", ".join(map(repr, [model_path, paths, output])) + ")"
    attrs = {
        "Conventions": "CF-1.10",
        "title": f"Soil respiration predicted by rsoil_couple ({meta['model_kind']}) for {ds.attrs.get('site', where)}",
        "institution": "rsoil_couple",
        "source": f"rsoil_couple {__version__} C++ core, model {meta['model_kind']} id {meta['model_id']}",
        "history": (f"{now}: {command} (model {model_path}: kind {meta['model_kind']}, "
                    f"id {meta['model_id']}, torch {meta.get('torch_version', '?')}, "
                    f"policy {policy}{', strict' if strict else ''})"),
        "references": "Jiang et al. (2022) Front. Environ. Sci. 10:1035540, doi:10.3389/fenvs.2022.1035540",
        "model_path": model_path, "model_id": str(meta["model_id"]), "model_kind": str(meta["model_kind"]),
        "model_step_seconds": float(meta["step_seconds"]), "model_depth_m": float(meta["depth_m"]),
        "policy": policy, "batch_rows": int(batch_rows), "strict": int(bool(strict)), "input_kind": kind, "input_files": ", ".join(paths),
        "step_seconds": float(ds.attrs["step_seconds"]),
    }
    for key in ("tsoil_source", "swc_source"):
        if key in ds.attrs:
            attrs[f"input_{key}"] = str(ds.attrs[key])
    if notes:
        attrs["comment"] = "; ".join(notes)

    counts = np.zeros(len(STATUS_MEANINGS), dtype="int64")
    with clm.OPEN_LOCK, _NC_LOCK, bounded_chunk_cache():
        nc = create_output(tmp, ds, sel, meta, attrs, chunk_columns)
    try:
        from tqdm import tqdm
        bar = tqdm(total=len(sel), unit="col", desc="predict", disable=not progress, file=sys.stderr)
        offsets = np.cumsum([0] + [len(b) for b in blocks])

        def write(i: int, res: dict) -> None:
            a, b = int(offsets[i]), int(offsets[i + 1])
            st = res["status"].astype("int8")
            with clm.OPEN_LOCK, _NC_LOCK:
                for v in ("rsoil", "rsoil_gc", "resp_scalar"):
                    nc[v][:, a:b] = res[v].astype("float32")
                nc["status"][:, a:b] = st
            counts[:] += np.bincount(st.ravel().astype("int64"), minlength=len(STATUS_MEANINGS))[:len(counts)]
            bar.update(b - a)

        if scheduler is None:
            for i, cols in enumerate(blocks):
                write(i, predict_block(model_path, spec, cols, policy, strict, threads, batch_rows))
        else:
            _run_distributed(scheduler, model_path, spec, blocks, policy, strict, threads, batch_rows, write)
        bar.close()
        status_counts = {m: int(c) for m, c in zip(STATUS_MEANINGS, counts)}
        with clm.OPEN_LOCK, _NC_LOCK:
            for m, c in status_counts.items():
                nc.setncattr(f"status_count_{m}", np.int64(c))
            nc.close()
        os.replace(tmp, output)
    except BaseException:
        with clm.OPEN_LOCK, _NC_LOCK:
            if nc.isopen():
                nc.close()
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return PredictResult(output, len(sel), ds.sizes["time"], status_counts, _time.perf_counter() - t0)


def _run_distributed(address: str, model_path: str, spec: InputSpec, blocks: list, policy: str,
                     strict: bool, threads: int, batch_rows: int, write) -> None:
    """Blocks as tasks on a dask distributed cluster; at most two per worker in flight (bounded memory).

    Workers re-open the input from `spec`, so they must see the same files (a shared file system).
    """
    from distributed import Client, as_completed

    with Client(address) as client:
        nworkers = max(1, len(client.scheduler_info().get("workers", {})))
        limit = 2 * nworkers
        todo = list(enumerate(blocks))
        pending = {}

        def submit():
            i, cols = todo.pop(0)
            fut = client.submit(predict_block, model_path, spec, cols, policy, strict, threads, batch_rows,
                                key=f"rsoil-predict-{os.getpid()}-{i}", pure=False)
            pending[fut] = i
            return fut

        while todo and len(pending) < limit:
            submit()
        seq = as_completed(list(pending))
        for fut in seq:
            i = pending.pop(fut)
            write(i, fut.result())
            fut.release()
            if todo:
                seq.add(submit())


def plot_prediction(output: str | os.PathLike, png: str | os.PathLike, column: int = 0,
                    drivers: xr.Dataset | None = None) -> Path:
    """Figure of one column of a predict output: Rsoil coloured by status, daily mean, and (when
    `drivers` are given) soil temperature, soil water and rain below it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    with xr.open_dataset(output) as ds:
        d = ds.isel(column=column).load()
    t = pd.DatetimeIndex(d["time"].values) if np.issubdtype(d["time"].dtype, np.datetime64) else \
        pd.DatetimeIndex([pd.Timestamp(x.isoformat()) for x in d["time"].values])
    r, st = d["rsoil"].values, d["status"].values
    n = 1 + (2 if drivers is not None else 0)
    fig, axes = plt.subplots(n, 1, figsize=(13, 3.2 * n), sharex=True, squeeze=False)
    ax = axes[0, 0]
    for code, name in enumerate(STATUS_MEANINGS):
        m = st == code
        if m.any():
            ax.plot(t[m], r[m], ".", ms=1.5, label=f"{name} ({int(m.sum())})")
    daily = pd.Series(r, index=t - pd.Timedelta("1ns")).resample("1D").mean()
    ax.plot(daily.index + pd.Timedelta("12h"), daily.values, "k-", lw=1, label="daily mean")
    ax.set_ylabel("Rsoil [µmol m$^{-2}$ s$^{-1}$]")
    ax.legend(fontsize=7, ncol=4, markerscale=5)
    ax.set_title(f"{d.attrs.get('title', '')}\nmodel {d.attrs.get('model_kind')} {d.attrs.get('model_id')}, "
                 f"policy {d.attrs.get('policy')}", fontsize=9)
    if drivers is not None:
        dv = drivers.isel(column=column)
        axes[1, 0].plot(t, dv["tsoil"].values, lw=0.5, color="tab:red")
        axes[1, 0].set_ylabel("Tsoil [°C]")
        axes[2, 0].plot(t, dv["swc"].values, lw=0.8, color="tab:green")
        axes[2, 0].set_ylabel("SWC [m$^3$ m$^{-3}$]")
        ax2 = axes[2, 0].twinx()
        ax2.bar(t, dv["precip"].values, width=float(drivers.attrs["step_seconds"]) / 86400, color="tab:blue")
        ax2.set_ylabel("rain [mm/step]")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return Path(png)


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
    from .data import read_site

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
        units = {"tsoil": "degC", "swc": "m3 m-3", "precip": "mm"}
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


# ----------------------------------------------------------------------------------------------
# command line
def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model file (TorchScript + rsoil_meta.json)")
    parser.add_argument("--input", required=True, nargs="+",
                        help="canonical NetCDF, site CSV, or CLM history file(s) opened as one dataset")
    parser.add_argument("--output", required=True, help="CF NetCDF to write (renamed into place when complete)")
    parser.add_argument("--policy", default="supplied", choices=("supplied", "lagged", "persistence"),
                        help="future-driver policy of the core (default: supplied, for offline runs)")
    parser.add_argument("--columns", default=None, help="column indices: 'start:stop' or 'i,j,k' (default all)")
    parser.add_argument("--chunk-columns", type=int, default=256, help="columns per block (bounds memory)")
    parser.add_argument("--scheduler", default=None, help="dask distributed scheduler address (default: this process)")
    parser.add_argument("--strict", action="store_true", help="columns outside the training envelope fall back to Q10")
    parser.add_argument("--clm-calendar", default=None, help="override the calendar CLM files declare (e.g. noleap)")
    parser.add_argument("--include-snow", action="store_true", help="CLM input: precip = RAIN + SNOW")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per block (default 1; 0: torch's default)")
    parser.add_argument("--batch-rows", type=int, default=DEFAULT_BATCH_ROWS,
                        help="rows per network call, padded (default 64: results independent of blocking)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--plot", default=None, help="also write a PNG of the first selected column")


def run(args: argparse.Namespace) -> int:
    command = "rsoil-couple " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["predict"] \
        else "rsoil-couple predict --model {} --input {} --output {}".format(args.model, " ".join(args.input), args.output)
    res = predict(args.model, args.input, args.output, policy=args.policy, columns=args.columns,
                  chunk_columns=args.chunk_columns, scheduler=args.scheduler, strict=args.strict,
                  calendar=args.clm_calendar, include_snow=args.include_snow,
                  progress=not args.no_progress, threads=args.threads, batch_rows=args.batch_rows,
                  command=command)
    total = sum(res.status_counts.values())
    print(f"wrote {res.output}: {res.n_columns} columns x {res.n_time} steps in {res.seconds:.1f} s "
          f"({res.column_steps_per_s:,.0f} column-steps/s)")
    print("status counts: " + ", ".join(f"{k} {v} ({100 * v / total:.1f} %)" for k, v in res.status_counts.items()))
    if args.plot:
        spec = InputSpec(tuple(args.input), detect_kind(args.input), float("nan"), args.clm_calendar,
                         args.include_snow)
        drivers = open_input(spec) if spec.kind != "clm" else None
        if drivers is not None:
            sel = _selection(args.columns, drivers.sizes["column"])
            drivers = drivers.isel(column=sel[:1]).compute(scheduler="synchronous")
        print(f"wrote {plot_prediction(res.output, args.plot, 0, drivers)}")
    print(json.dumps({"status_counts": res.status_counts}))
    return 0
