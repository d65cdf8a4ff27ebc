"""`Coupler`: the C++ inference core (rsoil_couple._core) with numpy in and out, canonical units.

Units: ``tsoil`` [°C], ``swc`` [m3 m-3], ``precip`` [mm per step of the model's ``step_seconds``];
outputs ``rsoil`` [µmol CO2 m-2 s-1], ``rsoil_gc`` [gC m-2 s-1], ``resp_scalar`` [-], ``status``
(codes below, as docs/model_format.md). Errors raise FileNotFoundError / ValueError carrying the
core's message. Semantics: docs/core.md. A streaming model file (metadata record ``streaming``) runs
through the same class: ``streaming`` is then True and the core keeps the model's state
(``streaming_state_size`` floats per column) instead of a driver window.
"""
from __future__ import annotations

import json
import os
import warnings
from typing import NamedTuple

import numpy as np
import torch  # noqa: F401  (loads libtorch before the compiled module needs it)

from .. import _core
from ..pretrained import resolve
from ..variables import POLICIES, STATUS_NAMES

#: status code -> name (same numbers in C `RSC_STATUS_*` and Fortran)
ACTIVE, EXTRAPOLATING, SPINUP, MISSING, IMPOSSIBLE, MASKED, EXTRAPOLATION_FALLBACK, BAD_OUTPUT = range(8)
#: raised (a RuntimeError) when a coupler is called from a second thread while a call is running;
#: the refused call did nothing (C: RSC_E_BUSY)
BusyError = _core.BusyError
assert len(STATUS_NAMES) == _core.NSTATUS


class StepResult(NamedTuple):
    """Outputs of one step, arrays of shape [ncol]."""

    rsoil: np.ndarray        #: soil respiration [µmol CO2 m-2 s-1]
    rsoil_gc: np.ndarray     #: the same [gC m-2 s-1]
    resp_scalar: np.ndarray  #: rsoil / Q10 reference at the same drivers [-]; 1 for fallbacks
    status: np.ndarray       #: int32 status code per column


def policy_code(policy: str | int) -> int:
    """`'lagged'|'persistence'|'supplied'` (or its code) -> code; ValueError naming the choices."""
    if isinstance(policy, str):
        if policy not in POLICIES:
            raise ValueError(f"policy {policy!r}: expected one of {list(POLICIES)}")
        return POLICIES[policy]
    if int(policy) not in POLICIES.values():
        raise ValueError(f"policy {policy!r}: expected one of {list(POLICIES)} or codes 0..2")
    return int(policy)


class Coupler(_core.Coupler):
    """One model run for ``ncol`` columns, stepped in time (DESIGN.md "Coupling semantics").

    Parameters
    ----------
    model_path : path of a file written by `rsoil_couple.export.export_model`, or the name of a
        pretrained model (``"drylands-v1"``, looked up by `rsoil_couple.pretrained.resolve`).
    ncol : int
        Number of columns.
    policy : 'lagged' | 'persistence' | 'supplied'
        Future-driver policy (docs/core.md).
    strict : bool
        Columns outside the training envelope fall back to Q10 instead of extrapolating.
    chunk_size : int
        Columns per forward call; 0 = all active columns in one call. With ``chunk_size > 0`` a
        RuntimeWarning says when the load probe finds the module's values row-dependent on this CPU
        (`streaming_rows_independent` False: decompositions may then differ in the last bits).
    num_threads : int
        > 0 sets torch's intra-op threads PROCESS-WIDE (also `torch.get_num_threads()`).
    """

    def __init__(self, model_path: str | os.PathLike, ncol: int, policy: str | int = "supplied",
                 strict: bool = False, chunk_size: int = 0, num_threads: int = 0):
        super().__init__(os.fspath(resolve(model_path)), int(ncol), policy_code(policy), bool(strict),
                         int(chunk_size), int(num_threads))
        if int(chunk_size) > 0 and not self.streaming_rows_independent:
            # chunk_size > 0 asks for values independent of the decomposition; this module cannot give them
            warnings.warn(f"{os.fspath(model_path)}: chunk_size = {int(chunk_size)}, but the load probe found the "
                          "module's values depend on a column's row in a call on this CPU "
                          "(streaming_rows_independent is False): they can differ in the last bits between "
                          "MPI decompositions (docs/core.md)", RuntimeWarning, stacklevel=2)

    @property
    def policy(self) -> str:
        """The future-driver policy of this coupler.

        Returns
        -------
        str
            'lagged', 'persistence' or 'supplied' (a key of `POLICIES`).
        """
        return next(k for k, v in POLICIES.items() if v == self._policy)

    @property
    def meta(self) -> dict:
        """The model's rsoil_meta.json."""
        return json.loads(self.meta_json)

    def step(self, tsoil, swc, precip, future_tsoil=None, future_swc=None, future_precip=None) -> StepResult:
        """Advance one step for all columns.

        tsoil, swc, precip : [ncol]  This step's drivers. [°C], [m3 m-3], [mm per step]
        future_* : [ncol, future_steps]  Policy 'supplied' only: drivers of the next future_steps
            steps for each variable in `future_vars` (same units); None otherwise.
        Returns a `StepResult`; with policy 'lagged' it refers to the step `lag_steps` ago.
        """
        return StepResult(*self._step(tsoil, swc, precip, future_tsoil, future_swc, future_precip))

    def set_mask(self, use_model) -> None:
        """use_model : [ncol] bool  True = the network, False = Q10 (status MASKED)."""
        self._set_mask(np.asarray(use_model).astype(np.int32))
