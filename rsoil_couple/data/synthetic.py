"""A SYNTHETIC dryland site in the canonical format, for demos and small tests (never real data).

Physics, step by step (all deterministic for a seed):

1. Surface temperature: a daily mean that falls from ``tmean_start_c`` to ``tmean_end_c`` over
   the record (summer into autumn, so colder periods exist) plus a diel sine peaking at 15:00
   with amplitude ``diel_amplitude_k``, plus a little day-to-day weather noise.
2. Soil temperature at depth z: the analytic solution of the heat equation for a periodic
   surface forcing (Carslaw & Jaeger; Hillel 1998): the diel wave is damped by exp(-z/d) and
   delayed by z/d radians, d = sqrt(2 kappa / omega), kappa = ``diffusivity`` [m2 s-1]. ``tsoil``
   is reported at 0.15 m; respiration responds to the temperature at ``source_depth_m`` (0.07 m),
   which leads the 15-cm temperature by (0.15 - source_depth_m) / d radians (about 2.6 h with the
   defaults: ``lag_hours`` in the attrs). Plotting Rsoil against tsoil gives clockwise hysteresis,
   and the mutual information of tsoil with Rsoil peaks at that positive (future) lag.
3. Rain: events at random (mean interval ``rain_interval_days``), exponential amounts, each spread
   over 1-4 hours; ``precip`` is the amount per step [mm].
4. Soil water at 15 cm: a bucket that dries exponentially towards ``swc_residual`` (time scale
   ``drying_days``) and is refilled by rain (``infiltration`` of the rain over a 0.3 m layer),
   capped at 0.30 m3 m-3; starts at ``swc_start`` (seasonal drying).
5. Rsoil = r10 * q10**((T_src - 10)/10) * (swc/0.1)**0.7 + Birch pulses + 5 % noise; each rain
   event adds a pulse proportional to its amount and to how dry the soil was, rising within an
   hour and decaying over ``pulse_decay_days``.

Every output is labelled synthetic: attrs ``synthetic="yes"``, a title starting "SYNTHETIC", the
site / column id ``SYNTHETIC-DRY``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .canonical import _build, _Field

__all__ = ["synthetic_site", "SYNTHETIC_SITE", "DEFAULTS"]

SYNTHETIC_SITE = "SYNTHETIC-DRY"
DEFAULTS = dict(
    tmean_start_c=27.0, tmean_end_c=8.0, diel_amplitude_k=14.0, diffusivity=5.0e-7,
    source_depth_m=0.07, rain_interval_days=9.0, rain_mean_mm=6.0, swc_start=0.10,
    swc_residual=0.035, drying_days=12.0, infiltration=0.6, r10=0.25, q10=2.0,
    pulse_per_mm=0.35, pulse_decay_days=1.5, noise=0.05,
)
TSOIL_DEPTH_M = 0.15
OMEGA = 2.0 * np.pi / 86400.0  # diel angular frequency [rad s-1]


def _damping_depth(diffusivity: float) -> float:
    """D = sqrt(2 kappa / omega) [m]."""
    return float(np.sqrt(2.0 * diffusivity / OMEGA))


def _soil_temperature(tmean: np.ndarray, amp: float, sec_of_day: np.ndarray, z: float,
                      d: float) -> np.ndarray:
    """Temperature at depth z [m] under a diel sine surface forcing peaking at 15:00."""
    phase = OMEGA * (sec_of_day - 9.0 * 3600.0) - z / d
    return tmean + amp * np.exp(-z / d) * np.sin(phase)


def synthetic_site(days: int = 120, step_minutes: int = 30, seed: int = 0,
                   start: str = "2019-06-01", **overrides) -> xr.Dataset:
    """A SYNTHETIC dryland site in the canonical format (see the module docstring).

    Parameters
    ----------
    days : int
        Length of the record. [d]
    step_minutes : int
        Step. [min]
    seed : int
        Random seed: the same seed gives the same Dataset, bit for bit.
    start : str
        First day (the first timestamp is the END of the first step after it).
    **overrides : float
        Any key of `DEFAULTS` (e.g. ``tmean_end_c=27`` for no seasonal trend).

    Returns
    -------
    Dataset  Canonical (``tsoil`` degC at 0.15 m, ``swc`` m3 m-3, ``precip`` mm per step,
    ``rsoil`` umol m-2 s-1, ``tair`` degC, ``rg`` W m-2, ``qc``), attrs ``synthetic="yes"`` and
    the true ``lag_hours`` (respiration-source temperature ahead of tsoil).
    """
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"synthetic_site: unknown parameter(s) {sorted(unknown)}; expected some "
                         f"of {sorted(DEFAULTS)}")
    if days < 1 or step_minutes < 1 or (24 * 60) % step_minutes:
        raise ValueError(f"synthetic_site: days={days} must be >= 1 and step_minutes="
                         f"{step_minutes} must divide a day")
    p = {**DEFAULTS, **overrides}
    rng = np.random.default_rng(seed)
    step_s = step_minutes * 60
    n = days * 86400 // step_s
    time = pd.date_range(pd.Timestamp(start) + pd.Timedelta(seconds=step_s), periods=n,
                         freq=pd.Timedelta(seconds=step_s))
    # time at the middle of each step for the physics
    sec = (np.arange(n) + 0.5) * step_s
    sec_of_day = sec % 86400.0
    frac = sec / (days * 86400.0)
    # 1. daily mean temperature: seasonal cosine from start to end + AR(1) weather noise per day
    weather = np.zeros(days + 1)
    for i in range(1, days + 1):
        weather[i] = 0.7 * weather[i - 1] + rng.normal(0.0, 1.2)
    day_idx = (sec // 86400).astype(int)
    day_frac = (sec % 86400) / 86400.0
    w_day = weather[day_idx] * (1 - day_frac) + weather[day_idx + 1] * day_frac
    trend = p["tmean_end_c"] + (p["tmean_start_c"] - p["tmean_end_c"]) * 0.5 * (
        1.0 + np.cos(np.pi * frac))
    tmean = trend + w_day
    d = _damping_depth(p["diffusivity"])
    tsoil = _soil_temperature(tmean, p["diel_amplitude_k"], sec_of_day, TSOIL_DEPTH_M, d)
    tsrc = _soil_temperature(tmean, p["diel_amplitude_k"], sec_of_day, p["source_depth_m"], d)
    tair = tmean + 1.0 + 0.8 * p["diel_amplitude_k"] * np.sin(OMEGA * (sec_of_day - 10 * 3600.0))
    rg = np.clip(950.0 * np.sin(OMEGA * (sec_of_day - 6 * 3600.0)), 0.0, None) * (
        0.85 + 0.15 * rng.random(n))
    # 3. rain events
    precip = np.zeros(n)
    events = []
    tcur = rng.exponential(p["rain_interval_days"] * 86400.0)
    while tcur < days * 86400.0:
        amount = rng.exponential(p["rain_mean_mm"]) + 0.5
        dur = rng.integers(1, 5) * 3600.0
        i0 = int(tcur // step_s)
        nsteps = max(1, int(dur // step_s))
        i1 = min(n, i0 + nsteps)
        if i0 < n:
            precip[i0:i1] += amount / nsteps
            events.append((i0, amount))
        tcur += dur + rng.exponential(p["rain_interval_days"] * 86400.0)
    precip = np.round(precip / 0.254) * 0.254  # a tipping bucket of 0.254 mm, as at US-Hn1
    # 4. soil water bucket
    swc = np.empty(n)
    decay = np.exp(-step_s / (p["drying_days"] * 86400.0))
    s = p["swc_start"]
    for i in range(n):
        s = p["swc_residual"] + (s - p["swc_residual"]) * decay
        s = min(0.30, s + p["infiltration"] * precip[i] / 1000.0 / 0.3)
        swc[i] = s
    # 5. respiration: base x moisture + Birch pulses + multiplicative noise
    base = p["r10"] * p["q10"] ** ((tsrc - 10.0) / 10.0) * (swc / 0.1) ** 0.7
    pulse = np.zeros(n)
    tau = p["pulse_decay_days"] * 86400.0
    k = np.arange(n)
    for i0, amount in events:
        dryness = max(0.0, 1.0 - swc[max(i0 - 1, 0)] / 0.15)
        after = k >= i0
        dt = (k[after] - i0) * step_s
        pulse[after] += (p["pulse_per_mm"] * amount * dryness * (1.0 - np.exp(-dt / 1800.0))
                         * np.exp(-dt / tau))
    rsoil = (base + pulse) * np.exp(rng.normal(0.0, p["noise"], n))
    fields = {"tsoil": _Field(tsoil[:, None], "degC", "tsoil"),
              "swc": _Field(swc[:, None], "m3 m-3", "swc"),
              "precip": _Field(precip[:, None], "mm", "precip"),
              "rsoil": _Field(rsoil[:, None], "umol m-2 s-1", "rsoil"),
              "tair": _Field(tair[:, None], "degC", "tair"),
              "rg": _Field(rg[:, None], "W m-2", "rg")}
    lag_h = (TSOIL_DEPTH_M - p["source_depth_m"]) / d / OMEGA / 3600.0
    src = f"rsoil_couple.synthetic.synthetic_site(days={days}, step_minutes={step_minutes}, " \
          f"seed={seed}, start={start!r})"
    ds = _build(pd.DatetimeIndex(time), [SYNTHETIC_SITE], fields, path=src, site=SYNTHETIC_SITE,
                depth_m=TSOIL_DEPTH_M,
                attrs={"title": f"SYNTHETIC dryland site (not observations; seed {seed})",
                       "synthetic": "yes", "source": src, "seed": int(seed),
                       "lag_hours": float(lag_h), "n_rain_events": len(events),
                       "comment": "generated by rsoil_couple.synthetic; physics in its "
                                  "module docstring; " + ", ".join(f"{k}={v}" for k, v in
                                                                    sorted(p.items()))})
    return ds
