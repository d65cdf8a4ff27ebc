"""Batch prediction of soil respiration from NetCDF/CSV/CLM drivers through the C++ core, chunked over columns.

`rsoil-couple predict --model MODEL.pt --input IN [IN ...] --output OUT.nc` reads drivers (a canonical
NetCDF, a site CSV readable by `rsoil_couple.data`, or CLM history files), runs
`rsoil_couple.emulate` on one block of columns at a time (memory is bounded by the block, not by the
input) in this process or on a dask distributed cluster (`--scheduler ADDRESS`, or `--workers N` for one
started here), and writes a CF-1.10 NetCDF file under a temporary name that is renamed to OUT.nc only
when every block is in.
See docs/predict.md.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import json
import os
import shlex
import sys
import time as _time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import xarray as xr

from .. import __version__
from ..core.streaming import STREAM_BATCH_ROWS, STREAM_CHUNK_COLUMNS, STREAM_TIME_CHUNK, is_streaming
from ..data.ncopen import OPEN_LOCK
from ..pretrained import resolve
from ..variables import STATUS_NAMES
from .block import predict_block, read_block
from .cluster import LEAN_CONFIG, check_workers, local_cluster
from .inputs import (
    _NC_LOCK,
    DEFAULT_BATCH_ROWS,
    InputSpec,
    _selection,
    bounded_chunk_cache,
    check_compatible,
    detect_kind,
    model_variables,
    open_input,
)
from .output import BlockWriter, check_output, create_output, remove_stale_partials

#: Columns per block of window models by default (streaming models: `STREAM_CHUNK_COLUMNS`).
DEFAULT_CHUNK_COLUMNS = 256
#: Status names as predict reports them (lower case), in code order.
STATUS_MEANINGS = tuple(s.lower() for s in STATUS_NAMES)


@dataclass
class PredictResult:
    """What `predict` did: where, how much, how fast, and the status counts."""

    output: str
    n_columns: int
    n_time: int
    status_counts: dict = field(default_factory=dict)
    seconds: float = 0.0
    input_spec: InputSpec | None = None
    #: seconds summed over blocks (read_s, compute_s, block_cpu_s) and writing (write_s) [s]
    stage_seconds: dict = field(default_factory=dict)
    #: blocks per process that ran them (pid -> count): how the work spread over dask workers
    blocks_by_pid: dict = field(default_factory=dict)

    @property
    def column_steps_per_s(self) -> float:
        """Throughput of the run: column-steps per second of wall-clock time.

        Returns
        -------
        float
            ``n_columns * n_time / seconds``; NaN when ``seconds`` is 0 [column-steps s-1]
        """
        return self.n_columns * self.n_time / self.seconds if self.seconds else float("nan")


def predict(model_path: str | os.PathLike, inputs: str | os.PathLike | Sequence, output: str | os.PathLike,
            *, policy: str = "supplied", columns: str | None = None, chunk_columns: int | None = None,
            scheduler: str | None = None, strict: bool = False, calendar: str | None = None,
            include_snow: bool = False, progress: bool = True, threads: int = 1,
            batch_rows: int | None = None, time_chunk: int = STREAM_TIME_CHUNK, deflate: int = 1,
            command: str | None = None, run_threads: int = 1, workers: int | None = None) -> PredictResult:
    """Predict Rsoil for every (selected) column of `inputs` and write a CF NetCDF to `output`.

    model_path : model file (TorchScript + rsoil_meta.json) or the name of a pretrained model
        (`rsoil_couple.pretrained.resolve`; the output's history records the file it names).
    inputs : one input path or a list (CLM history files).
    policy : future-driver policy of the core ('supplied', 'lagged', 'persistence').
    columns : '--columns' selection ('a:b' or 'i,j,k'); all when None.
    chunk_columns : columns per block; peak memory grows with it, not with the input size. None:
        `DEFAULT_CHUNK_COLUMNS` (256) for window models, `STREAM_CHUNK_COLUMNS` (1024) for streaming models
        (a block narrower than ``batch_rows`` is padded to it).
    scheduler : address of a dask distributed scheduler; None runs blocks in this process.
    workers : start a local dask cluster of this many worker processes (one thread each, dask's periodic
        work slowed by `cluster.LEAN_CONFIG`) for this call and run the blocks there; not with `scheduler`.
    threads : torch threads per block (default 1: parallelism comes from blocks on workers; 0: torch's default).
    batch_rows : rows of every network forward call (the core pads the last one), so a column's value
        does not depend on which other columns share its block (0: one call per block, faster but
        float32 results then vary in the last bits with the block's size). None: `DEFAULT_BATCH_ROWS`
        for window models, `STREAM_BATCH_ROWS` for streaming models (rows of every ``run`` call).
    time_chunk : streaming models only: steps per ``run`` call, the state carried from chunk to chunk
        (0: the whole record in one call); results do not depend on it.
    run_threads : streaming models only: blocks of ``batch_rows`` columns of a block run in this many threads
        in the process that runs the block (values unchanged; for idle cores, with ``chunk_columns`` at least
        ``run_threads x batch_rows``).
    deflate : zlib level of the output (0: uncompressed, about 1.6x larger and no compression work for
        the process that writes; see docs/predict.md).
    Returns a `PredictResult`; raises ValueError/FileNotFoundError naming file and variable.
    The output is checked before any work (writable, not one of the inputs); partial files that
    killed runs left for the same output are removed.
    """
    from ..modelfile.export import load_model

    t0 = _time.perf_counter()
    model_path = os.fspath(resolve(model_path))
    paths = [os.fspath(p) for p in ([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)]
    kind = detect_kind(paths)
    output = check_output(output, paths, model_path)
    if not 0 <= int(deflate) <= 9:
        raise ValueError(f"--deflate {deflate}: expected a zlib level 0..9 (0: no compression)")
    if workers is not None and scheduler is not None:
        raise ValueError(f"--workers {workers} and --scheduler {scheduler}: give one (a cluster to start here, "
                         "or the address of a running one)")
    if workers is not None:
        workers = check_workers(workers)   # refused before the input is opened
    _, meta = load_model(model_path)
    if batch_rows is None:
        batch_rows = STREAM_BATCH_ROWS if is_streaming(meta) else DEFAULT_BATCH_ROWS
    if chunk_columns is None:
        chunk_columns = STREAM_CHUNK_COLUMNS if is_streaming(meta) else DEFAULT_CHUNK_COLUMNS
    spec = InputSpec(tuple(paths), kind, float(meta["depth_m"]), calendar, include_snow,
                     model_variables(meta))
    with bounded_chunk_cache():
        ds = open_input(spec)
    # this handle (the only one that reads the column names) stays open until every block is in
    with contextlib.closing(ds), contextlib.ExitStack() as stack:
        spec = dataclasses.replace(spec, drop_variables=ds.encoding.get("other_variables", ()))
        if workers is not None:
            scheduler = stack.enter_context(local_cluster(workers))
        return _predict(t0, model_path, paths, output, ds, spec, meta, policy=policy, columns=columns,
                        chunk_columns=chunk_columns, scheduler=scheduler, strict=strict,
                        progress=progress, threads=threads, batch_rows=batch_rows, time_chunk=time_chunk,
                        deflate=deflate, command=command, run_threads=run_threads)


def _predict(t0: float, model_path: str, paths: list[str], output: str, ds: xr.Dataset,
             spec: InputSpec, meta: dict, *, policy: str, columns: str | None, chunk_columns: int,
             scheduler: str | None, strict: bool, progress: bool, threads: int, batch_rows: int,
             time_chunk: int, deflate: int, command: str | None, run_threads: int = 1) -> PredictResult:
    """`predict` once the output is checked and the input open (`ds`); `t0`: when it started."""
    kind = spec.kind
    where = paths[0] if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} files)"
    notes = check_compatible(ds, meta, where, model_path)
    sel = _selection(columns, ds.sizes["column"])
    chunk_columns = max(1, int(chunk_columns))
    blocks = [sel[i:i + chunk_columns] for i in range(0, len(sel), chunk_columns)]

    remove_stale_partials(output)
    tmp = f"{output}.partial-{os.getpid()}"
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    command = command or "rsoil_couple.predict.predict(" + ", ".join(map(repr, [model_path, paths, output])) + ")"
    attrs = {
        "Conventions": "CF-1.10",
        "title": f"Soil respiration predicted by rsoil_couple ({meta['model_kind']}) for {ds.attrs.get('site', where)}",
        "institution": "rsoil_couple",
        "source": (f"rsoil_couple {__version__} "
                   f"{'streaming run (rsoil_couple.core.streaming)' if is_streaming(meta) else 'C++ core'}, "
                   f"model {meta['model_kind']} id {meta['model_id']}"),
        "history": (f"{now}: {command} (model {model_path}: kind {meta['model_kind']}, "
                    f"id {meta['model_id']}, torch {meta.get('torch_version', '?')}, "
                    f"policy {policy}{', strict' if strict else ''})"),
        "references": "Jiang et al. (2022) Front. Environ. Sci. 10:1035540, doi:10.3389/fenvs.2022.1035540",
        "model_path": model_path, "model_id": str(meta["model_id"]), "model_kind": str(meta["model_kind"]),
        "model_step_seconds": float(meta["step_seconds"]), "model_depth_m": float(meta["depth_m"]),
        "policy": policy, "batch_rows": int(batch_rows), "strict": int(bool(strict)),
        "model_streaming": int(is_streaming(meta)),
        "input_kind": kind, "input_files": ", ".join(paths),
        "step_seconds": float(ds.attrs["step_seconds"]),
    }
    for key in ("tsoil_source", "swc_source"):
        if key in ds.attrs:
            attrs[f"input_{key}"] = str(ds.attrs[key])
    if notes:
        attrs["comment"] = "; ".join(notes)

    with OPEN_LOCK, _NC_LOCK, bounded_chunk_cache():
        nc = create_output(tmp, ds, sel, meta, attrs, chunk_columns, deflate)
    writer = None
    try:
        from tqdm import tqdm
        bar = tqdm(total=len(sel), unit="col", desc="predict", disable=not progress, file=sys.stderr)
        writer = BlockWriter(nc, np.cumsum([0] + [len(b) for b in blocks]), len(STATUS_MEANINGS),
                             _OutputLock(), bar.update)
        if scheduler is None:
            # the next block is read before this one goes to the writer: reading and the writer's deflate
            # both hold the HDF5 lock, and the writer has then had the whole model run to finish the last
            nxt = read_block(spec, blocks[0])
            for i, cols in enumerate(blocks):
                res = predict_block(model_path, spec, cols, policy, strict, threads, batch_rows, time_chunk, nxt,
                                    run_threads)
                nxt = read_block(spec, blocks[i + 1]) if i + 1 < len(blocks) else None
                writer.put(i, res)
        else:
            _run_distributed(scheduler, model_path, spec, blocks, policy, strict, threads, batch_rows, time_chunk,
                             writer.put, run_threads)
        writer.close()
        bar.close()
        status_counts = {m: int(c) for m, c in zip(STATUS_MEANINGS, writer.counts)}
        with OPEN_LOCK, _NC_LOCK:
            for m, c in status_counts.items():
                nc.setncattr(f"status_count_{m}", np.int64(c))
            nc.close()
        os.replace(tmp, output)
    except BaseException:
        if writer is not None:
            with contextlib.suppress(BaseException):
                writer.close()
        with OPEN_LOCK, _NC_LOCK:
            if nc.isopen():
                nc.close()
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return PredictResult(output, len(sel), ds.sizes["time"], status_counts, _time.perf_counter() - t0, spec,
                         dict(writer.seconds), dict(writer.blocks_by_pid))


class _OutputLock:
    """OPEN_LOCK then xarray's netCDF4 lock: what every netCDF call of predict holds (see inputs.py)."""

    def __enter__(self):
        OPEN_LOCK.acquire()
        _NC_LOCK.acquire()

    def __exit__(self, *exc):
        _NC_LOCK.release()
        OPEN_LOCK.release()


def _run_distributed(address: str, model_path: str, spec: InputSpec, blocks: list, policy: str,
                     strict: bool, threads: int, batch_rows: int, time_chunk: int, write,
                     run_threads: int = 1) -> None:
    """Blocks as tasks on a dask distributed cluster; at most two per worker in flight (bounded memory).

    Workers re-open the input from `spec`, so they must see the same files (a shared file system).
    """
    import dask
    from distributed import Client, as_completed

    with dask.config.set(LEAN_CONFIG), Client(address) as client:
        nworkers = max(1, len(client.scheduler_info().get("workers", {})))
        limit = 2 * nworkers
        todo = list(enumerate(blocks))
        pending = {}

        def submit():
            i, cols = todo.pop(0)
            fut = client.submit(predict_block, model_path, spec, cols, policy, strict, threads, batch_rows,
                                time_chunk, None, run_threads, key=f"rsoil-predict-{os.getpid()}-{i}", pure=False)
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
    `drivers` are given) soil temperature, soil water and rain below it.
    """
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
        if "swc" in dv:
            axes[2, 0].plot(t, dv["swc"].values, lw=0.8, color="tab:green")
            axes[2, 0].set_ylabel("SWC [m$^3$ m$^{-3}$]")
        if "precip" in dv:  # a site without a rain record (COSORE) has none
            ax2 = axes[2, 0].twinx()
            ax2.bar(t, dv["precip"].values, width=float(drivers.attrs["step_seconds"]) / 86400, color="tab:blue")
            ax2.set_ylabel("rain [mm/step]")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return Path(png)


# ----------------------------------------------------------------------------------------------
# command line
def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``rsoil-couple predict`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command's parser, filled here with ``--model``, ``--input``, ``--output``, ``--policy``,
        ``--columns``, ``--chunk-columns``, ``--scheduler``, ``--workers``, ``--strict``, ``--clm-calendar``, ``--include-snow``,
        ``--threads``, ``--batch-rows``, ``--time-chunk``, ``--run-threads``, ``--deflate``, ``--no-progress`` and ``--plot``.
    """
    parser.add_argument("--model", required=True,
                        help="model file (TorchScript + rsoil_meta.json) or a pretrained model's name (drylands-v1)")
    parser.add_argument("--input", required=True, nargs="+",
                        help="canonical NetCDF, site CSV, or CLM history file(s) opened as one dataset")
    parser.add_argument("--output", required=True, help="CF NetCDF to write (renamed into place when complete)")
    parser.add_argument("--policy", default="supplied", choices=("supplied", "lagged", "persistence"),
                        help="future-driver policy of the core (default: supplied, for offline runs)")
    parser.add_argument("--columns", default=None, help="column indices: 'start:stop' or 'i,j,k' (default all)")
    parser.add_argument("--chunk-columns", type=int, default=None,
                        help=f"columns per block (bounds memory; default {DEFAULT_CHUNK_COLUMNS}, streaming models "
                             f"{STREAM_CHUNK_COLUMNS})")
    parser.add_argument("--scheduler", default=None, help="dask distributed scheduler address (default: this process)")
    parser.add_argument("--workers", type=int, default=None,
                        help="start a local dask cluster of this many worker processes for this run (not with "
                             "--scheduler)")
    parser.add_argument("--strict", action="store_true", help="columns outside the training envelope fall back to Q10")
    parser.add_argument("--clm-calendar", default=None, help="override the calendar CLM files declare (e.g. noleap)")
    parser.add_argument("--include-snow", action="store_true", help="CLM input: precip = RAIN + SNOW")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per block (default 1; 0: torch's default)")
    parser.add_argument("--batch-rows", type=int, default=None,
                        help=f"rows per network call, padded (default {DEFAULT_BATCH_ROWS}, streaming models "
                             f"{STREAM_BATCH_ROWS}: results independent of blocking)")
    parser.add_argument("--time-chunk", type=int, default=STREAM_TIME_CHUNK,
                        help=f"streaming models: steps per run call, state carried (default {STREAM_TIME_CHUNK})")
    parser.add_argument("--run-threads", type=int, default=1,
                        help="streaming models: blocks of --batch-rows columns run in this many threads (default 1)")
    parser.add_argument("--deflate", type=int, default=1, help="zlib level of the output, 0-9 (default 1; 0: none)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--plot", default=None, help="also write a PNG of the first selected column")


def run(args: argparse.Namespace) -> int:
    """Run ``rsoil-couple predict``: Rsoil of every selected column through the C++ core, written as CF NetCDF.

    Calls `predict`, prints the size, the throughput [column-steps s-1] and the status counts, then one
    JSON line (status counts, seconds, throughput, stage seconds, blocks per process) and, with
    ``--plot``, writes a PNG of the first selected column.

    Parameters
    ----------
    args : argparse.Namespace
        Options parsed by `configure_parser`.

    Returns
    -------
    int
        Exit status 0.
    """
    command = "rsoil-couple " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["predict"] \
        else "rsoil-couple predict --model {} --input {} --output {}".format(args.model, " ".join(args.input), args.output)
    res = predict(args.model, args.input, args.output, policy=args.policy, columns=args.columns,
                  chunk_columns=args.chunk_columns, scheduler=args.scheduler, strict=args.strict,
                  calendar=args.clm_calendar, include_snow=args.include_snow,
                  progress=not args.no_progress, threads=args.threads, batch_rows=args.batch_rows,
                  time_chunk=args.time_chunk, deflate=args.deflate, command=command, run_threads=args.run_threads,
                  workers=args.workers)
    total = sum(res.status_counts.values())
    print(f"wrote {res.output}: {res.n_columns} columns x {res.n_time} steps in {res.seconds:.1f} s "
          f"({res.column_steps_per_s:,.0f} column-steps/s)")
    print("status counts: " + ", ".join(f"{k} {v} ({100 * v / total:.1f} %)" for k, v in res.status_counts.items()))
    if args.plot:
        drivers = None
        if res.input_spec.kind != "clm":
            with contextlib.closing(open_input(res.input_spec)) as full:
                sel = _selection(args.columns, full.sizes["column"])
                drivers = full.isel(column=sel[:1]).compute(scheduler="synchronous")
        print(f"wrote {plot_prediction(res.output, args.plot, 0, drivers)}")
    print(json.dumps({"status_counts": res.status_counts, "seconds": res.seconds,
                      "column_steps_per_s": res.column_steps_per_s, "stage_seconds": res.stage_seconds,
                      "blocks_by_pid": {str(k): v for k, v in res.blocks_by_pid.items()}}))
    return 0
