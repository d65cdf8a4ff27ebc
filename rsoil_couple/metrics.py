"""Goodness-of-fit metrics of simulated against observed soil respiration, as pure functions.

Every function takes ``obs`` and ``sim`` (array-like of equal shape: numpy, pandas or xarray),
drops the pairs where either is NaN or infinite, and returns a float in the unit stated. Shared
validation: shapes must match and at least two valid pairs must remain (`ValueError` otherwise).
"""
from __future__ import annotations

import numpy as np

__all__ = ["mse", "rmse", "nse", "kge", "cc", "bias", "all_metrics", "regression_metrics", "origin_scale",
           "best_scaled"]


def _pairs(obs, sim) -> tuple[np.ndarray, np.ndarray]:
    """Validated, NaN-masked 1-D float64 copies of `obs` and `sim`."""
    o = np.asarray(getattr(obs, "values", obs), dtype=np.float64)
    s = np.asarray(getattr(sim, "values", sim), dtype=np.float64)
    if o.shape != s.shape:
        raise ValueError(f"obs and sim have different shapes {o.shape} and {s.shape}")
    ok = np.isfinite(o) & np.isfinite(s)
    if ok.sum() < 2:
        raise ValueError(f"fewer than 2 valid (finite) obs/sim pairs ({int(ok.sum())} of {o.size})")
    return o[ok], s[ok]


def mse(obs, sim) -> float:
    """Mean squared error, MSE = mean((sim - obs)^2). [obs units^2]"""
    o, s = _pairs(obs, sim)
    return float(np.mean((s - o) ** 2))


def rmse(obs, sim) -> float:
    """Root mean squared error, RMSE = sqrt(MSE). [obs units]"""
    return float(np.sqrt(mse(obs, sim)))


def nse(obs, sim) -> float:
    """Nash-Sutcliffe efficiency, NSE = 1 - sum((sim - obs)^2) / sum((obs - mean(obs))^2). [-]

    1 is perfect, 0 is no better than the observed mean, negative is worse.
    Nash & Sutcliffe (1970), J. Hydrol. 10(3), 282-290. NaN if obs is constant.
    """
    o, s = _pairs(obs, sim)
    den = np.sum((o - o.mean()) ** 2)
    return float(1.0 - np.sum((s - o) ** 2) / den) if den > 0 else float("nan")


def cc(obs, sim) -> float:
    """Pearson correlation coefficient, CC = cov(obs, sim) / (std(obs) * std(sim)). [-]

    NaN if either series is constant.
    """
    o, s = _pairs(obs, sim)
    do, ds = o - o.mean(), s - s.mean()
    den = np.sqrt(np.sum(do ** 2) * np.sum(ds ** 2))
    return float(np.sum(do * ds) / den) if den > 0 else float("nan")


def kge(obs, sim) -> float:
    """Kling-Gupta efficiency, KGE = 1 - sqrt((r - 1)^2 + (alpha - 1)^2 + (beta - 1)^2). [-]

    r = CC, alpha = std(sim) / std(obs), beta = mean(sim) / mean(obs) (population standard
    deviations). Gupta, Kling, Yilmaz & Martinez (2009), J. Hydrol. 377, 80-91.
    NaN if obs is constant or has zero mean.
    """
    o, s = _pairs(obs, sim)
    r = cc(o, s)
    so = o.std()
    if so == 0 or o.mean() == 0:
        return float("nan")
    alpha = s.std() / so
    beta = s.mean() / o.mean()
    return float(1.0 - np.sqrt((r - 1.0) ** 2 + (alpha - 1.0) ** 2 + (beta - 1.0) ** 2))


def bias(obs, sim) -> float:
    """Mean error, bias = mean(sim - obs); positive means the model overestimates. [obs units]"""
    o, s = _pairs(obs, sim)
    return float(np.mean(s - o))


def all_metrics(obs, sim) -> dict:
    """All metrics at once: keys ``mse, rmse, nse, kge, cc, bias`` (floats) and ``n`` (int,
    the number of valid pairs).
    """
    o, s = _pairs(obs, sim)
    return {"mse": mse(o, s), "rmse": rmse(o, s), "nse": nse(o, s), "kge": kge(o, s),
            "cc": cc(o, s), "bias": bias(o, s), "n": int(o.size)}


def regression_metrics(obs, sim) -> dict:
    """``{"mse", "nse", "cc", "kge", "n"}`` of `all_metrics` (a model file's and metrics.json's test entry)."""
    m = all_metrics(np.asarray(obs, np.float64), np.asarray(sim, np.float64))
    return {k: (int(m[k]) if k == "n" else float(m[k])) for k in ("mse", "nse", "cc", "kge", "n")}


def origin_scale(obs, sim) -> float:
    """The least-squares scale through the origin, ``k = sum(obs * sim) / sum(sim^2)`` [-], over the given
    pairs (not filtered here: the callers pass their calibration rows). ``rsoil-couple calibrate``'s site
    factor and the benchmarks' scale-only calibration are this; nan where ``sim`` is 0 everywhere.
    """
    o, p = np.asarray(obs, dtype=np.float64).ravel(), np.asarray(sim, dtype=np.float64).ravel()
    den = float(np.sum(p * p))
    return float(np.sum(o * p)) / den if den > 0.0 else float("nan")


def best_scaled(candidates) -> tuple[int, float, float]:
    """Of ``candidates`` (a sequence of ``(obs, sim)`` pairs, in order of preference), the one whose
    `origin_scale`-scaled ``sim`` has the smallest sum of squared errors: (index, its factor, its SSE); ties
    go to the earlier candidate (``rsoil-couple calibrate --fit-modulation``: the smaller share λ).
    """
    best = None
    for i, (obs, sim) in enumerate(candidates):
        o, p = np.asarray(obs, dtype=np.float64).ravel(), np.asarray(sim, dtype=np.float64).ravel()
        k = origin_scale(o, p)
        sse = float(np.sum((o - k * p) ** 2))
        if best is None or sse < best[2]:
            best = (i, k, sse)
    if best is None:
        raise ValueError("best_scaled: no candidates")
    return best
