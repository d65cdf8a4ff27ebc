"""The paper's new LSTM (Jiang et al. 2022): a past branch and a backward future branch, dense head."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .base import RsoilModel, mlp_head


class PastFutureLSTM(RsoilModel):
    """Two LSTM branches with their own variables and window lengths, merged by dense layers.

    The past branch reads ``past [batch, past_steps, n_past_vars]`` forward in time (oldest first,
    ending at t); the future branch reads ``future [batch, future_steps, n_future_vars]`` (t+1 …
    t+future_steps, given in time order) BACKWARD, from t+future_steps down to t+1, so its final state
    sits next to time t — like one half of a bidirectional LSTM each, with separate inputs. Their last
    hidden states are concatenated and mapped by ``head_layers`` dense ReLU layers to Rsoil(t)
    [µmol m-2 s-1] (standardised output de-normalised with the training mean and spread).
    """

    kind = "lstm"
    uses_future = True

    def __init__(self, past_vars: Sequence[str], future_vars: Sequence[str], past_steps: int,
                 future_steps: int, hidden: int = 32, layers: int = 1, head_layers: int = 1,
                 dropout: float = 0.0):
        super().__init__(past_vars, future_vars, past_steps, future_steps)
        if not future_vars:
            raise ValueError("model.kind = 'lstm' needs future_vars (use 'unilstm' for past only)")
        self.past_lstm = nn.LSTM(len(past_vars), hidden, num_layers=layers, batch_first=True)
        self.future_lstm = nn.LSTM(len(future_vars), hidden, num_layers=layers, batch_first=True)
        self.head = mlp_head(2 * hidden, hidden, head_layers, dropout)

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """Predict Rsoil at t from the past window read forward and the future window read backward.

        Inputs and output as `RsoilModel.forward`: raw drivers in canonical units, Rsoil [umol m-2 s-1].
        """
        _, (hp, _) = self.past_lstm(self.norm_past(past))
        _, (hf, _) = self.future_lstm(torch.flip(self.norm_future(future), [1]))
        z = torch.cat([hp[-1], hf[-1]], dim=1)
        return self.head(z).squeeze(1) * self.y_std + self.y_mean
