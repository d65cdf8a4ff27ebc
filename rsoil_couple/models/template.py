"""TEMPLATE: copy this file to ``<kind>.py`` to add a model (docs/training.md, "Adding a model").

A working model to start from (not registered): a GRU reads the standardised past window, a second
GRU the future window when the model has one, and a linear head maps both final states to Rsoil.
What every model must keep, because the core, the Fortran host and `predict` rely on it:

- ``forward(past, future)`` takes RAW drivers in canonical units — ``past`` [batch, past_steps,
  n_past_vars], ``future`` [batch, future_steps, n_future_vars] (an empty tensor without future) —
  and returns Rsoil [batch] in µmol CO2 m-2 s-1. Normalisation and derived inputs live inside it
  (``self.norm_past`` / ``self.norm_future`` use the training statistics the trainer sets).
- Everything in ``forward`` is TorchScript-able (``torch.jit.script`` runs at export).
- ``kind`` is the name configs use (``[model] kind = "..."``) and the model file records;
  ``uses_future = False`` makes the trainer drop the future window.
- Constructor keywords beyond the base ones come from `rsoil_couple.config.ModelConfig`; override
  ``from_config`` (see ``kg_lstm.py``) when the model needs more of them.

Then add the class to ``REGISTERED`` in ``models/__init__.py`` and a case in tests/models.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .base import RsoilModel


class TemplateGRU(RsoilModel):
    """Past GRU (+ future GRU) -> linear head -> Rsoil(t) [µmol m-2 s-1].

    Parameters
    ----------
    past_vars, future_vars : sequence of str
        Canonical driver names in input order.
    past_steps, future_steps : int
        Window lengths [steps].
    hidden : int
        GRU width.
    layers : int
        Stacked GRU layers.
    head_layers : int
        Unused here (kept for the common constructor keywords).
    dropout : float
        Dropout between stacked GRU layers.
    """

    kind = "template_gru"
    uses_future = True

    def __init__(self, past_vars: Sequence[str], future_vars: Sequence[str], past_steps: int,
                 future_steps: int, hidden: int = 32, layers: int = 1, head_layers: int = 0,
                 dropout: float = 0.0):
        super().__init__(past_vars, future_vars, past_steps, future_steps)
        drop = dropout if layers > 1 else 0.0
        self.past_rnn = nn.GRU(len(past_vars), hidden, num_layers=layers, batch_first=True, dropout=drop)
        self.future_rnn = nn.GRU(max(len(future_vars), 1), hidden, num_layers=layers, batch_first=True,
                                 dropout=drop)
        self.head = nn.Linear(hidden * (2 if future_steps > 0 else 1), 1)

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """Rsoil [batch] from raw ``past`` [batch, past_steps, n_past] and ``future`` windows."""
        _, h = self.past_rnn(self.norm_past(past))
        z = h[-1]
        if self.n_future > 0:
            _, hf = self.future_rnn(self.norm_future(future))
            z = torch.cat([z, hf[-1]], dim=1)
        return self.head(z).squeeze(1) * self.y_std + self.y_mean
