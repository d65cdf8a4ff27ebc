"""A small STREAMING model file for tests and benchmarks (the contract: docs/model_format.md, "Streaming models").

Not a trained model and not a `rsoil_couple.models` kind: a module that follows the streaming contract
exactly — ``initial_state``, ``step``, ``run``, ``forward``, ``site_scale`` — so that predict, emulate
and the core can be tested on it. Per column its state holds the last valid value of each driver
(a NaN driver keeps it: "hold"), a count of steps with a missing driver, exponential moving averages of
tsoil and swc, and the hidden and cell state of an LSTM cell whose output goes through a linear head
and softplus. Weights are drawn from a seed, scaled so that Rsoil is O(1) µmol m-2 s-1.

    from tests.streaming_model import write_streaming_model
    meta = write_streaming_model(path, spinup_steps=96, past_steps=48, hidden=16)
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import torch
from torch import nn

DRIVERS = ["tsoil", "swc", "precip"]


class EmaStreamModel(nn.Module):
    """EMAs of tsoil and swc with hold-last-valid, an LSTM cell and a softplus head (streaming contract)."""

    __annotations__ = {"past_var_names": List[str], "future_var_names": List[str]}

    def __init__(self, hidden: int = 16, past_steps: int = 48, seed: int = 0, site_scale: float = 1.0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.past_var_names = list(DRIVERS)
        self.future_var_names: List[str] = []
        self.n_past = len(DRIVERS)
        self.n_future = 0
        self.past_steps = int(past_steps)
        self.future_steps = 0
        self.hidden = int(hidden)
        self.state_size = self.n_past + 1 + 2 + 2 * self.hidden
        self.register_buffer("x_mean", torch.tensor([12.0, 0.2, 0.05]))
        self.register_buffer("x_std", torch.tensor([8.0, 0.1, 0.3]))
        self.register_buffer("x_init", torch.tensor([12.0, 0.2, 0.0]))  # held value before any valid one
        self.register_buffer("alpha", torch.tensor([1.0 / 48.0, 1.0 / 96.0]))  # EMA weights per step
        self.register_buffer("site_scale", torch.tensor(float(site_scale)))
        self.cell = nn.LSTMCell(self.n_past + 2, self.hidden)
        self.head = nn.Linear(self.hidden, 1)
        with torch.no_grad():
            for p in list(self.cell.parameters()) + list(self.head.parameters()):
                p.copy_(torch.randn(p.shape, generator=g) * 0.4)
            self.head.bias.fill_(0.5)

    def initial_state(self, ncol: int) -> torch.Tensor:
        """[ncol, S]: drivers held at `x_init`, no missing step counted, EMAs at `x_init`, LSTM at 0."""
        held = self.x_init.expand(ncol, self.n_past)
        count = torch.zeros(ncol, 1)
        ema = self.x_init[:2].expand(ncol, 2)
        hc = torch.zeros(ncol, 2 * self.hidden)
        return torch.cat([held, count, ema, hc], dim=1)

    def step(self, state: torch.Tensor, drivers: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """One step: drivers [ncol, 3] raw (NaN = hold) -> (Rsoil [ncol], new state [ncol, S])."""
        n, H = self.n_past, self.hidden
        ok = torch.isfinite(drivers)
        x = torch.where(ok, drivers, state[:, :n])
        count = state[:, n:n + 1] + (~ok).any(dim=1, keepdim=True).to(state.dtype)
        ema = state[:, n + 1:n + 3]
        ema = ema + self.alpha * (x[:, :2] - ema)
        xt = torch.cat([x[:, :2], torch.log1p(x[:, 2:3].clamp(min=0.0))], dim=1)
        feats = torch.cat([(xt - self.x_mean) / self.x_std, (ema - self.x_mean[:2]) / self.x_std[:2]], dim=1)
        h, c = self.cell(feats, (state[:, n + 3:n + 3 + H], state[:, n + 3 + H:]))
        y = torch.nn.functional.softplus(self.head(h)).squeeze(1) * self.site_scale
        return y, torch.cat([x, count, ema, h, c], dim=1)

    def run(self, state: torch.Tensor, drivers: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """drivers [ncol, T, 3] -> (Rsoil [ncol, T], state after T steps): T calls of `step`."""
        out: List[torch.Tensor] = []
        for t in range(drivers.size(1)):
            y, state = self.step(state, drivers[:, t])
            out.append(y)
        if len(out) == 0:
            return torch.zeros(drivers.size(0), 0), state
        return torch.stack(out, dim=1), state

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """Window compatibility: `run` from `initial_state` over `past`, the last output."""
        y, _ = self.run(self.initial_state(past.size(0)), past)
        return y[:, -1]


def streaming_meta(module: EmaStreamModel, spinup_steps: int, step_seconds: int = 1800,
                   envelope: dict | None = None) -> dict:
    """rsoil_meta.json for `module` (export_model fills model_id and the versions)."""
    past_steps = module.past_steps
    env = envelope or {"tsoil": {"min": -5.0, "max": 35.0}, "swc": {"min": 0.02, "max": 0.5},
                       "precip": {"min": 0.0, "max": 40.0}}
    return {
        "schema": "rsoil_meta", "model_kind": "test_ema_stream", "step_seconds": int(step_seconds),
        "past_hours": past_steps * step_seconds / 3600.0, "past_steps": past_steps,
        "future_hours": 0.0, "future_steps": 0,
        "past_vars": [{"name": "tsoil", "units": "degC"}, {"name": "swc", "units": "m3 m-3"},
                      {"name": "precip", "units": "mm"}],
        "future_vars": [], "depth_m": 0.15, "output": {"name": "rsoil", "units": "umol m-2 s-1"},
        "envelope": env,
        "physical_range": {"tsoil": {"min": -50.0, "max": 70.0}, "swc": {"min": 0.0, "max": 1.0},
                           "precip": {"min": 0.0, "max": 500.0}},
        "fallback_q10": {"form": "q10_swc", "params": {"a": 0.8, "b": 2.0, "c": 0.5}, "tref_c": 10.0,
                         "swc_units": "m3 m-3", "fitted_on": "test values (not fitted)"},
        "training": {"sites": ["NONE (untrained test module)"], "periods": [], "n_train": 0, "n_val": 0,
                     "seed": 0},
        "test_metrics": {"mse": None, "nse": None, "cc": None, "kge": None, "n": 0},
        "streaming": {"state_size": module.state_size, "spinup_steps": int(spinup_steps), "missing": "hold",
                      "state_layout": [{"name": "held_drivers", "size": module.n_past},
                                       {"name": "n_missing_steps", "size": 1},
                                       {"name": "ema_tsoil_swc", "size": 2},
                                       {"name": "lstm_h", "size": module.hidden},
                                       {"name": "lstm_c", "size": module.hidden}]},
    }


def write_streaming_model(path: str | Path, spinup_steps: int = 96, past_steps: int = 48, hidden: int = 16,
                          seed: int = 0, site_scale: float = 1.0, envelope: dict | None = None) -> dict:
    """Export an `EmaStreamModel` with its metadata to `path` (rsoil_couple.modelfile.export); returns the meta."""
    from rsoil_couple.modelfile.export import export_model

    module = EmaStreamModel(hidden=hidden, past_steps=past_steps, seed=seed, site_scale=site_scale)
    return export_model(module, streaming_meta(module, spinup_steps, envelope=envelope), path)
