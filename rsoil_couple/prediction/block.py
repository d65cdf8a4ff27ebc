"""The work of one block of columns in `predict`: read its drivers, run the model, return its arrays.

The same function serves predict's own process and dask workers. A dask worker starts with glibc's
malloc tuned by the nanny (``MALLOC_TRIM_THRESHOLD_=65536``), which also fixes the mmap threshold at
128 KiB: every libtorch tensor above that size became an mmap + munmap, so a window-model block of 250
columns x 720 steps took 517,000 page faults and 3.5 CPU-s in a worker against 5,000 and 2.5 CPU-s in
one process (docs/predict.md). `heap_kept` lifts both thresholds for the block and puts them back after.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import time as _time
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..core.streaming import STREAM_TIME_CHUNK
from ..data.ncopen import close_netcdf
from .inputs import (
    DEFAULT_BATCH_ROWS,
    OUTPUT_VARS,
    InputSpec,
    _as_indexer,
    bounded_chunk_cache,
    check_driver_ranges,
    open_input,
)

# glibc mallopt parameters (malloc.h) and the variables that set them at start-up
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MALLOC_ENV = {_M_TRIM_THRESHOLD: "MALLOC_TRIM_THRESHOLD_", _M_MMAP_THRESHOLD: "MALLOC_MMAP_THRESHOLD_"}
#: While a block runs: no trimming of the heap top, and allocations below this come from the heap [bytes]
#: (glibc's largest mmap threshold on 64-bit is 32 MiB).
BLOCK_MMAP_THRESHOLD = 32 * 2**20


@contextlib.contextmanager
def heap_kept():
    """Inside: freed memory stays in the heap for reuse (no trim, mmap only from 32 MiB), when this process
    was started with a fixed malloc configuration (``MALLOC_TRIM_THRESHOLD_`` / ``MALLOC_MMAP_THRESHOLD_``,
    as a dask nanny starts workers). Afterwards that configuration is set again and the heap trimmed, so
    the process holds no more memory between blocks than it did. Elsewhere (glibc's own adaptive
    thresholds) nothing changes.
    """
    libc = None
    if sys.platform.startswith("linux") and any(v in os.environ for v in _MALLOC_ENV.values()):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None)
            libc.mallopt, libc.malloc_trim  # noqa: B018 (glibc only)
    if libc is None:
        yield
        return
    libc.mallopt(_M_MMAP_THRESHOLD, BLOCK_MMAP_THRESHOLD)
    libc.mallopt(_M_TRIM_THRESHOLD, 2**30)
    try:
        yield
    finally:
        for param, var in _MALLOC_ENV.items():
            libc.mallopt(param, int(os.environ.get(var, 128 * 1024)))
        libc.malloc_trim(0)


@dataclass
class BlockResult:
    """What `predict_block` returns: the block's output arrays and where its time went.

    arrays : {'rsoil', 'rsoil_gc', 'resp_scalar'} float32 and {'status'} int8, each [time, columns of the
        block], in the output file's types (converting in the block keeps the writer's work small).
    read_s, compute_s : wall-clock seconds reading (and converting) the drivers, and running the model. [s]
    cpu_s : CPU seconds (all threads) of this process during the block. [s]
    pid : the process that ran the block (a dask worker's, or predict's own).
    """

    arrays: dict
    read_s: float
    compute_s: float
    cpu_s: float
    pid: int


@dataclass
class BlockDrivers:
    """A block's drivers as `read_block` returns them, with the reading's wall-clock and CPU seconds [s]."""

    drivers: xr.Dataset
    read_s: float
    cpu_s: float


def read_block(spec: InputSpec, columns: np.ndarray) -> BlockDrivers:
    """Read (and convert to canonical units) the drivers of one block of columns; their ranges checked."""
    c0, t0 = _time.process_time(), _time.perf_counter()
    with heap_kept():
        with bounded_chunk_cache():
            full = open_input(spec)
            try:
                ds = full.isel(column=_as_indexer(np.asarray(columns)))
                # an explicit synchronous scheduler: inside a dask worker the input is read by this task only
                drivers = ds[[v for v in spec.variables if v in ds.data_vars]].compute(scheduler="synchronous")
            finally:
                close_netcdf(full)     # under OPEN_LOCK: not while another thread opens the same file
        check_driver_ranges(drivers, spec.paths[0] if len(spec.paths) == 1 else
                            f"{spec.paths[0]} (+{len(spec.paths) - 1} files)")
    return BlockDrivers(drivers, _time.perf_counter() - t0, _time.process_time() - c0)


def predict_block(model_path: str, spec: InputSpec, columns: np.ndarray, policy: str,
                  strict: bool = False, threads: int = 1, batch_rows: int = DEFAULT_BATCH_ROWS,
                  time_chunk: int = STREAM_TIME_CHUNK, drivers: BlockDrivers | None = None,
                  run_threads: int = 1) -> BlockResult:
    """Run the core on one block of columns; the same function serves one process and dask workers.

    columns : indices (into the input's columns) of this block.
    drivers : the block's drivers already read by `read_block` (predict's own process reads the next
        block before it hands this one to its writer: both need the HDF5 lock); None: read them here.
    A streaming model file runs through `rsoil_couple.core.streaming` (one ``run`` call per
    `batch_rows` columns x `time_chunk` steps, `run_threads` blocks of columns at a time); a window model
    through the C++ coupler, step by step.
    Returns a `BlockResult` (arrays [time, len(columns)] and timings).
    """
    from ..core.emulate import emulate

    block = drivers if drivers is not None else read_block(spec, columns)
    c0, t0 = _time.process_time(), _time.perf_counter()
    with heap_kept():
        res = emulate(model_path, block.drivers, policy=policy, strict=strict, num_threads=threads,
                      chunk_size=batch_rows, time_chunk=time_chunk, out_dtype=np.float32, run_threads=run_threads)
        arrays = {v: np.asarray(res[v].transpose("time", "column").values).astype(
            "int8" if v == "status" else "float32", copy=False) for v in OUTPUT_VARS}
    return BlockResult(arrays, block.read_s, _time.perf_counter() - t0, block.cpu_s + _time.process_time() - c0,
                       os.getpid())
