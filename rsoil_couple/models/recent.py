"""kg_stream's view of the recent drivers (``model.recent_hours``): the network also reads the last K steps of
soil temperature, soil water and rain themselves, as the window kg_lstm reads its 24 h past window, beside
the moving averages and departures from them.

A delay line of K steps × 3 values (held soil temperature [degC], held SWC [m3 m-3], log1p(rain per step
[mm])), oldest first, sits in the state after the feature slots. At each step the network reads, for lags
K..1 (oldest first), ``T(t−lag) − T24(t)`` [degC], ``SWC(t−lag) − SWC(t)`` [m3 m-3] and
``log1p(rain(t−lag))``: departures from the present, so that the temperature level still acts through the
physical base alone (unless ``sees_level``). Then the present values are pushed. Before a column has
taken K steps the line holds zeros (inside the 168 h spin-up). The work per column-step stays constant
(3K copies, a head 3K inputs wider; the LSTM does not read the line). The line is counted in steps: a
model with ``recent_hours > 0`` runs at the step it was built for only.
"""
from __future__ import annotations

import torch

#: the state-layout entry of the delay line (docs/model_format.md, "Streaming models")
RECENT_LAYOUT_NAME = "recent_tsoil_swc_log1p_rain"
#: the three blocks of K network features the line gives, in this order
RECENT_FEATURES = ("tsoil_lag_minus_t24", "swc_lag_minus_swc", "log1p_rain_lag")
MAX_RECENT_HOURS = 168.0


def recent_steps_for(hours: float, step_seconds: float) -> int:
    """Steps K of a delay line of ``hours`` [h] at ``step_seconds`` [s] (at least 1 when hours > 0)."""
    if not (0.0 <= float(hours) <= MAX_RECENT_HOURS):
        raise ValueError(f"model.recent_hours = {hours}; expected 0 (off) to {MAX_RECENT_HOURS:g} h")
    if float(hours) == 0.0:
        return 0
    return max(1, int(round(float(hours) * 3600.0 / float(step_seconds))))


def recent_features(line: torch.Tensor, t24_now: torch.Tensor, swc_now: torch.Tensor) -> torch.Tensor:
    """Network features ``[n, 3K]`` (`RECENT_FEATURES` blocks, lags oldest first) from a delay line ``[n, 3K]``
    (laid out lag by lag: tsoil, swc, log1p rain) and the present 24 h temperature level and SWC ``[n, 1]``.
    """
    v = line.reshape(line.shape[0], -1, 3)
    return torch.cat([v[:, :, 0] - t24_now, v[:, :, 1] - swc_now, v[:, :, 2]], 1)


def push_recent(line: torch.Tensor, now: torch.Tensor) -> torch.Tensor:
    """The delay line ``[n, 3K]`` after this step's values ``[n, 3]`` (tsoil, swc, log1p rain) are pushed."""
    return torch.cat([line[:, 3:], now], 1)


def recent_sequence(values: torch.Tensor, t24: torch.Tensor, swc: torch.Tensor, k: int) -> torch.Tensor:
    """`recent_features` of a whole record at once (training): ``values`` ``[T, 3]`` (held tsoil, held swc,
    log1p rain per step), ``t24`` and ``swc`` ``[T]`` -> ``[T, 3k]``, as the step-by-step delay line gives it
    from zeros (tests/models/test_kg_stream.py checks the two agree).
    """
    n = values.shape[0]
    padded = torch.cat([torch.zeros(k, 3, dtype=values.dtype), values], 0)
    line = padded.unfold(0, k, 1)[:n].permute(0, 2, 1).reshape(n, 3 * k)   # row t: values[t-k .. t-1]
    return recent_features(line, t24.unsqueeze(1), swc.unsqueeze(1))
