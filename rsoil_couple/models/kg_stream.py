"""Knowledge-guided STREAMING model: a physical base times a bounded network, state carried step to step.

Rsoil(t) = site_scale · f(T_b) · (θ/θ_ref)^c · exp(B · tanh(s(t)) · trust(t))        [µmol m-2 s-1]

with the temperature response ``f`` (1 at 10 °C) Lloyd & Taylor's (1994, the default,
``f = exp(E0 (1/(10 − T0) − 1/(T_b − T0)))``, T0 = −46.02 °C, E0 learned: the sensitivity grows toward
the cold, as respiration falls steeply into winter) or an exponential ``Q10^((T_b − 10)/10)``
(``temperature_form = "q10"``).

- ``T_b = T24 + w · (T − T24)``: the temperature LEVEL (``T24``, exponential moving average of soil
  temperature with a 24 h time constant) plus a learned share ``w ∈ [0, 1]`` of the diel anomaly.
  ``E0`` (or ``Q10 ∈ [q10_min, q10_max]``), the moisture exponent ``c ∈ [0, c_max]`` and ``w`` are learned and
  shared by every site; ``θ_ref = 0.1 m3 m-3``; θ is held inside the SWC range of training
  (floored at 0.01): the power law is not extrapolated to wetter or drier soil than it was fitted on.
  ``site_scale`` is the reference rate at 10 °C and θ_ref of ONE site (a buffer: the trainer learns
  one per site; a file carries the scale it uses and the metadata says how it was obtained; ``rsoil-couple calibrate`` refits it).
- ``s(t)`` comes from a network (an optional LSTM of width ``hidden`` carried step to step, and a dense
  head) that reads knowledge features kept incrementally in the state: the diel anomaly ``T − T24``,
  the 3 h change ``T − T3``, SWC and its departures from its 24 h and 7 day averages, rain totals over
  6 h, 24 h, 72 h and 7 days (moving averages of the rain rate × their time constant), the hours since
  the last rain and the current rain. The temperature level is NOT a network input by default
  (``sees_level``): across seasons and sites the level acts through the Q10 base alone, so Q10 is
  identified by multi-season data and outside the training envelope the physics sets the level.
  Every network input is clamped to its training range; ``B = log(modulation_max)``. Outside the
  training envelope the modulation fades: ``s`` is multiplied by ``exp(−d)``, ``d`` the distance
  outside the training range of the features and of the temperature level in training standard
  deviations (`KGStream.trust`), so far from its experience the physical base alone sets Rsoil.
  (``envelope = "clamp"`` keeps it whole; with ``temperature_form = "q10"``, ``moisture_form = "none"``
  and ``sees_level`` the model has the window kg_lstm's structure: a Q10 base times a network.)
- ``recent_hours`` > 0: the head also reads the last K steps of soil temperature, SWC and rain themselves
  (a delay line in the state, `rsoil_couple.models.recent`), as the window kg_lstm reads its past window.
- The moving averages are exact for any step (``α = 1 − exp(−Δt/τ)``); with ``hidden = 0`` (no LSTM)
  and no delay line the whole model is defined in hours, and the same weights run at other steps (`set_step`).

State per column (``streaming`` metadata record; docs/model_format.md, "Streaming models"): the last
valid value of each driver, whether one was seen, the moving averages, the hours since rain, the
number of steps taken and of steps with a held (missing) driver, the delay line (if any), then the LSTM's
h and c. A NaN driver keeps its last valid value (``missing = "hold"``) and is counted; before a variable
was ever seen its averages start at its first valid value (rain averages start at 0, hours since rain at
720).
Spin-up: the 7-day averages need ``spinup_hours`` (168 h) before the state stands for the site.
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import torch
from torch import nn

from .base import StreamingModel, mlp_head
from .recent import RECENT_LAYOUT_NAME, push_recent, recent_features, recent_steps_for
from .stream_options import ENVELOPE_RULES, MOISTURE_FORMS, TEMPERATURE_FORMS

TAU_H = (3.0, 24.0, 24.0, 168.0, 6.0, 24.0, 72.0, 168.0)  # T3, T24, W24, W168, R6, R24, R72, R168 [h]
RAIN_CAP_H = 720.0
THETA_REF = 0.1
SPINUP_HOURS = 168.0
#: feature-state slots (before the LSTM's h and c)
LAYOUT = (("last_valid_tsoil_swc_precip", 3), ("seen_tsoil_swc_precip", 3), ("ema_tsoil_3h_24h", 2),
          ("ema_swc_24h_168h", 2), ("ema_rain_rate_6h_24h_72h_168h", 4), ("hours_since_rain", 1),
          ("steps_taken", 1), ("steps_with_held_driver", 1))
NFS = sum(n for _, n in LAYOUT)  # 17
#: network features, in this order; the model keeps those its variables allow
FEATURES = ("t_anomaly", "t_change_3h", "t_level", "swc", "swc_minus_24h", "swc_minus_168h",
            "rain_6h", "rain_24h", "rain_72h", "rain_168h", "hours_since_rain", "rain_now")
COUNT_CAP = 1.0e7
E0_RANGE = (30.0, 800.0)   # [K]
LT_T0_C = -46.02           # [degC]


def _feature_index(past_vars: Sequence[str], sees_level: bool, k: int) -> Tuple[List[int], List[int]]:
    """The kept `FEATURES` and the kept features of the delay line (its 3 blocks of ``k`` follow them)."""
    keep = [0, 1] + ([2] if sees_level else [])
    blocks = [0]
    if "swc" in past_vars:
        keep += [3, 4, 5]
        blocks.append(1)
    if "precip" in past_vars:
        keep += [6, 7, 8, 9, 10, 11]
        blocks.append(2)
    return keep, [len(FEATURES) + b * k + i for b in blocks for i in range(k)]


class KGStream(StreamingModel):
    """See the module docstring. ``past_vars`` must contain ``tsoil``; ``future_vars`` must be empty."""

    kind = "kg_stream"
    uses_future = False

    def __init__(self, past_vars: Sequence[str], future_vars: Sequence[str], past_steps: int,
                 future_steps: int, step_seconds: float, hidden: int = 16, head_layers: int = 1,
                 head_hidden: int = 32, dropout: float = 0.0, q10_init: float = 2.0, q10_min: float = 1.0,
                 q10_max: float = 5.0, c_max: float = 3.0, modulation_max: float = 10.0,
                 sees_level: bool = False, temperature_form: str = "lloyd_taylor", moisture_form: str = "power",
                 envelope: str = "fade", learn_temperature: bool = True, recent_hours: float = 0.0):
        super().__init__(past_vars, [], past_steps, 0)
        if "tsoil" not in past_vars:
            raise ValueError("model.kind = 'kg_stream' needs 'tsoil' in data.past_vars")
        if list(future_vars):
            raise ValueError(f"model.kind = 'kg_stream' reads no future window; data.future_vars must be [] "
                             f"(got {list(future_vars)})")
        if not (1.0 <= q10_min < q10_init < q10_max):
            raise ValueError(f"kg_stream needs 1 <= q10_min < q10_init < q10_max, got {q10_min}, {q10_init}, {q10_max}")
        if modulation_max <= 1.0:
            raise ValueError(f"model.modulation_max must be > 1, got {modulation_max}")
        if temperature_form not in TEMPERATURE_FORMS:
            raise ValueError(f"model.temperature_form = {temperature_form!r}; expected one of {TEMPERATURE_FORMS}")
        if moisture_form not in MOISTURE_FORMS:
            raise ValueError(f"model.moisture_form = {moisture_form!r}; expected one of {MOISTURE_FORMS}")
        if envelope not in ENVELOPE_RULES:
            raise ValueError(f"model.envelope = {envelope!r}; expected one of {ENVELOPE_RULES}")
        if hidden < 0:
            raise ValueError(f"model.hidden must be >= 0 for kg_stream (0: no LSTM), got {hidden}")
        pv = list(past_vars)
        # column of each canonical driver in `drivers` (-1: not read)
        self.col_t = pv.index("tsoil")
        self.col_w = pv.index("swc") if "swc" in pv else -1
        self.col_p = pv.index("precip") if "precip" in pv else -1
        self.has_swc = self.col_w >= 0
        self.recent_hours = float(recent_hours)
        self.recent_steps = recent_steps_for(recent_hours, step_seconds)   # K (0: no delay line)
        kept, lagged = _feature_index(pv, sees_level, self.recent_steps)
        self.feat_idx: List[int] = kept + lagged
        self.n_feat = len(self.feat_idx)
        self.n_lstm_feat = len(kept)   # the LSTM reads the kept features; the head also the delay line's
        self.register_buffer("feat_index", torch.tensor(self.feat_idx, dtype=torch.long))
        # features whose distance outside the training envelope shrinks the modulation (kept ones + level)
        self.env_idx: List[int] = sorted(set(kept) | {2})
        self.register_buffer("env_index", torch.tensor(self.env_idx, dtype=torch.long))
        self.register_buffer("env_min", torch.full((len(self.env_idx),), -1.0e30))
        self.register_buffer("env_max", torch.full((len(self.env_idx),), 1.0e30))
        self.register_buffer("env_std", torch.ones(len(self.env_idx)))
        # the SWC range of training: the base's moisture power law is not extrapolated beyond it
        self.register_buffer("theta_range", torch.tensor([0.01, 1.0]))
        self.register_buffer("reads", torch.tensor([True, self.col_w >= 0, self.col_p >= 0]))
        self.hidden = int(hidden)
        self.nfs = NFS + 3 * self.recent_steps
        self.state_size = self.nfs + 2 * self.hidden
        self.rain_cap_h, self.count_cap, self.theta_ref = RAIN_CAP_H, COUNT_CAP, THETA_REF
        self.q10_min, self.q10_max, self.c_max = float(q10_min), float(q10_max), float(c_max)
        self.log_bound = float(math.log(modulation_max))
        self.q10_raw = nn.Parameter(torch.tensor(math.log((q10_init - q10_min) / (q10_max - q10_init))))
        self.lloyd_taylor = temperature_form == "lloyd_taylor"
        self.temperature_form = temperature_form
        self.e0_min, self.e0_max, self.t0_c = E0_RANGE[0], E0_RANGE[1], LT_T0_C
        # Lloyd & Taylor (1994): E0 starts at their 308.56 K
        self.e0_raw = nn.Parameter(torch.tensor(math.log((308.56 - E0_RANGE[0]) / (E0_RANGE[1] - 308.56))))
        self.q10_raw.requires_grad_(bool(learn_temperature))   # False: a prior, Q10 = q10_init or E0 = 308.56 K
        self.e0_raw.requires_grad_(bool(learn_temperature))
        self.c_raw = nn.Parameter(torch.tensor(-1.0))     # c = c_max * sigmoid(c_raw)
        # DAMM substrate limitation: K(T) = exp(k_raw + softplus(ek_raw) (T_b - 10)/10) (relative to S(θ_ref) = 1)
        self.damm = moisture_form == "damm"
        self.power = moisture_form == "power"
        self.moisture_form = moisture_form
        self.fade = envelope == "fade"
        self.k_raw = nn.Parameter(torch.tensor(0.0))
        self.ek_raw = nn.Parameter(torch.tensor(0.0))
        self.w_raw = nn.Parameter(torch.tensor(-2.0))     # w = sigmoid(w_raw)
        self.register_buffer("site_scale", torch.tensor(1.0))
        # the share of the network's modulation kept, chosen on held-out validation rows after training
        # (`rsoil_couple.training.stream.choose_modulation_weight`): 0 = the physical base alone
        self.register_buffer("modulation_weight", torch.tensor(1.0))
        self.register_buffer("alpha", torch.zeros(len(TAU_H)))
        self.register_buffer("tau_h", torch.tensor(TAU_H))
        self.register_buffer("dt_h", torch.tensor(1.0))
        self.register_buffer("feat_mean", torch.zeros(self.n_feat))
        self.register_buffer("feat_std", torch.ones(self.n_feat))
        self.register_buffer("feat_min", torch.full((self.n_feat,), -1.0e30))
        self.register_buffer("feat_max", torch.full((self.n_feat,), 1.0e30))
        self.lstm = nn.ModuleList([nn.LSTM(self.n_lstm_feat, self.hidden, batch_first=True)] if self.hidden > 0 else [])
        self.head = mlp_head(self.n_feat + self.hidden, head_hidden, head_layers, dropout)
        with torch.no_grad():  # start as the physical base (modulation 1)
            last = self.head[-1]
            assert isinstance(last, nn.Linear)
            last.weight.zero_()
            last.bias.zero_()
        self.step_seconds = float(step_seconds)
        self.spinup_steps = int(math.ceil(SPINUP_HOURS * 3600.0 / step_seconds))
        self.set_step(step_seconds)

    @classmethod
    def from_config(cls, cfg, past_vars, future_vars, past_steps, future_steps, step_seconds) -> "KGStream":
        """Build from ``cfg`` (hidden, head_layers, dropout, the ``q10_*`` bounds, modulation_max, the base's
        forms, sees_level, envelope; ``learn_q10 = false`` keeps the temperature response at its start).
        """
        return cls(past_vars, future_vars, past_steps, future_steps, step_seconds, hidden=cfg.hidden,
                   head_layers=cfg.head_layers, dropout=cfg.dropout, q10_init=cfg.q10_init,
                   q10_min=cfg.q10_min, q10_max=max(cfg.q10_max, cfg.q10_init + 1.0),
                   modulation_max=cfg.modulation_max, temperature_form=cfg.temperature_form,
                   moisture_form=cfg.moisture_form, sees_level=cfg.sees_level, envelope=cfg.envelope,
                   learn_temperature=cfg.learn_q10, recent_hours=cfg.recent_hours)

    # -- step-independent parameterisation -------------------------------------------------------
    @torch.jit.ignore
    def set_step(self, step_seconds: float) -> None:
        """Set the moving-average weights for a step [s] (exact for any step; the LSTM, if any, was trained at one;
        a delay line is counted in steps, so a model with one keeps the step it was built for).
        """
        if self.recent_steps and float(step_seconds) != self.step_seconds:
            raise ValueError(f"model.recent_hours = {self.recent_hours:g}: this model's delay line is "
                             f"{self.recent_steps} steps of {self.step_seconds:g} s; it cannot run at {step_seconds} s")
        with torch.no_grad():
            dt_h = float(step_seconds) / 3600.0
            self.dt_h.fill_(dt_h)
            self.alpha.copy_(1.0 - torch.exp(-dt_h / self.tau_h))

    @torch.jit.ignore
    def streaming_meta(self) -> dict:
        """The model file's ``streaming`` record (docs/model_format.md, "Streaming models")."""
        layout = [{"name": n, "size": s} for n, s in LAYOUT]
        if self.recent_steps:
            layout.append({"name": RECENT_LAYOUT_NAME, "size": 3 * self.recent_steps})
        if self.hidden:
            layout += [{"name": "lstm_h", "size": self.hidden}, {"name": "lstm_c", "size": self.hidden}]
        return {"state_size": self.state_size, "spinup_steps": self.spinup_steps, "missing": "hold",
                "state_layout": layout}

    @torch.jit.ignore
    def physics(self) -> dict:
        """The learned physical parameters: the temperature response (``q10`` [-]: for Lloyd-Taylor the ratio
        between 15 and 5 degC, with ``e0_K`` and the ratios over 0-10 and 20-30 degC), moisture exponent c [-],
        anomaly share w [-], site scale.
        """
        with torch.no_grad():
            out = {**({"moisture_exponent": float(self.moisture_exponent())} if self.damm or self.power else {}),
                   "modulation_weight": float(self.modulation_weight),
                   **({"half_saturation_10C": float(torch.exp(self.k_raw)),
                       "half_saturation_q10": float(torch.exp(nn.functional.softplus(self.ek_raw)))} if self.damm else {}),
                   "anomaly_share": float(torch.sigmoid(self.w_raw)), "site_scale": float(self.site_scale)}
            if self.lloyd_taylor:
                lr = lambda a, b: float(torch.exp(self.log_temperature_response(torch.tensor(b))  # noqa: E731
                                                  - self.log_temperature_response(torch.tensor(a))))
                out.update({"e0_K": float(self.e0()), "q10": lr(5.0, 15.0), "q10_0_10C": lr(0.0, 10.0),
                            "q10_20_30C": lr(20.0, 30.0)})
            else:
                out["q10"] = float(self.q10())
            return out

    def q10(self) -> torch.Tensor:
        """Q10 [-] in ``[q10_min, q10_max]`` (the ``q10`` form's parameter)."""
        return self.q10_min + (self.q10_max - self.q10_min) * torch.sigmoid(self.q10_raw)

    def e0(self) -> torch.Tensor:
        """Lloyd-Taylor activation parameter E0 [K] in `E0_RANGE` (the ``lloyd_taylor`` form's parameter)."""
        return self.e0_min + (self.e0_max - self.e0_min) * torch.sigmoid(self.e0_raw)

    def log_temperature_response(self, t_c: torch.Tensor) -> torch.Tensor:
        """Log of the temperature factor, 0 at 10 degC, for temperatures ``t_c`` [degC] (any shape)."""
        if self.lloyd_taylor:
            t = t_c.clamp(min=self.t0_c + 6.0)
            return self.e0() * (1.0 / (10.0 - self.t0_c) - 1.0 / (t - self.t0_c))
        return torch.log(self.q10()) * (t_c - 10.0) / 10.0

    def moisture_exponent(self) -> torch.Tensor:
        """The exponent c of ``(θ/θ_ref)^c`` [-] in ``[0, c_max]``."""
        return self.c_max * torch.sigmoid(self.c_raw)

    # -- the state ---------------------------------------------------------------------------------
    @torch.jit.export
    def initial_state(self, ncol: int) -> torch.Tensor:
        """The state of a column that has seen nothing ``[ncol, state_size]`` (float32)."""
        s = torch.zeros(ncol, self.state_size)
        s[:, 14] = self.rain_cap_h
        return s

    def _drivers3(self, drivers: torch.Tensor) -> torch.Tensor:
        """``[n, n_past_vars]`` in past_var_names order -> ``[n, 3]`` tsoil, swc, precip (0 where not read)."""
        z = torch.zeros_like(drivers[:, 0])
        t = drivers[:, self.col_t]
        w = drivers[:, self.col_w] if self.col_w >= 0 else z
        p = drivers[:, self.col_p] if self.col_p >= 0 else z
        return torch.stack([t, w, p], 1)

    def advance(self, fs: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor,
                dt_h: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step of the feature state (no learned parameters).

        Parameters
        ----------
        fs : torch.Tensor
            Feature state ``[n, nfs]`` (the first ``nfs`` slots of the state: `NFS`, then the delay line).
        x : torch.Tensor
            Raw drivers ``[n, 3]``: tsoil [degC], swc [m3 m-3], precip [mm per step]; NaN = missing.
        alpha : torch.Tensor
            Moving-average weights ``[n, 8]`` or ``[8]`` for the step [-]
        dt_h : torch.Tensor
            The step ``[n, 1]`` or 0-d [h]

        Returns
        -------
        (new feature state [n, nfs], features [n, 12 + 3K] in `FEATURES` order then the delay line's
        (`rsoil_couple.models.recent`), base inputs [n, 3]: T24 [degC], T − T24 [degC], θ [m3 m-3])
        """
        valid = torch.isfinite(x)
        held = (self.reads & ~valid).any(1)
        xv = torch.where(valid, x, fs[:, 0:3])
        first = (fs[:, 3:6] < 0.5) & valid
        seen = torch.where(valid, torch.ones_like(xv), fs[:, 3:6])
        a = alpha.expand(x.shape[0], 8) if alpha.dim() == 1 else alpha
        tt = xv[:, 0:1]
        ema_t = fs[:, 6:8] + a[:, 0:2] * (tt - fs[:, 6:8])
        ema_t = torch.where(first[:, 0:1], tt.expand(-1, 2), ema_t)
        ww = xv[:, 1:2]
        ema_w = fs[:, 8:10] + a[:, 2:4] * (ww - fs[:, 8:10])
        ema_w = torch.where(first[:, 1:2], ww.expand(-1, 2), ema_w)
        dth = dt_h.expand(x.shape[0], 1) if dt_h.dim() == 0 else dt_h
        p = xv[:, 2:3].clamp(min=0.0)
        ema_r = fs[:, 10:14] + a[:, 4:8] * (p / dth - fs[:, 10:14])
        rained = valid[:, 2:3] & (x[:, 2:3] > 0.0)
        hsr = torch.where(rained, torch.zeros_like(p), (fs[:, 14:15] + dth).clamp(max=self.rain_cap_h))
        nst = (fs[:, 15:16] + 1.0).clamp(max=self.count_cap)
        nheld = (fs[:, 16:17] + held.unsqueeze(1).float()).clamp(max=self.count_cap)
        new = torch.cat([xv, seen, ema_t, ema_w, ema_r, hsr, nst, nheld], 1)
        tau = self.tau_h[4:8].unsqueeze(0)
        feats = torch.cat([tt - ema_t[:, 1:2], tt - ema_t[:, 0:1], ema_t[:, 1:2], ww, ww - ema_w[:, 0:1],
                           ww - ema_w[:, 1:2], torch.log1p(ema_r * tau), torch.log1p(hsr), torch.log1p(p)], 1)
        base_in = torch.cat([ema_t[:, 1:2], tt - ema_t[:, 1:2], ww], 1)
        if self.recent_steps > 0:
            line = fs[:, 17:]   # after the `NFS` feature slots
            feats = torch.cat([feats, recent_features(line, ema_t[:, 1:2], ww)], 1)
            new = torch.cat([new, push_recent(line, torch.cat([tt, ww, torch.log1p(p)], 1))], 1)
        return new, feats, base_in

    # -- the learned part --------------------------------------------------------------------------
    def norm_features(self, feats: torch.Tensor) -> torch.Tensor:
        """Select, clamp to the training range and standardise the features ``[..., 12 + 3K]`` -> ``[..., n_feat]``."""
        f = torch.index_select(feats, -1, self.feat_index)
        f = torch.maximum(torch.minimum(f, self.feat_max), self.feat_min)
        return (f - self.feat_mean) / self.feat_std

    def base(self, base_in: torch.Tensor) -> torch.Tensor:
        """The physical base ``[...]`` [µmol m-2 s-1] from ``[..., 3]`` (T24 [degC], T − T24 [degC], θ [m3 m-3])."""
        tb = base_in[..., 0] + torch.sigmoid(self.w_raw) * base_in[..., 1]
        b = self.site_scale * torch.exp(self.log_temperature_response(tb))
        if self.has_swc and self.damm:
            # dry side: the diffusion limit itself (-> 0); wet side held at the wettest training soil
            theta = torch.minimum(base_in[..., 2], self.theta_range[1]).clamp(min=0.001)
            s = torch.exp(self.moisture_exponent() * torch.log(theta / self.theta_ref))
            k10 = torch.exp(self.k_raw)
            k = k10 * torch.exp(nn.functional.softplus(self.ek_raw) * (tb - 10.0) / 10.0)
            b = b * s / (k + s) * (1.0 + k10)
        elif self.has_swc and self.power:
            theta = torch.maximum(torch.minimum(base_in[..., 2], self.theta_range[1]), self.theta_range[0])
            b = b * torch.exp(self.moisture_exponent() * torch.log(theta / self.theta_ref))
        return b

    def modulation_logit(self, fn: torch.Tensor, h0: torch.Tensor,
                         c0: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Network output s ``[n, T]`` for normalised features ``[n, T, n_feat]`` and the LSTM state ``[n, hidden]``."""
        h1, c1 = h0, c0
        z = fn
        for lstm in self.lstm:
            out, hc = lstm(fn[:, :, :self.n_lstm_feat], (h0.unsqueeze(0), c0.unsqueeze(0)))
            z = torch.cat([fn, out], 2)
            h1, c1 = hc[0][0], hc[1][0]
        return self.head(z).squeeze(2), h1, c1

    def trust(self, feats: torch.Tensor) -> torch.Tensor:
        """How far inside the training envelope the features ``[..., 12]`` are: ``exp(−d)`` ``[...]`` [-]

        ``d`` is the summed distance outside the training range of every network feature and of the
        temperature level, in training standard deviations: 1 inside the envelope, → 0 far outside it,
        so that far from its experience the network's modulation fades and the physical base decides.
        With ``envelope = "clamp"``: 1 everywhere (the features are clamped to the training range).
        """
        if not self.fade:
            return torch.ones_like(feats[..., 0])
        f = torch.index_select(feats, -1, self.env_index)
        d = (torch.relu(f - self.env_max) + torch.relu(self.env_min - f)) / self.env_std
        return torch.exp(-d.sum(-1))

    def rsoil(self, s: torch.Tensor, base_in: torch.Tensor, trust: torch.Tensor) -> torch.Tensor:
        """Rsoil [µmol m-2 s-1] = base × exp(λ·B·tanh(s)·trust), λ = ``modulation_weight``."""
        return self.base(base_in) * torch.exp(self.log_bound * self.modulation_weight * torch.tanh(s) * trust)

    @torch.jit.export
    def step(self, state: torch.Tensor, drivers: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """One time step for ``n`` columns.

        Parameters
        ----------
        state : torch.Tensor
            ``[n, state_size]`` from `initial_state` or the previous step (not modified).
        drivers : torch.Tensor
            Raw drivers at this step ``[n, n_past_vars]`` in ``past_var_names`` order: tsoil [degC],
            swc [m3 m-3], precip [mm per step]; NaN = missing (held).

        Returns
        -------
        (Rsoil [n] [umol m-2 s-1], the new state [n, state_size])
        """
        fs, feats, base_in = self.advance(state[:, :self.nfs], self._drivers3(drivers), self.alpha, self.dt_h)
        h0 = state[:, self.nfs:self.nfs + self.hidden]
        c0 = state[:, self.nfs + self.hidden:self.nfs + 2 * self.hidden]
        s, h1, c1 = self.modulation_logit(self.norm_features(feats).unsqueeze(1), h0, c0)
        out = self.rsoil(s[:, 0], base_in, self.trust(feats))
        return out, torch.cat([fs, h1, c1], 1)

    # -- training helpers (Python only) ------------------------------------------------------------
    @torch.jit.ignore
    def feature_sequence(self, drivers3: torch.Tensor, step_seconds: float) -> Tuple[torch.Tensor, torch.Tensor]:
        """Features ``[n, T, 12 + 3K]`` and base inputs ``[n, T, 3]`` of whole sequences ``[n, T, 3]`` at a step [s].

        The same `advance` as `step`, looped without gradients (the feature state has no parameters).
        """
        dt_h = torch.tensor(float(step_seconds) / 3600.0)
        alpha = 1.0 - torch.exp(-dt_h / self.tau_h)
        fs = self.initial_state(drivers3.shape[0])[:, :self.nfs]
        feats, bases = [], []
        with torch.no_grad():
            for k in range(drivers3.shape[1]):
                fs, f, b = self.advance(fs, drivers3[:, k], alpha, dt_h)
                feats.append(f)
                bases.append(b)
        return torch.stack(feats, 1), torch.stack(bases, 1)

    @torch.jit.ignore
    def set_feature_normalization(self, feats: torch.Tensor) -> None:
        """Training envelope and statistics of the selected features from training rows ``[n, 12 + 3K]``."""
        with torch.no_grad():
            w = feats[:, 3].float()
            self.theta_range.copy_(torch.stack([w.min().clamp(min=0.01), w.max().clamp(min=0.02)]))
            e = feats[:, self.env_idx].float()
            self.env_min.copy_(e.min(0).values)
            self.env_max.copy_(e.max(0).values)
            self.env_std.copy_(e.std(0).clamp(min=1e-6))
            f = feats[:, self.feat_idx].float()
            self.feat_min.copy_(f.min(0).values)
            self.feat_max.copy_(f.max(0).values)
            self.feat_mean.copy_(f.mean(0))
            self.feat_std.copy_(f.std(0).clamp(min=1e-6))

    @torch.jit.ignore
    def set_normalization(self, past_rows, future_rows, y) -> None:
        """Not used: kg_stream is trained by `rsoil_couple.training.stream` (features, not windows)."""
        raise RuntimeError("kg_stream is normalised by rsoil_couple.training.stream.train_stream")
