"""MLP: past (and future, if any) windows flattened into a multilayer perceptron."""
from __future__ import annotations

from typing import Sequence

import torch

from .base import RsoilModel, mlp_head


class MLP(RsoilModel):
    """Dense ReLU network on the flattened, standardised windows -> Rsoil(t) [µmol m-2 s-1].

    Input size ``past_steps * n_past_vars + future_steps * n_future_vars``.
    """

    kind = "mlp"
    uses_future = True

    def __init__(self, past_vars: Sequence[str], future_vars: Sequence[str], past_steps: int,
                 future_steps: int, hidden: int = 32, layers: int = 2, head_layers: int = 0,
                 dropout: float = 0.0):
        super().__init__(past_vars, future_vars, past_steps, future_steps)
        n_in = past_steps * len(past_vars) + future_steps * len(future_vars)
        self.net = mlp_head(n_in, hidden, layers + head_layers, dropout)

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """Predict Rsoil at t from the flattened, standardised past (and future) windows.

        Inputs and output as `RsoilModel.forward`: raw drivers in canonical units, Rsoil [umol m-2 s-1].
        """
        x = self.norm_past(past).flatten(1)
        if self.n_future > 0:
            x = torch.cat([x, self.norm_future(future).flatten(1)], dim=1)
        return self.net(x).squeeze(1) * self.y_std + self.y_mean
