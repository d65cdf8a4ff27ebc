"""cffi (ABI mode) binding over the installed C library ``librsoil_core.so`` and ``rsoil_couple.h``.

This is the exact ABI a Fortran host sees: tests use it to check the C API against the pybind11
`rsoil_couple.Coupler`. Units are those of the C boundary: ``tsoil_k`` [K], ``swc_m3m3`` [m3 m-3],
``precip_mm_s`` [mm s-1]. `ffi` and `lib` are exposed for raw calls (NULL pointers, stale handles).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch  # noqa: F401  (libtorch loaded first: its sonames are then reused)
from cffi import FFI

from .coupler import POLICIES, StepResult, policy_code

_PKG = Path(__file__).resolve().parents[1]  # the package folder (holds lib/, include/)


def header_path() -> Path:
    """The installed header (``rsoil_couple/include``) or, in a source tree, ``csrc/rsoil_couple.h``."""
    for p in (_PKG / "include" / "rsoil_couple.h", _PKG.parent / "csrc" / "rsoil_couple.h"):
        if p.is_file():
            return p
    raise FileNotFoundError(f"rsoil_couple.h not found under {_PKG / 'include'} or {_PKG.parent / 'csrc'}")


def library_path() -> Path:
    """Path of the C library ``librsoil_core.so`` in the package's ``lib`` folder.

    Returns
    -------
    Path
        The shared library that `lib` is opened from.

    Raises
    ------
    FileNotFoundError
        If the package is neither installed nor built in place (docs/dev.md).
    """
    p = _PKG / "lib" / "librsoil_core.so"
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found: install the package or make a dev build (docs/dev.md)")
    return p


def cdef_from_header(text: str) -> str:
    """The header's declarations in the subset of C that cffi's cdef reads."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"#ifdef __cplusplus.*?#endif", "", text, flags=re.S)
    text = re.sub(r"#if defined\(_WIN32\).*?#endif", "", text, flags=re.S)
    lines = [ln for ln in text.splitlines()
             if not ln.lstrip().startswith("#") or re.match(r"#define RSC_\w+ \d+$", ln.strip())]
    return "\n".join(lines).replace("RSC_API ", "")


ffi = FFI()
ffi.cdef(cdef_from_header(header_path().read_text()))
lib = ffi.dlopen(os.fspath(library_path()))


class CapiError(RuntimeError):
    """A non-zero result code of the C API, with the library's last-error message."""

    def __init__(self, code: int, message: str):
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message


def last_error() -> str:
    """The calling thread's last error message of the C API (``rsc_last_error_message``).

    Returns
    -------
    str
        Message of this thread's last failed ``rsc_*`` call; empty if there is none.
    """
    return ffi.string(lib.rsc_last_error_message()).decode()


def check(rc: int) -> None:
    """Raise `CapiError` unless a C API result code is ``RSC_OK``.

    Parameters
    ----------
    rc : int
        Result code of an ``rsc_*`` call.

    Raises
    ------
    CapiError
        With ``rc`` and the thread's last error message, if ``rc != RSC_OK``.
    """
    if rc != lib.RSC_OK:
        raise CapiError(rc, last_error())


def _dptr(a: np.ndarray | None):
    return ffi.NULL if a is None else ffi.cast("double *", a.ctypes.data)


def _as_float64(x, name: str, shape: tuple[int, ...], what: str) -> np.ndarray:
    """``x`` as a C-contiguous float64 array of exactly ``shape``; TypeError/ValueError naming ``name``.

    The C API cannot see array lengths: it reads ``ncol`` (or ``ncol * future_steps``) values from each
    pointer, so every length is checked here, against the coupler, before any pointer is passed.
    """
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected real numbers, got dtype {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"{name}: expected shape {shape} ({what}), got {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float64)


class CapiCoupler:
    """The C API's coupler; same arguments as `rsoil_couple.Coupler`, C-boundary units in `step`.

    ``model_path`` goes to ``rsc_coupler_create`` unchanged: a pretrained model's name is looked up by the
    C library itself (csrc/model_path.cpp, the rule of `rsoil_couple.pretrained`), as for a Fortran host.
    """

    def __init__(self, model_path, ncol: int, policy="supplied", strict=False, chunk_size=0, num_threads=0):
        out = ffi.new("rsc_coupler **")
        check(lib.rsc_coupler_create(os.fspath(model_path).encode(), int(ncol), policy_code(policy),
                                     int(bool(strict)), int(chunk_size), int(num_threads), out))
        self._h = ffi.new("rsc_coupler **", out[0])
        self.ncol = int(ncol)
        self.policy = next(k for k, v in POLICIES.items() if v == policy_code(policy))
        self.info = self._info()

    @property
    def handle(self):
        """The raw handle (NULL after `destroy`)."""
        return self._h[0]

    def _info(self) -> dict:
        ints = ffi.new("int[6]")
        dt = ffi.new("double *")
        taken = ffi.new("long long *")
        check(lib.rsc_coupler_info(self.handle, ints + 0, ints + 1, dt, ints + 2, ints + 3, ints + 4, ints + 5, taken))
        return {"past_steps": ints[0], "future_steps": ints[1], "step_seconds": dt[0], "spinup_steps": ints[2],
                "lag_steps": ints[3], "n_future_vars": ints[4], "future_vars_mask": ints[5],
                "steps_taken": taken[0]}

    def step(self, tsoil_k, swc_m3m3, precip_mm_s, future_tsoil_k=None, future_swc_m3m3=None,
             future_precip_mm_s=None) -> StepResult:
        """One step: inputs [ncol] (future_* [ncol, future_steps], C order); raises CapiError."""
        n = self.ncol
        F = self.info["future_steps"]
        ins = [_as_float64(x, name, (n,), "ncol")
               for x, name in ((tsoil_k, "tsoil_k"), (swc_m3m3, "swc_m3m3"), (precip_mm_s, "precip_mm_s"))]
        fut = [None if f is None else _as_float64(f, name, (n, F), "ncol, future_steps")
               for f, name in ((future_tsoil_k, "future_tsoil_k"), (future_swc_m3m3, "future_swc_m3m3"),
                               (future_precip_mm_s, "future_precip_mm_s"))]
        rsoil, gc, scalar = np.empty(n), np.empty(n), np.empty(n)
        status = np.empty(n, dtype=np.int32)
        check(lib.rsc_coupler_step(self.handle, n, *map(_dptr, ins), *map(_dptr, fut),
                                   _dptr(rsoil), _dptr(gc), _dptr(scalar), ffi.cast("int *", status.ctypes.data)))
        return StepResult(rsoil, gc, scalar, status)

    def set_mask(self, use_model) -> None:
        """Choose per column between the network and the Q10 fallback (``rsc_coupler_set_mask``).

        Masked columns get status MASKED; their driver buffers keep filling (a streaming model's state keeps
        advancing), so a column switched back on runs the network at once if its window is valid. The mask is part
        of the restart state.

        Parameters
        ----------
        use_model : array_like of bool or numbers
            ``[ncol]``; nonzero: the column uses the network, 0: the Q10 fallback.

        Raises
        ------
        TypeError
            If ``use_model`` is neither boolean nor numeric.
        ValueError
            If its shape is not ``(ncol,)``.
        CapiError
            If the C call fails.
        """
        m = np.asarray(use_model)
        if m.dtype.kind not in "biuf":
            raise TypeError(f"use_model: expected booleans or numbers, got dtype {m.dtype}")
        if m.shape != (self.ncol,):
            raise ValueError(f"use_model: expected shape ({self.ncol},) (ncol), got {m.shape}")
        m = np.ascontiguousarray(m != 0, dtype=np.int32)
        check(lib.rsc_coupler_set_mask(self.handle, self.ncol, ffi.cast("int *", m.ctypes.data)))

    @property
    def counters(self) -> np.ndarray:
        """Cumulative per-status column-step counts since creation (``rsc_coupler_counters``).

        Returns
        -------
        numpy.ndarray
            int64 ``[RSC_NSTATUS]``; element s counts the (column, step) pairs with status s (order of
            `STATUS_NAMES`). Restored by `set_state`.
        """
        c = ffi.new("long long[]", lib.RSC_NSTATUS)
        check(lib.rsc_coupler_counters(self.handle, c))
        return np.array(list(c), dtype=np.int64)

    @property
    def diagnostic(self) -> str:
        """Message about the last step's input problems (``rsc_coupler_diagnostic``).

        Returns
        -------
        str
            The first offending column, variable, value and limits (NaN/Inf, outside the physical range or the
            training envelope) and how many columns were affected, then any columns whose network output was
            non-finite or negative; empty after a clean step. At most 1023 bytes.
        """
        buf = ffi.new("char[]", 1024)
        check(lib.rsc_coupler_diagnostic(self.handle, buf, 1024, ffi.NULL))
        return ffi.string(buf).decode()

    @property
    def rows_independent(self) -> bool:
        """``rsc_coupler_rows_independent``: a column's values do not depend on its row in a call (the load
        probe; chunk_size > 0, streaming and window models), as `rsoil_couple.Coupler.streaming_rows_independent`.
        """
        out = ffi.new("int*")
        check(lib.rsc_coupler_rows_independent(self.handle, out))
        return bool(out[0])

    @property
    def model_id(self) -> str:
        """Identity of the loaded model file (``rsc_coupler_model_id``).

        Returns
        -------
        str
            The ``model_id`` of the model file's metadata (at most 64 characters).
        """
        buf = ffi.new("char[]", 65)
        check(lib.rsc_coupler_model_id(self.handle, buf, 65))
        return ffi.string(buf).decode()

    def get_state(self) -> bytes:
        """The coupler's restart state (``rsc_coupler_state_size`` and ``rsc_coupler_state_get``).

        Returns
        -------
        bytes
            Self-describing blob (model_id, ncol, policy, strict, step count, ring buffers — a streaming
            model's state instead, layout version 3 —, mask, counters, checksum) in the host's byte order;
            its layout is in docs/core.md.
        """
        n = ffi.new("size_t *")
        check(lib.rsc_coupler_state_size(self.handle, n))
        buf = ffi.new("char[]", n[0])
        check(lib.rsc_coupler_state_get(self.handle, buf, n[0]))
        return bytes(ffi.buffer(buf, n[0]))

    def set_state(self, state: bytes) -> None:
        """Restore a restart state written by `get_state` (``rsc_coupler_state_put``).

        Later outputs are bit-for-bit those of the unbroken run.

        Parameters
        ----------
        state : bytes
            Blob of a coupler created with the same model file, ncol, policy and strict.

        Raises
        ------
        CapiError
            On any mismatch or corruption, naming the field; the coupler is then unchanged.
        """
        state = bytes(state)
        check(lib.rsc_coupler_state_put(self.handle, state, len(state)))

    def destroy(self) -> None:
        """Destroy the handle (safe to call twice)."""
        check(lib.rsc_coupler_destroy(self._h))

    def __del__(self, _null=ffi.NULL, _destroy=lib.rsc_coupler_destroy):
        # the module's globals may already be gone at interpreter exit: bound here as defaults
        if getattr(self, "_h", None) is not None and self._h[0] != _null:
            _destroy(self._h)
