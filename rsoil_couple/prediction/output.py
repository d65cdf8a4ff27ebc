"""The CF-1.10 output of batch prediction: time axis, column ids, the coupler's outputs (attributes from variables.py)."""
from __future__ import annotations

import contextlib
import errno
import glob
import os
import re

import cftime
import netCDF4
import numpy as np
import xarray as xr

from ..variables import OUTPUT_VARS as CF_OUTPUT_VARS
from ..variables import status_attrs


def check_output(output, inputs, model=None) -> str:
    """`output` as a path, refused (ValueError, one line) before any work when it cannot be written
    or is one of `inputs` or the `model` file (the same file by path, symbolic or hard link).

    Its directory is created when missing; a probe file is created and removed in it, which is the
    only test that also holds for root and read-only file systems.
    """
    out = os.fspath(output)
    if not out.strip():
        raise ValueError("--output is empty; give the NetCDF file to write, e.g. --output out.nc")
    if os.path.isdir(out):
        raise ValueError(f"{out}: the output is a directory; give a file name, e.g. {os.path.join(out, 'out.nc')}")
    for what, p in [("input file", p) for p in inputs] + ([("model file", model)] if model else []):
        p = os.fspath(p)
        if (os.path.exists(out) and os.path.exists(p) and os.path.samefile(out, p)) \
                or os.path.realpath(out) == os.path.realpath(p):
            raise ValueError(f"{out}: the output is the {what} {p}; write to another file")
    parent = os.path.dirname(os.path.abspath(out))
    above = parent
    while not os.path.exists(above):
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        raise ValueError(f"{out}: cannot write the output: {above} is a file, not a directory")
    probe = f"{out}.partial-{os.getpid()}"
    try:
        os.makedirs(parent, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):  # only a dead run of an earlier process with this pid
            os.remove(probe)
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        os.remove(probe)
    except OSError as exc:
        what = errno.errorcode.get(exc.errno, "") if exc.errno else ""
        raise ValueError(f"{out}: cannot write the output: cannot create a file in {parent} "
                         f"({exc.strerror or exc}{', ' + what if what else ''})") from None
    return out


def remove_stale_partials(output: str) -> list[str]:
    """Remove `output`.partial-<pid> files whose process is gone (left by a killed run); returns them.

    A partial file of a process that still runs (another predict writing the same output) is kept.
    """
    removed = []
    for p in glob.glob(glob.escape(output) + ".partial-*"):
        m = re.fullmatch(r".*\.partial-(\d+)", p)
        if not m or int(m.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            with contextlib.suppress(FileNotFoundError):
                os.remove(p)
            removed.append(p)
        except PermissionError:  # a live process of another user
            pass
    return removed


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


#: Values per HDF5 chunk of an output variable (time x the block's columns): 4 MiB of float32. A block's
#: writer holds the HDF5 lock while it deflates a chunk, so smaller chunks let the next block's reading
#: in (the other thread) wait less; 2**20 values compress as well as 4e6 did (zlib's window is 32 KiB).
CHUNK_VALUES = 2**20


def create_output(path: str, ds: xr.Dataset, columns: np.ndarray, meta: dict, attrs: dict,
                  chunk_columns: int, deflate: int = 1) -> netCDF4.Dataset:
    """Create the CF NetCDF-4 output with all variables defined and coordinates written.

    deflate : zlib level of the output variables (0: not compressed; 1, the default, is the fastest
        level; measured on streaming-model output: 1.6x smaller at ~0.3 µs of CPU per column-step).
    """
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
    cs = (min(ntime, max(1, CHUNK_VALUES // max(1, min(chunk_columns, ncol)))), min(chunk_columns, ncol))
    common = {"zlib": int(deflate) > 0, "complevel": max(1, int(deflate)), "chunksizes": cs}
    coord_attr = " ".join(coords)
    for name, a in CF_OUTPUT_VARS.items():
        var = nc.createVariable(name, "f4", ("time", "column"), fill_value=np.float32(np.nan), **common)
        var.setncatts({**a, **({"coordinates": coord_attr} if coords else {})})
    var = nc.createVariable("status", "i1", ("time", "column"), fill_value=np.int8(-1), **common)
    var.setncatts({**status_attrs(), **({"coordinates": coord_attr} if coords else {})})
    nc.setncatts(attrs)
    return nc


class BlockWriter:
    """Writes blocks of columns into the open output in one background thread, counting statuses.

    The writes (HDF5 deflate compression, most of the writer's time) release the GIL, so they overlap
    with the next block's reading and model run in this process, and with receiving results from dask
    workers. At most `depth` blocks wait for the thread (memory stays bounded by the block size); a
    write error is raised by the next `put` or by `close`.

    nc : the output (`create_output`); offsets : [nblocks + 1] first output column of each block;
    nstatus : number of status codes; lock : held around every netCDF call (HDF5 is not thread-safe).
    """

    def __init__(self, nc: netCDF4.Dataset, offsets, nstatus: int, lock, progress=None, depth: int = 1):
        import queue
        import threading

        self.nc, self.offsets, self.lock, self.progress = nc, np.asarray(offsets), lock, progress
        self.counts = np.zeros(nstatus, dtype="int64")
        with lock:
            chunks = {v: nc[v].chunking() for v in nc.variables if nc[v].dimensions == ("time", "column")}
        self._chunk_steps = {v: int(c[0]) for v, c in chunks.items() if isinstance(c, list)}
        #: seconds summed over blocks: reading, model (in the blocks), CPU of the blocks, writing here [s]
        self.seconds = {"read_s": 0.0, "compute_s": 0.0, "block_cpu_s": 0.0, "write_s": 0.0}
        #: blocks per process that ran them (pid -> count)
        self.blocks_by_pid: dict[int, int] = {}
        self._error: BaseException | None = None
        self._queue = queue.Queue(maxsize=max(1, int(depth)))
        self._thread = threading.Thread(target=self._loop, name="rsoil-predict-writer", daemon=True)
        self._thread.start()

    def _write(self, i: int, res) -> None:
        import time

        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        t0 = time.perf_counter()
        for v, x in res.arrays.items():
            # one chunk row at a time, the lock released in between: a block's reading in the other
            # thread waits for one slice, not for the whole block's compression
            step = self._chunk_steps.get(v) or x.shape[0]
            for t in range(0, x.shape[0], step):
                with self.lock:
                    self.nc[v][t:t + step, a:b] = x[t:t + step]
        self.seconds["write_s"] += time.perf_counter() - t0
        st = res.arrays["status"]
        self.counts += np.bincount(st.ravel().astype("int64"), minlength=len(self.counts))[:len(self.counts)]
        for k, x in (("read_s", res.read_s), ("compute_s", res.compute_s), ("block_cpu_s", res.cpu_s)):
            self.seconds[k] += x
        self.blocks_by_pid[res.pid] = self.blocks_by_pid.get(res.pid, 0) + 1
        if self.progress is not None:
            self.progress(b - a)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                try:
                    self._write(*item)
                except BaseException as exc:  # handed to the caller's thread
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, i: int, res) -> None:
        """Queue block `i`'s `BlockResult` for writing (blocks while `depth` blocks already wait)."""
        self._raise()
        self._queue.put((i, res))

    def close(self) -> None:
        """Wait until every queued block is written; raise the first write error, if any."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise()
