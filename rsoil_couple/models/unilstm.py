"""uniLSTM: the past branch of the new LSTM alone (no future inputs)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .base import RsoilModel, mlp_head


class UniLSTM(RsoilModel):
    """One LSTM over ``past [batch, past_steps, n_past_vars]``, dense head -> Rsoil(t) [µmol m-2 s-1].

    ``future`` must be the empty ``[batch, 0, 0]`` tensor (it is ignored).
    """

    kind = "unilstm"
    uses_future = False

    def __init__(self, past_vars: Sequence[str], future_vars: Sequence[str], past_steps: int,
                 future_steps: int, hidden: int = 32, layers: int = 1, head_layers: int = 1,
                 dropout: float = 0.0):
        super().__init__(past_vars, future_vars, past_steps, future_steps)
        if future_vars:
            raise ValueError("model.kind = 'unilstm' takes no future_vars (use 'lstm')")
        self.past_lstm = nn.LSTM(len(past_vars), hidden, num_layers=layers, batch_first=True)
        self.head = mlp_head(hidden, hidden, head_layers, dropout)

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """Predict Rsoil at t from the past window alone.

        Inputs and output as `RsoilModel.forward`: raw drivers in canonical units, Rsoil [umol m-2 s-1].
        """
        _, (hp, _) = self.past_lstm(self.norm_past(past))
        return self.head(hp[-1]).squeeze(1) * self.y_std + self.y_mean
