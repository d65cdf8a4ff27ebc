"""Base class of every rsoil_couple model: raw drivers in physical units in, Rsoil out.

Every model takes ``forward(past, future)`` with raw drivers (see docs/model_format.md) and does its
own input transformation and normalisation, so callers (the C++ core, the Fortran host) only ever pass
raw drivers. Normalisation statistics live in buffers and are set once from the training data with
:meth:`RsoilModel.set_normalization`; they travel inside the TorchScript file.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import nn

#: variables whose raw values are log1p-transformed before standardisation (heavy-tailed, >= 0)
LOG_VARS = ("precip",)


class RsoilModel(nn.Module):
    """Common plumbing: input transforms, normalisation buffers, output de-normalisation.

    Parameters
    ----------
    past_vars, future_vars : canonical variable names (``tsoil``, ``swc``, ``precip``) in input order.
    past_steps, future_steps : window lengths [steps]; ``future_steps == 0`` iff ``future_vars == []``.

    A subclass names its ``kind`` (the ``model.kind`` of a config and the ``model_kind`` of the model
    file) and whether it reads the future window (``uses_future``); `from_config` builds it from a
    :class:`rsoil_couple.config.ModelConfig`. Registering it is one line in ``models/__init__.py``
    (docs/training.md, "Adding a model"; ``models/template.py`` is a working one to copy).
    """

    kind = ""           # the model kind (set by each subclass)
    uses_future = True  # False: the trainer drops the future window
    streaming = False   # True: a streaming kind (initial_state / step / run; rsoil_couple.training.stream)

    @classmethod
    def from_config(cls, cfg, past_vars: Sequence[str], future_vars: Sequence[str], past_steps: int,
                    future_steps: int, step_seconds: float) -> "RsoilModel":
        """Build this model for these windows from ``cfg`` (hidden, layers, head_layers, dropout)."""
        return cls(past_vars, future_vars, past_steps, future_steps, hidden=cfg.hidden, layers=cfg.layers,
                   head_layers=cfg.head_layers, dropout=cfg.dropout)

    # The module names its inputs (DESIGN.md): ``past_var_names`` / ``future_var_names`` are the
    # canonical variable names in the order ``forward`` reads them, kept as TorchScript attributes and
    # compared with the metadata by the C++ core and ``export.load_model``. Their TorchScript type is
    # declared as real typing objects: with ``from __future__ import annotations`` a written annotation
    # is a string TorchScript cannot resolve, and an empty list cannot be inferred.
    __annotations__ = {"past_var_names": List[str], "future_var_names": List[str]}

    def __init__(self, past_vars: Sequence[str], future_vars: Sequence[str],
                 past_steps: int, future_steps: int):
        super().__init__()
        self.past_var_names = [str(v) for v in past_vars]
        self.future_var_names = [str(v) for v in future_vars]
        if past_steps < 1:
            raise ValueError(f"past_steps must be >= 1, got {past_steps}")
        if (future_steps == 0) != (len(future_vars) == 0):
            raise ValueError(f"future_steps ({future_steps}) must be 0 exactly when future_vars "
                             f"({list(future_vars)}) is empty")
        self.n_past = len(past_vars)
        self.n_future = len(future_vars)
        self.past_steps = int(past_steps)
        self.future_steps = int(future_steps)
        nf = max(self.n_future, 1)
        self.register_buffer("past_log", torch.tensor([v in LOG_VARS for v in past_vars], dtype=torch.bool))
        self.register_buffer("future_log", torch.tensor([v in LOG_VARS for v in future_vars] or [False],
                                                        dtype=torch.bool))
        self.register_buffer("past_mean", torch.zeros(self.n_past))
        self.register_buffer("past_std", torch.ones(self.n_past))
        self.register_buffer("future_mean", torch.zeros(nf))
        self.register_buffer("future_std", torch.ones(nf))
        self.register_buffer("y_mean", torch.zeros(()))
        self.register_buffer("y_std", torch.ones(()))

    # -- transforms (used by forward and, on the training rows, by set_normalization) -------------
    def transform_past(self, x: torch.Tensor) -> torch.Tensor:
        """Raw past drivers ``[..., n_past_vars]`` -> transformed (log1p for rain), not yet standardised."""
        return torch.where(self.past_log, torch.log1p(x.clamp(min=0.0)), x)

    def transform_future(self, x: torch.Tensor) -> torch.Tensor:
        """Raw future drivers ``[..., n_future_vars]`` -> transformed, not yet standardised."""
        if self.n_future == 0:
            return x
        return torch.where(self.future_log, torch.log1p(x.clamp(min=0.0)), x)

    def norm_past(self, past: torch.Tensor) -> torch.Tensor:
        """Transform and standardise raw past drivers with the training statistics.

        Parameters
        ----------
        past : torch.Tensor
            Raw past drivers ``[..., n_past_vars]`` in canonical units: tsoil [degC], swc [m3 m-3], precip [mm per step].

        Returns
        -------
        torch.Tensor
            Same shape: log1p of precip, then ``(x - past_mean) / past_std`` [-]
        """
        return (self.transform_past(past) - self.past_mean) / self.past_std

    def norm_future(self, future: torch.Tensor) -> torch.Tensor:
        """Transform and standardise raw future drivers with the training statistics.

        Parameters
        ----------
        future : torch.Tensor
            Raw future drivers ``[..., n_future_vars]`` in canonical units: tsoil [degC], swc [m3 m-3],
            precip [mm per step].

        Returns
        -------
        torch.Tensor
            Same shape: log1p of precip, then ``(x - future_mean) / future_std`` [-]
        """
        return (self.transform_future(future) - self.future_mean) / self.future_std

    @torch.jit.ignore
    def set_normalization(self, past_rows: torch.Tensor, future_rows: torch.Tensor | None,
                          y: torch.Tensor) -> None:
        """Set the normalisation buffers from training data.

        past_rows : [n, n_past_vars] raw driver rows of the training windows.
        future_rows : [n, n_future_vars] or None when the model has no future inputs.
        y : [n_samples] training targets [µmol m-2 s-1].
        """
        with torch.no_grad():
            t = self.transform_past(past_rows.float())
            self.past_mean.copy_(t.mean(0))
            self.past_std.copy_(t.std(0).clamp(min=1e-6))
            if self.n_future and future_rows is not None:
                f = self.transform_future(future_rows.float())
                self.future_mean.copy_(f.mean(0))
                self.future_std.copy_(f.std(0).clamp(min=1e-6))
            self.y_mean.fill_(float(y.float().mean()))
            self.y_std.fill_(float(y.float().std().clamp(min=1e-6)))
        self.after_normalization()

    @torch.jit.ignore
    def after_normalization(self) -> None:
        """Hook for models that derive more state from the training data (kg_lstm)."""

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """Predict Rsoil at time t from raw driver windows; every model kind implements it.

        Parameters
        ----------
        past : torch.Tensor
            Raw drivers ``[batch, past_steps, n_past_vars]``, oldest step first, the last row at time t, in canonical
            units: tsoil [degC], swc [m3 m-3], precip [mm per step].
        future : torch.Tensor
            Raw drivers of t+1 ... t+future_steps ``[batch, future_steps, n_future_vars]`` in time order, same units;
            a ``[batch, 0, 0]`` tensor when the model has no future window.

        Returns
        -------
        torch.Tensor
            Rsoil at time t ``[batch]`` [umol m-2 s-1]

        Raises
        ------
        NotImplementedError
            Always, in the base class.
        """
        raise NotImplementedError


class StreamingModel(RsoilModel):
    """A streaming kind (docs/model_format.md, "Streaming models"): a subclass defines ``initial_state(ncol)``
    and ``step(state, drivers) -> (rsoil, state)`` (both ``torch.jit.export``); `run` and the window
    `forward` are these, once for every streaming module (kg_stream, StreamEnsemble).
    """

    streaming = True

    @torch.jit.export
    def run(self, state: torch.Tensor, drivers: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``step`` over ``drivers`` ``[n, T, n_past_vars]``: (Rsoil ``[n, T]``, the state after the last step)."""
        outs: List[torch.Tensor] = []
        for k in range(drivers.shape[1]):
            r, state = self.step(state, drivers[:, k])
            outs.append(r)
        if len(outs) == 0:
            return torch.zeros(drivers.shape[0], 0), state
        return torch.stack(outs, 1), state

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """Window compatibility: `run` over the past window from ``initial_state``; Rsoil at its last row [batch]."""
        out, _ = self.run(self.initial_state(past.shape[0]), past)
        return out[:, -1]


def mlp_head(n_in: int, hidden: int, layers: int, dropout: float, n_out: int = 1) -> nn.Sequential:
    """``layers`` dense ReLU layers of width ``hidden`` followed by a linear output layer."""
    mods: list[nn.Module] = []
    for _ in range(layers):
        mods += [nn.Linear(n_in, hidden), nn.ReLU()]
        if dropout > 0:
            mods.append(nn.Dropout(dropout))
        n_in = hidden
    mods.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*mods)
