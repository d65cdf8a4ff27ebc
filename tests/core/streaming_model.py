"""Small streaming models (the streaming contract of docs/model_format.md) for the core's tests and benchmarks.

Not a model kind of `rsoil_couple.models` (the real one, ``kg_stream``, lives there): two untrained
modules that follow the contract exactly, so the C++ core, the C API, the Fortran host and the
benchmarks can be held to it.

- `EmaStreamingModel` (tests): the last valid tsoil, swc and precip (a NaN driver holds its last valid
  value), exponential moving averages of tsoil (6 h, 2 d), swc (1 d) and rain (1 d), and a count of
  steps with a missing driver; a tiny MLP (no LSTM) maps them to Rsoil. State size 8.
- `LstmStreamingModel` (benchmarks): an ``nn.LSTM`` of hidden size H over the normalised last valid
  drivers, one time step per call; state = h, c and the last valid drivers (2 H + 3 floats).

Both have ``initial_state``, ``step``, ``run`` (``step`` in a scripted loop), ``forward(past, future)``
(``run`` from the initial state, the last output) and ``site_scale``; ``streaming_meta()`` (Python
only) gives the metadata's ``streaming`` record, which `rsoil_couple.modelfile.export.export_model`
writes. `export_streaming` takes the metadata of a window model file (envelope, physical ranges and
fallback Q10 fitted on its training data) and writes a streaming file:

    python3 tests/core/streaming_model.py WINDOW_MODEL OUT [--kind ema|lstm] [--hidden H] [--spinup N]
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import List, Tuple

import torch
from torch import nn

DRIVERS = ["tsoil", "swc", "precip"]  # the order both models read (past_vars)


class _Streaming(nn.Module):
    """The plumbing shared by both models: names, windows, normalisation, hold-last-valid, run, forward."""

    __annotations__ = {"past_var_names": List[str], "future_var_names": List[str]}

    def __init__(self, envelope: dict, step_seconds: float, spinup_steps: int, state_size: int, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.past_var_names = list(DRIVERS)
        self.future_var_names = []
        self.n_past, self.n_future = len(DRIVERS), 0
        self.spinup_steps = int(spinup_steps)
        self.past_steps, self.future_steps = self.spinup_steps + 1, 0  # forward = the first output after spin-up
        self.state_size = int(state_size)
        self.step_seconds = float(step_seconds)
        lo = [envelope[v]["min"] for v in DRIVERS]
        hi = [envelope[v]["max"] for v in DRIVERS]
        is_log = [v == "precip" for v in DRIVERS]
        tlo = [math.log1p(max(x, 0.0)) if g else x for x, g in zip(lo, is_log)]
        thi = [math.log1p(max(x, 0.0)) if g else x for x, g in zip(hi, is_log)]
        self.register_buffer("x_log", torch.tensor(is_log))
        self.register_buffer("x_mid", torch.tensor([0.5 * (a + b) for a, b in zip(tlo, thi)]))
        self.register_buffer("x_half", torch.tensor([max(0.5 * (b - a), 1e-3) for a, b in zip(tlo, thi)]))
        # the initial "last valid" drivers: mid-envelope soil temperature and water, no rain
        self.register_buffer("init_last", torch.tensor([max(a, 0.0) if g else 0.5 * (a + b)
                                                        for a, b, g in zip(lo, hi, is_log)]))
        self.register_buffer("y_scale", torch.tensor(2.0))
        self.register_buffer("site_scale", torch.tensor(1.0))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Raw drivers ``[..., 3]`` (tsoil [degC], swc [m3 m-3], precip [mm per step]) -> about [-1, 1]."""
        return (torch.where(self.x_log, torch.log1p(x.clamp(min=0.0)), x) - self.x_mid) / self.x_half

    def hold(self, last: torch.Tensor, drivers: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(the drivers with each non-finite value replaced by the last valid one, finite mask)."""
        valid = torch.isfinite(drivers)
        return torch.where(valid, drivers, last), valid

    def output(self, z: torch.Tensor) -> torch.Tensor:
        """Rsoil [umol m-2 s-1] >= 0 from the head's raw output ``[ncol, 1]``."""
        return nn.functional.softplus(z).squeeze(1) * self.y_scale * self.site_scale

    @torch.jit.export
    def run(self, state: torch.Tensor, drivers: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``drivers [ncol, T, 3]``: T calls of ``step``; (Rsoil ``[ncol, T]``, the state after the last)."""
        outs: List[torch.Tensor] = []
        for t in range(drivers.shape[1]):
            y, state = self.step(state, drivers[:, t].contiguous())
            outs.append(y)
        return torch.stack(outs, 1), state

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """Window compatibility: ``run`` from the initial state over ``past``; Rsoil of its last step ``[batch]``."""
        y, _ = self.run(self.initial_state(past.shape[0]), past)
        return y[:, -1]

    @torch.jit.ignore
    def streaming_meta(self) -> dict:
        """The metadata's ``streaming`` record."""
        return {"state_size": self.state_size, "spinup_steps": self.spinup_steps, "missing": "hold",
                "state_layout": [{"name": n, "size": s} for n, s in self.layout()]}


class EmaStreamingModel(_Streaming):
    """EMAs of tsoil and swc with hold-last-valid, and a tiny MLP (see the module docstring)."""

    TAU_S = (6 * 3600.0, 2 * 86400.0, 86400.0, 86400.0)  # ema of tsoil, tsoil, swc, precip [s]

    def __init__(self, envelope: dict, step_seconds: float = 1800, spinup_steps: int = 12, hidden: int = 16,
                 seed: int = 0):
        super().__init__(envelope, step_seconds, spinup_steps, 8, seed)
        self.register_buffer("alpha", torch.tensor([1.0 - math.exp(-step_seconds / tau) for tau in self.TAU_S]))
        # hidden 16, not 8: libtorch's 7 -> 8 matrix product rounds by row on some CPUs (AVX-512), and the
        # tests of batch invariance need a module whose rows are independent (streaming_rows_independent)
        self.mlp = nn.Sequential(nn.Linear(7, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    @torch.jit.ignore
    def layout(self) -> list:
        return [("last_valid", 3), ("ema", 4), ("n_missing", 1)]

    @torch.jit.export
    def initial_state(self, ncol: int) -> torch.Tensor:
        """``[ncol, 8]``: mid-envelope tsoil and swc as last valid drivers and EMAs, no rain, no missing steps."""
        last = self.init_last.unsqueeze(0).expand(ncol, 3)
        ema = torch.stack([last[:, 0], last[:, 0], last[:, 1], torch.zeros_like(last[:, 2])], 1)
        return torch.cat([last, ema, torch.zeros_like(last[:, :1])], 1).contiguous()

    @torch.jit.export
    def step(self, state: torch.Tensor, drivers: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """One step: ``state [ncol, 8]``, ``drivers [ncol, 3]`` (NaN = missing) -> (Rsoil ``[ncol]``, new state)."""
        return self.advance(state, drivers)

    def advance(self, state: torch.Tensor, drivers: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The body of ``step`` (TorchScript has no ``super()``: tests' variants of ``step`` call this)."""
        last, valid = self.hold(state[:, 0:3], drivers)
        target = torch.stack([last[:, 0], last[:, 0], last[:, 1], last[:, 2]], 1)
        ema = state[:, 3:7] + self.alpha * (target - state[:, 3:7])
        missing = state[:, 7:8] + (~valid).any(dim=1, keepdim=True).to(torch.float32)
        ema_x = torch.stack([ema[:, 0], ema[:, 2], ema[:, 3]], 1)
        feats = torch.cat([self.normalise(last), self.normalise(ema_x), (ema[:, 1:2] - self.x_mid[0]) / self.x_half[0]], 1)
        return self.output(self.mlp(feats)), torch.cat([last, ema, missing], 1)


class LstmStreamingModel(_Streaming):
    """One ``nn.LSTM`` step per call over the normalised last valid drivers (see the module docstring)."""

    def __init__(self, envelope: dict, step_seconds: float = 1800, spinup_steps: int = 96, hidden: int = 16,
                 seed: int = 0):
        super().__init__(envelope, step_seconds, spinup_steps, 2 * hidden + 3, seed)
        self.hidden = int(hidden)
        self.lstm = nn.LSTM(3, hidden, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    @torch.jit.ignore
    def layout(self) -> list:
        return [("lstm_h", self.hidden), ("lstm_c", self.hidden), ("last_valid", 3)]

    @torch.jit.export
    def initial_state(self, ncol: int) -> torch.Tensor:
        """``[ncol, 2 H + 3]``: zero h and c, mid-envelope tsoil and swc and no rain as last valid drivers."""
        zeros = torch.zeros(ncol, 2 * self.hidden, dtype=self.init_last.dtype)
        return torch.cat([zeros, self.init_last.unsqueeze(0).expand(ncol, 3)], 1).contiguous()

    @torch.jit.export
    def step(self, state: torch.Tensor, drivers: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """One step: ``state [ncol, 2 H + 3]``, ``drivers [ncol, 3]`` (NaN = missing) -> (Rsoil ``[ncol]``, new state)."""
        H = self.hidden
        last, _ = self.hold(state[:, 2 * H:], drivers)
        h0 = state[:, :H].unsqueeze(0).contiguous()
        c0 = state[:, H:2 * H].unsqueeze(0).contiguous()
        _, (h, c) = self.lstm(self.normalise(last).unsqueeze(1), (h0, c0))
        return self.output(self.head(h[0])), torch.cat([h[0], c[0], last], 1)


MODELS = {"ema": EmaStreamingModel, "lstm": LstmStreamingModel}


def export_streaming(module: _Streaming, window_meta: dict, path: str | Path, kind: str) -> dict:
    """Write ``module`` as a streaming model file with the ranges and fallback Q10 of ``window_meta``.

    From a window model's metadata (a model trained by `rsoil_couple.training.example_model`) it keeps
    the step, drivers, depth, envelope, physical ranges, fallback Q10 and training record; sets
    ``model_kind``, the spin-up window ``past_steps = spinup_steps + 1``, no future window, test metrics
    of an untrained model (null), and lets `export_model` add the ``streaming`` record. Returns the meta.
    """
    from rsoil_couple.modelfile.export import export_model

    assert [v["name"] for v in window_meta["past_vars"]] == DRIVERS, window_meta["past_vars"]
    dt = window_meta["step_seconds"]
    meta = {k: v for k, v in window_meta.items()
            if k not in ("model_id", "torch_version", "rsoil_couple_version", "ensemble", "streaming")}
    meta.update(model_kind=kind, past_steps=module.past_steps, past_hours=module.past_steps * dt / 3600.0,
                future_steps=0, future_hours=0.0, future_vars=[],
                test_metrics={"mse": None, "nse": None, "cc": None, "kge": None, "n": 0})
    meta["training"] = dict(meta["training"], note="untrained streaming test model (random weights): "
                            "the streaming contract only; ranges and fallback Q10 of the window model it was made from")
    return export_model(module, meta, path)


def make(window_model: str | Path, out: str | Path, kind: str = "ema", hidden: int | None = None,
         spinup: int | None = None, seed: int = 0) -> dict:
    """A streaming file of ``kind`` ('ema' or 'lstm') from a window model file's metadata; returns the meta."""
    from rsoil_couple.modelfile.export import load_model

    _, wmeta = load_model(window_model)
    kw = {"seed": seed}
    if hidden is not None:
        kw["hidden"] = hidden
    if spinup is not None:
        kw["spinup_steps"] = spinup
    module = MODELS[kind](wmeta["envelope"], wmeta["step_seconds"], **kw)
    return export_streaming(module, wmeta, out, f"{kind}_stream_test")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("window_model")
    p.add_argument("out")
    p.add_argument("--kind", choices=sorted(MODELS), default="ema")
    p.add_argument("--hidden", type=int)
    p.add_argument("--spinup", type=int)
    a = p.parse_args(argv)
    meta = make(a.window_model, a.out, a.kind, a.hidden, a.spinup)
    print(f"wrote {a.out}: {meta['model_kind']}, streaming {meta['streaming']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
