"""Offline runs of a STREAMING model file: whole sequences through its scripted ``run``, with the core's statuses.

A streaming model file (docs/model_format.md, metadata record ``streaming``) carries a per-column state
instead of reading a window: ``run(state, drivers[ncol, T, nvars]) -> (rsoil[ncol, T], state)`` is T
calls of its ``step``. `StreamingRun` runs such a file over a (time, column) record with ONE ``run``
call per block of ``batch_rows`` columns and ``time_chunk`` steps, carrying the state from chunk to
chunk, instead of stepping the C++ coupler once per step. It returns exactly what the coupler's
streaming path returns (docs/core.md "Streaming models"):

- every column is run at every step (masked ones too), in blocks of ``batch_rows`` columns, every call
  padded to ``batch_rows`` rounded up to a multiple of 64 rows (`rsoil_couple.variables.CALL_ROW_MULTIPLE`,
  as the core pads ``chunk_size``) with copies of the block's last column, so a column's values do not
  depend on the blocking: libtorch's float32 kernels round differently with the batch size and, in a
  vector loop's tail, with the row, not with the time chunk;
- drivers that are missing (NaN/Inf) or outside the metadata's ``physical_range`` at step t are passed
  to the model as NaN (the model holds their last valid value);
- status per column and step from that step's own drivers only: MASKED > SPINUP (the first
  ``spinup_steps`` steps) > MISSING > IMPOSSIBLE > EXTRAPOLATION_FALLBACK (strict) / EXTRAPOLATING
  (outside the envelope) > ACTIVE, then BAD_OUTPUT for a non-finite or negative network value;
- columns that do not run the network get the model's Q10 fallback at their own drivers (NaN where
  tsoil, or swc for forms that read it, is missing or impossible) and a respiration scalar of 1.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import MetaError
from ..variables import CANONICAL_VARS, DRIVERS, GC_PER_UMOL_CO2, Q10_REF_MIN, STATUS_NAMES, padded_call_rows

__all__ = ["STREAM_BATCH_ROWS", "STREAM_CHUNK_COLUMNS", "STREAM_TIME_CHUNK", "StreamingRun", "finish_statuses", "is_streaming",
           "stream_statuses"]

_S = {name: code for code, name in enumerate(STATUS_NAMES)}
#: Rows of every ``run`` call by default. A scripted loop costs hundreds of µs per step whatever the
#: rows (the shipped drylands-v1, prepared: ~0.35 ms at 256 rows, ~0.6 ms at 1024), so more rows amortise
#: it: drylands-v1 runs ~0.7 M column-steps/s per core with 256 rows and ~1.7 M with 1024 (the test model
#: of tests/streaming_model.py ~1.6 M and ~2.1 M). docs/predict.md, "Measured".
STREAM_BATCH_ROWS = 1024
#: Columns per block of `rsoil-couple predict` for streaming models (a block narrower than
#: `STREAM_BATCH_ROWS` is padded to it, wasted work): ~1.3 GB peak for a year at 30 min.
STREAM_CHUNK_COLUMNS = 1024
#: Steps of every ``run`` call by default (the state is carried across calls; results do not depend on it).
STREAM_TIME_CHUNK = 4096

# How one driver value stands against the metadata's ranges; larger = worse (csrc/coupler.cpp Class).
_OK, _OUTSIDE_ENVELOPE, _IMPOSSIBLE, _MISSING = 0, 1, 2, 3


def is_streaming(meta: dict) -> bool:
    """True for a streaming model file: its metadata has the ``streaming`` record."""
    return isinstance(meta.get("streaming"), dict)


def _status_of_class(strict: bool) -> np.ndarray:
    """Status code of each value class (index), the core's switch in one table."""
    return np.array([_S["ACTIVE"], _S["EXTRAPOLATION_FALLBACK" if strict else "EXTRAPOLATING"],
                     _S["IMPOSSIBLE"], _S["MISSING"]], dtype=np.int8)


def _classify(x: np.ndarray, phys: tuple[float, float], env: tuple[float, float] | None) -> np.ndarray:
    """Class of every value of one driver [uint8, same shape]; `env` None for a driver the model does not take."""
    finite = np.isfinite(x)
    cls = np.where(finite, _OK, _MISSING).astype(np.uint8)
    with np.errstate(invalid="ignore"):
        cls[finite & ((x < phys[0]) | (x > phys[1]))] = _IMPOSSIBLE
        if env is not None:
            cls[(cls == _OK) & ((x < env[0]) | (x > env[1]))] = _OUTSIDE_ENVELOPE
    return cls


def _ranges(meta: dict) -> tuple[dict, dict]:
    """(physical range, envelope or None) per driver: the model's where it takes the driver, else
    variables.py's physical range and no envelope (only the Q10 fallback may read it).
    """
    used = {v["name"] for v in meta["past_vars"] + meta["future_vars"]}
    phys, env = {}, {}
    for v in DRIVERS:
        if v in used:
            phys[v] = (meta["physical_range"][v]["min"], meta["physical_range"][v]["max"])
            env[v] = (meta["envelope"][v]["min"], meta["envelope"][v]["max"])
        else:
            phys[v], env[v] = CANONICAL_VARS[v].physical_range, None
    return phys, env


def stream_statuses(meta: dict, drivers: dict[str, np.ndarray], strict: bool = False, first_step: int = 0,
                    mask: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Statuses before the network runs, and the classes of every driver value.

    Parameters
    ----------
    meta : dict
        The model file's metadata (with its ``streaming`` record).
    drivers : dict of str to ndarray
        ``tsoil`` [degC], ``swc`` [m3 m-3], ``precip`` [mm per step], each [time, column]; a driver the
        model does not take may be absent.
    strict : bool
        Outside the envelope falls back to Q10 (EXTRAPOLATION_FALLBACK) instead of EXTRAPOLATING.
    first_step : int
        Steps the run had taken before row 0 (spin-up counts from the run's start).
    mask : ndarray of bool, optional
        [column] or [time, column]; False = Q10 (MASKED).

    Returns
    -------
    status : ndarray of int8
        [time, column]: MASKED, SPINUP, MISSING, IMPOSSIBLE, EXTRAPOLATION_FALLBACK, EXTRAPOLATING or ACTIVE.
    classes : dict of str to ndarray of uint8
        Per driver present, its class at every step (0 ok, 1 outside the envelope, 2 impossible, 3 missing).
    """
    phys, env = _ranges(meta)
    used = [v["name"] for v in meta["past_vars"] + meta["future_vars"]]
    classes = {v: _classify(drivers[v], phys[v], env[v]) for v in DRIVERS if v in drivers}
    worst = np.zeros(next(iter(classes.values())).shape, dtype=np.uint8)
    for v in dict.fromkeys(used):
        np.maximum(worst, classes[v], out=worst)
    status = _status_of_class(strict)[worst]
    spin = int(meta["streaming"]["spinup_steps"]) - int(first_step)
    if spin > 0:
        status[:spin] = _S["SPINUP"]
    if mask is not None:
        status[~np.broadcast_to(np.asarray(mask, dtype=bool), status.shape)] = _S["MASKED"]
    return status, classes


def finish_statuses(meta: dict, drivers: dict[str, np.ndarray], classes: dict[str, np.ndarray],
                    status: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """The outputs from the network's values `y` [time, column] and the statuses of `stream_statuses`.

    ``status`` is updated in place (BAD_OUTPUT where a network value is non-finite or negative).
    Returns {'rsoil' [umol m-2 s-1], 'rsoil_gc' [gC m-2 s-1], 'resp_scalar' [1], 'status'}, float64 / int8.
    """
    from ..baselines import q10 as _q10  # here: this module stays importable without scipy and torch

    fb = meta["fallback_q10"]
    reads_swc = fb["form"] != "q10"
    unusable = classes["tsoil"] >= _IMPOSSIBLE
    if reads_swc:
        unusable |= classes["swc"] >= _IMPOSSIBLE
    with np.errstate(invalid="ignore"):
        t = np.where(unusable, np.nan, drivers["tsoil"])
        w = np.where(unusable, np.nan, drivers["swc"]) if reads_swc else None
    q = _q10.predict(fb["form"], fb["params"], t, w, swc_units=fb["swc_units"], tref_c=fb["tref_c"])
    q[unusable] = np.nan  # also where a form would give a number from NaN (1**NaN, NaN**0)
    y = np.asarray(y, dtype=np.float64)
    ran = status <= _S["EXTRAPOLATING"]
    with np.errstate(invalid="ignore"):
        good = np.isfinite(y) & (y >= 0.0)
        status[ran & ~good] = _S["BAD_OUTPUT"]
        net = ran & good
        rsoil = np.where(net, y, q)
        scalar = np.ones_like(rsoil)
        np.divide(y, q, out=scalar, where=net & np.isfinite(q) & (q > Q10_REF_MIN))
    return {"rsoil": rsoil, "rsoil_gc": rsoil * GC_PER_UMOL_CO2, "resp_scalar": scalar, "status": status}


class StreamingRun:
    """A streaming model file loaded for offline runs: network values, statuses and outputs of a record.

    Parameters
    ----------
    model_path : str or os.PathLike
        A model file whose metadata has the ``streaming`` record.
    strict : bool
        Columns outside the training envelope fall back to Q10.
    batch_rows : int
        Rows of every ``run`` call (the last block padded); 0: all columns of a record in one call
        (faster for small records, but float32 results then vary in the last bits with the column count).
    time_chunk : int
        Steps per ``run`` call, the state carried across calls (0: the whole record in one call).
    num_threads : int
        > 0 sets torch's intra-op threads PROCESS-WIDE (as `rsoil_couple.Coupler` does).
    prepare : bool
        Run the module as `rsoil_couple.core.stream_fast.prepared_module` prepares it for `batch_rows`-row
        calls (shared features, chunked heads, frozen; kept only when bit-identical on a probe, cached per
        process): ``prepared`` lists what was applied. False: the file's module as it is.
    run_threads : int
        Blocks of `batch_rows` columns run concurrently in this many threads (values unchanged; useful
        with idle cores and at least ``run_threads x batch_rows`` columns).
    """

    def __init__(self, model_path: str | os.PathLike, strict: bool = False, batch_rows: int = STREAM_BATCH_ROWS,
                 time_chunk: int = STREAM_TIME_CHUNK, num_threads: int = 0, prepare: bool = True,
                 run_threads: int = 1):
        import torch

        from ..modelfile.export import load_model
        from .stream_fast import prepared_module

        if int(batch_rows) < 0 or int(time_chunk) < 0:
            raise ValueError(f"batch_rows ({batch_rows}) and time_chunk ({time_chunk}) must be >= 0")
        self.path = os.fspath(model_path)
        self.module, self.meta = load_model(self.path)  # checks that the module streams as its record says
        if not is_streaming(self.meta):
            raise MetaError(f"{self.path}: rsoil_meta.json: streaming: missing; not a streaming model file "
                            "(window models run through rsoil_couple.Coupler)")
        self.strict = bool(strict)
        self.batch_rows, self.time_chunk = int(batch_rows), int(time_chunk)
        #: rows of every ``run`` call (0: a block's columns): batch_rows padded as the core pads chunk_size
        self.call_rows = padded_call_rows(self.batch_rows) if self.batch_rows > 0 else 0
        self.run_threads = max(1, int(run_threads))
        self.past_vars = [v["name"] for v in self.meta["past_vars"]]
        self.state_size = int(self.meta["streaming"]["state_size"])
        self.spinup_steps = int(self.meta["streaming"]["spinup_steps"])
        if num_threads > 0:
            torch.set_num_threads(int(num_threads))
        self.prepared: list[str] = []
        if prepare:
            self.module, self.prepared = prepared_module(self.path, self.module, self.meta, rows=self.call_rows)

    def model_inputs(self, drivers: dict[str, np.ndarray], classes: dict[str, np.ndarray]) -> np.ndarray:
        """The network's input [time, column, n_past_vars] float32: each driver in ``past_vars`` order,
        NaN where it is missing or impossible (the model holds its last valid value).
        """
        T, ncol = classes[self.past_vars[0]].shape
        x = np.empty((T, ncol, len(self.past_vars)), dtype=np.float32)
        for k, v in enumerate(self.past_vars):
            x[:, :, k] = drivers[v]
            x[:, :, k][classes[v] >= _IMPOSSIBLE] = np.nan
        return x

    def network(self, x: np.ndarray, states: list | None = None) -> np.ndarray | tuple[np.ndarray, list]:
        """Run the module over `x` [time, column, n_past_vars] (float32).

        Returns the network's Rsoil [time, column] float32 [umol m-2 s-1] from the initial state, or, when
        `states` is given (a list, empty at the start), (Rsoil, states) with the state of every block of
        columns carried into the list, so that the next slab of time continues it. One ``run`` call per
        block of `batch_rows` columns and `time_chunk` steps; the state is carried from chunk to chunk.
        With ``run_threads`` > 1 the blocks of columns run in that many threads (TorchScript releases
        the GIL; each block's calls are the same, so are its values).
        """
        T, ncol, nv = x.shape
        rows = self.batch_rows or ncol
        carry = states is not None
        states = states if carry else []
        starts = list(range(0, ncol, rows))
        while len(states) < len(starts):
            states.append(None)
        y = np.empty((T, ncol), dtype=np.float32)
        if self.run_threads > 1 and len(starts) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(self.run_threads, len(starts))) as pool:
                for f in [pool.submit(self._block, x, y, states, b, c0, rows) for b, c0 in enumerate(starts)]:
                    f.result()
        else:
            for b, c0 in enumerate(starts):
                self._block(x, y, states, b, c0, rows)
        return (y, states) if carry else y

    def _block(self, x: np.ndarray, y: np.ndarray, states: list, b: int, c0: int, rows: int) -> None:
        """`network` for the block of columns c0 .. c0 + rows: ``y`` and ``states[b]`` updated. With
        ``batch_rows`` > 0 every call has `call_rows` rows (the block padded with copies of its last column).
        """
        import torch

        T, ncol, nv = x.shape
        chunk = self.time_chunk or T
        nb = min(rows, ncol - c0)
        cr = self.call_rows or rows
        xb = np.empty((cr, min(chunk, T), nv), dtype=np.float32)
        with torch.inference_mode():  # (per thread)
            if states[b] is None:
                states[b] = self.module.initial_state(cr)
            for t0 in range(0, T, chunk):
                t1 = min(T, t0 + chunk)
                xc = xb[:, :t1 - t0]
                xc[:nb] = x[t0:t1, c0:c0 + nb].transpose(1, 0, 2)
                xc[nb:] = xc[nb - 1]
                out, new = self.module.run(states[b], torch.from_numpy(np.ascontiguousarray(xc)))
                if tuple(out.shape) != (cr, t1 - t0) or tuple(new.shape) != (cr, self.state_size):
                    raise ValueError(f"{self.path}: run(state [{cr}, {self.state_size}], drivers "
                                     f"[{cr}, {t1 - t0}, {nv}]) returned rsoil {list(out.shape)} and state "
                                     f"{list(new.shape)}; expected [{cr}, {t1 - t0}] and "
                                     f"[{cr}, {self.state_size}]")
                y[t0:t1, c0:c0 + nb] = out[:nb].T.numpy()
                states[b] = new.clone()  # xb is reused: a state must not be a view of the drivers

    def __call__(self, drivers: dict[str, np.ndarray], mask: np.ndarray | None = None,
                 dtype=np.float64) -> dict[str, np.ndarray]:
        """Outputs of a whole record: {'rsoil', 'rsoil_gc', 'resp_scalar' (`dtype`), 'status' (int8)},
        each [time, column], as the coupler's streaming path returns them step by step.

        drivers : ``tsoil`` [degC], ``swc`` [m3 m-3], ``precip`` [mm per step], each [time, column]
            (the fallback's drivers and those in ``past_vars`` are required).
        mask : [column] or [time, column] bool, False = Q10 (MASKED); the model still runs there.
        dtype : of the values (computed in float64 and rounded once; predict asks float32, its file's type).
        The record is worked through in slabs of `time_chunk` steps (the state carried), so the temporary
        arrays (statuses, model inputs, the fallback) are those of one slab, not of the record.
        """
        T, ncol = np.shape(drivers[self.past_vars[0]])
        chunk = self.time_chunk or T
        out = {k: np.empty((T, ncol), dtype=dtype) for k in ("rsoil", "rsoil_gc", "resp_scalar")}
        out["status"] = np.empty((T, ncol), dtype=np.int8)
        m = None if mask is None else np.asarray(mask, dtype=bool)
        states: list = []
        for t0 in range(0, max(T, 1), chunk):
            sl = slice(t0, min(T, t0 + chunk))
            d = {v: a[sl] for v, a in drivers.items()}
            status, classes = stream_statuses(self.meta, d, self.strict, t0,
                                              m if m is None or m.ndim == 1 else m[sl])
            y, states = self.network(self.model_inputs(d, classes), states)
            for k, v in finish_statuses(self.meta, d, classes, status, y).items():
                out[k][sl] = v
        return out
