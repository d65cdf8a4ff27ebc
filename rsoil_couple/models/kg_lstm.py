"""Knowledge-guided LSTM: a positive Q10 base modulated by a bounded network (sane out of range).

Rsoil(t) = a · Q10^((T_level − 10)/10) · exp(B · tanh(s))                      [µmol m-2 s-1]

- ``T_level`` is the trailing 24 h mean of soil temperature (the whole past window when shorter):
  the temperature LEVEL that is in phase with Rsoil across seasons. ``a > 0`` is learned; ``Q10`` is
  learned (or fixed) inside ``[q10_min, q10_max]`` (>= 1), initialised at ``q10_init``.
- ``s`` comes from a network that sees the diel ANOMALY ``T − T_level`` over the past window (and, if
  given, the future window, read backward as in the paper's model), SWC, rain, and rain-memory
  features computed here from the raw windows: rain totals over 6 h, 24 h, 72 h and the whole window,
  time since the last rain, the SWC change over 24 h, and T_level itself. ``B = log(modulation_max)``
  bounds the modulation to ``[1/modulation_max, modulation_max]``.
- Every network input is clamped to the range seen in training before it enters the network. Outside
  the training envelope the network therefore sees the edge of its experience, and the only thing
  that keeps changing with the temperature level is the Q10 base. By construction: the output is
  positive, finite, and — for a uniform shift of the temperature window beyond the envelope —
  monotone non-decreasing in temperature (Q10 >= 1).
"""
from __future__ import annotations

import math
from typing import List, Sequence

import torch
from torch import nn

from .base import RsoilModel, mlp_head

RAIN_HORIZONS_H = (6.0, 24.0, 72.0)
N_SCALAR = 8  # T_level, swc_now, dswc_24h, 4 rain totals, time since rain


class KGLSTM(RsoilModel):
    """See the module docstring. ``past_vars`` must contain ``tsoil``; ``swc``/``precip`` optional;
    ``future_vars`` is ``[]`` or ``["tsoil"]``.
    """

    kind = "kg_lstm"
    uses_future = True

    def __init__(self, past_vars: Sequence[str], future_vars: Sequence[str], past_steps: int,
                 future_steps: int, step_seconds: float, hidden: int = 32, layers: int = 1,
                 head_layers: int = 1, dropout: float = 0.0, q10_init: float = 2.0,
                 learn_q10: bool = True, q10_min: float = 1.0, q10_max: float = 4.0,
                 modulation_max: float = 20.0):
        super().__init__(past_vars, future_vars, past_steps, future_steps)
        if "tsoil" not in past_vars:
            raise ValueError("model.kind = 'kg_lstm' needs 'tsoil' in data.past_vars")
        if list(future_vars) not in ([], ["tsoil"]):
            raise ValueError(f"model.kind = 'kg_lstm' takes future_vars [] or ['tsoil'], got {list(future_vars)}")
        if not (1.0 <= q10_min < q10_init < q10_max):
            raise ValueError(f"kg_lstm needs 1 <= q10_min < q10_init < q10_max, got "
                             f"{q10_min}, {q10_init}, {q10_max}")
        if modulation_max <= 1.0:
            raise ValueError(f"model.modulation_max must be > 1, got {modulation_max}")
        self.i_t = list(past_vars).index("tsoil")
        self.i_swc = list(past_vars).index("swc") if "swc" in past_vars else -1
        self.i_p = list(past_vars).index("precip") if "precip" in past_vars else -1
        step_h = step_seconds / 3600.0
        self.step_h = float(step_h)
        self.level_steps = int(min(past_steps, max(1, round(24.0 / step_h))))
        self.horizons: List[int] = [int(min(past_steps, max(1, round(h / step_h)))) for h in RAIN_HORIZONS_H]
        self.q10_min, self.q10_max = float(q10_min), float(q10_max)
        self.log_bound = float(math.log(modulation_max))
        raw = math.log((q10_init - q10_min) / (q10_max - q10_init))  # inverse of the sigmoid map
        if learn_q10:
            self.q10_raw = nn.Parameter(torch.tensor(raw))
        else:
            self.register_buffer("q10_raw", torch.tensor(raw))
        self.log_a = nn.Parameter(torch.tensor(0.0))
        # network inputs: per-step [T anomaly, other past vars]; scalars; envelope clamps
        self.n_seq = len(past_vars)
        self.past_lstm = nn.LSTM(self.n_seq, hidden, num_layers=layers, batch_first=True)
        self.has_future = len(future_vars) > 0
        self.future_lstm = nn.LSTM(1, hidden, num_layers=layers, batch_first=True)
        n_head = hidden * (2 if self.has_future else 1) + N_SCALAR
        self.head = mlp_head(n_head, hidden, head_layers, dropout)
        self.register_buffer("past_min", torch.zeros(len(past_vars)))
        self.register_buffer("past_max", torch.ones(len(past_vars)))

    @classmethod
    def from_config(cls, cfg, past_vars, future_vars, past_steps, future_steps, step_seconds) -> "KGLSTM":
        """Build from ``cfg``, with the Q10 prior and bounds of its ``q10_*`` keys and the step [s]."""
        return cls(past_vars, future_vars, past_steps, future_steps, step_seconds, q10_init=cfg.q10_init,
                   learn_q10=cfg.learn_q10, q10_min=cfg.q10_min, q10_max=cfg.q10_max,
                   modulation_max=cfg.modulation_max, hidden=cfg.hidden, layers=cfg.layers,
                   head_layers=cfg.head_layers, dropout=cfg.dropout)

    @torch.jit.ignore
    def set_normalization(self, past_rows, future_rows, y) -> None:
        """Record the training envelope, then set the normalisation buffers as `RsoilModel.set_normalization`.

        ``past_min`` / ``past_max`` become the per-variable minimum and maximum of the transformed past rows
        (log1p for precip); `forward` clamps every network input to this range.

        Parameters
        ----------
        past_rows : torch.Tensor
            Raw driver rows of the training windows ``[n, n_past_vars]`` in canonical units: tsoil [degC],
            swc [m3 m-3], precip [mm per step].
        future_rows : torch.Tensor or None
            Raw future soil temperature rows ``[n, 1]``, or None when the model has no future inputs [degC]
        y : torch.Tensor
            Training targets ``[n_samples]`` [umol m-2 s-1]
        """
        with torch.no_grad():
            t = self.transform_past(past_rows.float())
            self.past_min.copy_(t.min(0).values)
            self.past_max.copy_(t.max(0).values)
        super().set_normalization(past_rows, future_rows, y)

    @torch.jit.ignore
    def after_normalization(self) -> None:
        """Start the Q10 base at the training mean Rsoil: set ``log_a`` so that ``a * Q10^((T_mean - 10)/10)`` equals it.

        ``T_mean`` is the training mean soil temperature [degC]; the mean Rsoil is floored at 1e-3 [umol m-2 s-1].
        """
        # start the base at the training mean: a * Q10^((T_mean - 10)/10) = mean(y)
        with torch.no_grad():
            t_mean = float(self.past_mean[self.i_t])
            self.log_a.fill_(math.log(max(float(self.y_mean), 1e-3))
                             - math.log(float(self.q10())) * (t_mean - 10.0) / 10.0)

    def q10(self) -> torch.Tensor:
        """Current Q10, the raw parameter mapped into ``[q10_min, q10_max]`` by a sigmoid.

        Returns
        -------
        torch.Tensor
            Scalar Q10 [-]
        """
        return self.q10_min + (self.q10_max - self.q10_min) * torch.sigmoid(self.q10_raw)

    def base(self, t_level: torch.Tensor) -> torch.Tensor:
        """Q10 base [µmol m-2 s-1] at temperature level ``t_level`` [°C], shape [batch]."""
        return torch.exp(self.log_a + torch.log(self.q10()) * (t_level - 10.0) / 10.0)

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """Predict Rsoil at t as the Q10 base at the temperature level times a bounded network modulation.

        ``Rsoil = a * Q10^((T_level - 10)/10) * exp(B * tanh(s))`` (module docstring), with every network input
        clamped to the training envelope.

        Parameters
        ----------
        past : torch.Tensor
            Raw drivers ``[batch, past_steps, n_past_vars]``, oldest step first, the last row at time t: tsoil [degC]
            and, if configured, swc [m3 m-3] and precip [mm per step].
        future : torch.Tensor
            Raw soil temperature of t+1 ... t+future_steps ``[batch, future_steps, 1]`` in time order, or the ignored
            ``[batch, 0, 0]`` tensor without a future window [degC]

        Returns
        -------
        torch.Tensor
            Rsoil at time t ``[batch]``, positive and finite [umol m-2 s-1]
        """
        temp = past[:, :, self.i_t]
        t_level = temp[:, -self.level_steps:].mean(1)                         # [B] °C
        t_std = self.past_std[self.i_t]
        # per-step network inputs, clamped to the training range (transformed units)
        x = self.transform_past(past)
        x = torch.maximum(torch.minimum(x, self.past_max), self.past_min)
        x = (x - self.past_mean) / self.past_std
        anom = ((temp - t_level.unsqueeze(1)) / t_std).clamp(-4.0, 4.0)
        cols: List[torch.Tensor] = []
        for j in range(self.n_seq):
            cols.append(anom if j == self.i_t else x[:, :, j])
        hp = self.past_lstm(torch.stack(cols, 2))[1][0]
        feats: List[torch.Tensor] = [hp[-1]]
        if self.has_future:
            fa = ((future[:, :, 0] - t_level.unsqueeze(1)) / t_std).clamp(-4.0, 4.0)
            hf = self.future_lstm(torch.flip(fa, [1]).unsqueeze(2))[1][0]
            feats.append(hf[-1])
        # scalar knowledge features, each clamped to its training range
        lvl = (t_level.clamp(float(self.past_min[self.i_t]), float(self.past_max[self.i_t]))
               - self.past_mean[self.i_t]) / t_std
        scal: List[torch.Tensor] = [lvl]
        if self.i_swc >= 0:
            s = x[:, :, self.i_swc]
            scal.append(s[:, -1])
            scal.append((s[:, -1] - s[:, -self.level_steps]).clamp(-4.0, 4.0))
        else:
            scal.append(torch.zeros_like(lvl))
            scal.append(torch.zeros_like(lvl))
        if self.i_p >= 0:
            rain = past[:, :, self.i_p].clamp(min=0.0)
            for h in self.horizons:
                scal.append(torch.log1p(rain[:, -h:].sum(1)).clamp(max=4.0))
            scal.append(torch.log1p(rain.sum(1)).clamp(max=4.0))
            n = rain.shape[1]
            pos = torch.arange(n, device=past.device).unsqueeze(0).expand_as(rain)
            last = torch.where(rain > 0.0, pos, torch.full_like(pos, -1)).max(1).values
            scal.append((n - 1 - last).float() / float(n))                     # 0: rain in the last step, 1: none in the window
        else:
            for k in range(5):
                scal.append(torch.zeros_like(lvl))
        feats.append(torch.stack(scal, 1))
        s_out = self.head(torch.cat(feats, 1)).squeeze(1)
        return self.base(t_level) * torch.exp(self.log_bound * torch.tanh(s_out))
