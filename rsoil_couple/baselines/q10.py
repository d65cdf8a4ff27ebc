"""Q10-family soil-respiration models (equation 2 of Jiang et al. 2022) and a CLM-structure baseline.

The three forms (T soil temperature [degC], W soil water content in the unit ``swc_units`` the
parameters assume, Tref = 10 degC, result Rsoil [umol m-2 s-1]) — exactly as in
docs/model_format.md:

- ``q10``:            ``a * b**((T - Tref)/10)``                       (2a)
- ``q10_swc``:        ``a * b**((T - Tref)/10) * W**c``                (2b)
- ``logistic_power``: ``a / (1 + exp(b*(c - T))) * W**d``              (2c)

In this module the ``swc`` ARGUMENT is always the canonical volumetric water content [m3 m-3];
``swc_units`` says which unit the PARAMETERS assume (``"m3 m-3"`` or ``"percent"``) and the
conversion happens inside. Fits use Levenberg-Marquardt (``scipy.optimize.least_squares``,
``method="lm"``) with a and b (q10, q10_swc) or a (logistic_power) fitted through their logarithm
so they stay positive.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from ..variables import Q10_FORMS, Q10_SWC_UNITS, Q10_TREF_C

__all__ = [
    "FORMS", "PARAM_NAMES", "PAPER_PARAMS", "PAPER_SWC_UNITS", "SWC_UNITS", "TREF_C",
    "predict", "fit", "Q10Fit", "paper_fit", "clm_t_scalar", "clm_w_scalar", "clm_structure",
    "fit_clm_structure", "ClmFit", "fit_family",
]

FORMS = tuple(Q10_FORMS)
PARAM_NAMES = Q10_FORMS
SWC_UNITS = Q10_SWC_UNITS
TREF_C = Q10_TREF_C

#: Published parameters (Jiang et al. 2022, eq. 2a-c), fitted on US-Hn1 2018-2020.
#: They assume SWC in PERCENT: with SWC in m3 m-3 the moisture term W**c of q10_swc / W**d of
#: logistic_power is 100**c (= 15) / 100**d (= 23) times smaller and the predictions on
#: US-Hn1 summer 2019 (mean observed 0.43 umol m-2 s-1) fall to 0.03 / 0.02 umol m-2 s-1,
#: while in percent they give 0.42 / 0.44 (tests/test_q10.py checks this on the real file).
PAPER_PARAMS = {
    "q10": {"a": 0.351, "b": 1.028},
    "q10_swc": {"a": 0.109, "b": 1.172, "c": 0.586},
    "logistic_power": {"a": 0.129, "b": 0.263, "c": 4.391, "d": 0.684},
}
PAPER_SWC_UNITS = "percent"


def _swc_in(swc, swc_units: str) -> np.ndarray:
    """Canonical swc [m3 m-3] -> the unit the parameters assume."""
    if swc_units not in SWC_UNITS:
        raise ValueError(f"swc_units '{swc_units}' unknown; expected one of {SWC_UNITS}")
    w = np.asarray(swc, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        if np.any(w[np.isfinite(w)] > 1.0):
            raise ValueError(f"swc: values up to {np.nanmax(w):g} > 1; the swc argument must be "
                             "volumetric water content in m3 m-3 (swc_units only names the unit "
                             "the parameters assume)")
    return w * 100.0 if swc_units == "percent" else w


def _check_params(form: str, params: dict) -> tuple[float, ...]:
    if form not in FORMS:
        raise ValueError(f"Q10 form '{form}' unknown; expected one of {FORMS}")
    names = PARAM_NAMES[form]
    if set(params) != set(names):
        raise ValueError(f"Q10 form '{form}' needs parameters {names}, got {sorted(params)}")
    return tuple(float(params[n]) for n in names)


def _eval(form: str, p: tuple[float, ...], t: np.ndarray, w: np.ndarray | None,
          tref_c: float) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if form == "q10":
            return p[0] * p[1] ** ((t - tref_c) / 10.0)
        if form == "q10_swc":
            return p[0] * p[1] ** ((t - tref_c) / 10.0) * w ** p[2]
        return p[0] / (1.0 + np.exp(p[1] * (p[2] - t))) * w ** p[3]


def predict(form: str, params: dict, tsoil_c, swc=None, swc_units: str = "m3 m-3",
            tref_c: float = TREF_C) -> np.ndarray:
    """Rsoil of one Q10 form (equation 2).

    Parameters
    ----------
    form : str
        One of `FORMS`.
    params : dict
        {"a": ..., "b": ..., ["c": ..., "d": ...]} as in `PARAM_NAMES`.
    tsoil_c : array
        Soil temperature. [degC]
    swc : array
        Soil water content (not needed for ``q10``). [m3 m-3]
    swc_units : str
        Unit the PARAMETERS assume: ``"m3 m-3"`` or ``"percent"``.
    tref_c : float
        Reference temperature. [degC]

    Returns
    -------
    array  Rsoil [umol m-2 s-1]; NaN where an input is NaN.
    """
    p = _check_params(form, params)
    t = np.asarray(tsoil_c, dtype=np.float64)
    w = None
    if form != "q10":
        if swc is None:
            raise ValueError(f"Q10 form '{form}' needs swc [m3 m-3]")
        w = _swc_in(swc, swc_units)
    return _eval(form, p, t, w, tref_c)


@dataclass
class Q10Fit:
    """A fitted (or published) Q10 model; `swc_units` is the unit its parameters assume."""

    form: str
    params: dict
    swc_units: str = "m3 m-3"
    tref_c: float = TREF_C
    n: int = 0
    rmse: float = float("nan")
    n_masked: int = 0
    fitted_on: str = ""
    extra: dict = field(default_factory=dict)

    def predict(self, tsoil_c, swc=None) -> np.ndarray:
        """Rsoil [umol m-2 s-1] from tsoil [degC] and swc [m3 m-3]."""
        return predict(self.form, self.params, tsoil_c, swc, self.swc_units, self.tref_c)

    def to_meta(self, fitted_on: str | None = None) -> dict:
        """The ``fallback_q10`` entry of ``rsoil_meta.json`` (docs/model_format.md)."""
        return {"form": self.form, "params": {k: float(v) for k, v in self.params.items()},
                "tref_c": float(self.tref_c), "swc_units": self.swc_units,
                "fitted_on": fitted_on if fitted_on is not None else (self.fitted_on or "unknown")}


def paper_fit(form: str) -> Q10Fit:
    """The published parameters of `form` as a `Q10Fit` (SWC in percent)."""
    _check_params(form, PAPER_PARAMS.get(form, {}))
    return Q10Fit(form, dict(PAPER_PARAMS[form]), PAPER_SWC_UNITS,
                  fitted_on="Jiang et al. 2022, US-Hn1 2018-2020")


# Fitting: internal vector z; positive parameters are fitted as logs.
# Parameter transforms for the unconstrained LM search: "log" keeps a parameter > 0, "log1" > 1.
_TRANSFORMS = {
    False: {"q10": ("log", "log"), "q10_swc": ("log", "log", None),
            "logistic_power": ("log", None, None, None)},
    # physical=True: respiration rises with temperature (b > 1, resp. b > 0) and with soil water
    # (c, d > 0), so the curve stays sane outside the fitted range (colder seasons, drier soil).
    True: {"q10": ("log", "log1"), "q10_swc": ("log", "log1", "log"),
           "logistic_power": ("log", "log", None, "log")},
}
_LOWER = {"log": 0.0, "log1": 1.0}


def _to_z(form, p, physical=False):
    out = []
    for v, tr in zip(p, _TRANSFORMS[physical][form]):
        if tr is None:
            out.append(v)
        else:   # starts on or beyond the bound are moved just inside it
            out.append(np.log(max(v - _LOWER[tr], 0.05)))
    return np.array(out, dtype=np.float64)


def _from_z(form, z, physical=False):
    return tuple(float(v) if tr is None else float(_LOWER[tr] + np.exp(v))
                 for v, tr in zip(z, _TRANSFORMS[physical][form]))


def _starts(form: str, t: np.ndarray, w: np.ndarray | None, r: np.ndarray) -> list[tuple]:
    rpos = np.clip(r, 1e-3, None)
    if form == "q10":
        # log-linear regression of log r on (T - 10)/10 gives a good start
        x = (t - TREF_C) / 10.0
        slope, icpt = np.polyfit(x, np.log(rpos), 1)
        return [(np.exp(icpt), np.exp(slope)), (np.median(rpos), 2.0)]
    wpos = np.clip(w, 1e-6, None)
    if form == "q10_swc":
        x = np.column_stack([np.ones_like(t), (t - TREF_C) / 10.0, np.log(wpos)])
        coef = np.linalg.lstsq(x, np.log(rpos), rcond=None)[0]
        return [(np.exp(coef[0]), np.exp(coef[1]), coef[2]),
                (np.median(rpos) / np.median(wpos) ** 0.5, 2.0, 0.5)]
    starts = []
    for b0 in (0.1, 0.3, 1.0):
        for d0 in (0.5, 1.0):
            c0 = float(np.median(t))
            starts.append((float(np.max(rpos) / np.median(wpos) ** d0), b0, c0, d0))
    return starts


def fit(form: str, tsoil_c, swc, rsoil, swc_units: str = "m3 m-3", p0: dict | None = None,
        tref_c: float = TREF_C, fitted_on: str = "", physical: bool = False) -> Q10Fit:
    """Fit one Q10 form to observations by Levenberg-Marquardt least squares.

    Parameters
    ----------
    form : str
        One of `FORMS`.
    tsoil_c : array
        Soil temperature. [degC]
    swc : array or None
        Soil water content (ignored for ``q10``). [m3 m-3]
    rsoil : array
        Observed soil respiration. [umol m-2 s-1]
    swc_units : str
        Unit the fitted parameters will assume (``"m3 m-3"`` or ``"percent"``).
    p0 : dict
        Starting parameters; default: regression-based and a few standard starts, the
        best least-squares solution is kept.
    fitted_on : str
        Free text recorded in `Q10Fit.to_meta` (e.g. "training split").
    physical : bool
        Constrain the parameters to a physically sane response: Q10 ``b > 1``
        (logistic ``b > 0``) and SWC exponents ``c, d > 0``. A record in which hot means dry (a dryland
        summer) otherwise fits b < 1 and c < 0, which explodes in dry soil and inverts the
        temperature response in a cold season; the fallback Q10 of a model file uses this.

    Returns
    -------
    Q10Fit  With ``n`` (pairs used), ``n_masked`` (pairs dropped for a NaN input) and ``rmse``
    [umol m-2 s-1] on the fitted pairs.
    """
    if form not in FORMS:
        raise ValueError(f"Q10 form '{form}' unknown; expected one of {FORMS}")
    t = np.asarray(tsoil_c, dtype=np.float64).ravel()
    r = np.asarray(rsoil, dtype=np.float64).ravel()
    w = None if form == "q10" else _swc_in(swc, swc_units).ravel()
    if t.shape != r.shape or (w is not None and w.shape != t.shape):
        raise ValueError(f"tsoil_c, swc and rsoil must have the same length; got {t.shape}, "
                         f"{None if w is None else w.shape}, {r.shape}")
    ok = np.isfinite(t) & np.isfinite(r)
    if w is not None:
        ok &= np.isfinite(w) & (w > 0)
    n = int(ok.sum())
    if n < len(PARAM_NAMES[form]) + 1:
        raise ValueError(f"only {n} valid (tsoil, swc, rsoil) triples; cannot fit '{form}'")
    t, r = t[ok], r[ok]
    w = None if w is None else w[ok]
    starts = [_check_params(form, p0)] if p0 is not None else _starts(form, t, w, r)

    def resid(z):
        res = _eval(form, _from_z(form, z, physical), t, w, tref_c) - r
        return np.where(np.isfinite(res), res, 1e6)

    best = None
    for s in starts:
        try:
            sol = least_squares(resid, _to_z(form, s, physical), method="lm", x_scale="jac",
                                max_nfev=20000)
        except (ValueError, FloatingPointError):
            continue
        if best is None or sol.cost < best.cost:
            best = sol
    if best is None:
        raise ValueError(f"Levenberg-Marquardt fit of '{form}' failed from every start")
    p = _from_z(form, best.x, physical)
    pred = _eval(form, p, t, w, tref_c)
    return Q10Fit(form, dict(zip(PARAM_NAMES[form], p)), swc_units, tref_c, n,
                  float(np.sqrt(np.mean((pred - r) ** 2))), int((~ok).sum()), fitted_on,
                  {"lm_status": int(best.status), "lm_nfev": int(best.nfev)})


# ----------------------------------------------------------------------------------------------
# CLM-structure baseline (docs/clm_baseline.md) — the Fortran host implements the same formula.
# ----------------------------------------------------------------------------------------------
CLM_Q10 = 1.5           # q10_mr
CLM_FROZ_Q10 = 1.5      # froz_q10
CLM_MINPSI_MPA = -2.0   # minpsi_hr
CLM_MAXPSI_MPA = -0.002  # maxpsi_hr


def clm_t_scalar(tsoil_c) -> np.ndarray:
    """CLM5 decomposition temperature scalar, Q10 = 1.5 about 25 degC, froz_q10 below 0 degC.

    Parameters
    ----------
    tsoil_c : array
        Soil temperature. [degC]

    Returns
    -------
    array  t_scalar [-] (1 at 25 degC).
    """
    tk = np.asarray(tsoil_c, dtype=np.float64) + 273.15
    warm = CLM_Q10 ** ((tk - 298.15) / 10.0)
    cold = CLM_Q10 ** (-25.0 / 10.0) * CLM_FROZ_Q10 ** ((tk - 273.15) / 10.0)
    return np.where(tk >= 273.15, warm, cold)


def clm_w_scalar(swc, sand: float = 80.0, clay: float = 5.0) -> np.ndarray:
    """CLM5 decomposition moisture scalar from soil water potential (Cosby et al. 1984 soils).

    Parameters
    ----------
    swc : array
        Volumetric soil water content. [m3 m-3]
    sand, clay : float
        Sand and clay content. [%]

    Returns
    -------
    array  w_scalar [-] in 0..1: 0 at or below -2 MPa, 1 at or above -0.002 MPa; NaN where swc
    is NaN.
    """
    w = np.asarray(swc, dtype=np.float64)
    watsat = 0.489 - 0.00126 * sand
    bsw = 2.91 + 0.159 * clay
    sucsat = 10.0 * 10.0 ** (1.88 - 0.0131 * sand)
    s = np.minimum(np.maximum(w / watsat, 0.01), 1.0)
    psi = np.minimum(-9.8e-6 * sucsat * s ** (-bsw), CLM_MAXPSI_MPA)
    with np.errstate(invalid="ignore", divide="ignore"):
        ws = np.where(psi > CLM_MINPSI_MPA,
                      np.log(CLM_MINPSI_MPA / psi) / np.log(CLM_MINPSI_MPA / CLM_MAXPSI_MPA), 0.0)
    return np.where(np.isnan(w), np.nan, ws)


def clm_structure(tsoil_c, swc, k: float, sand: float = 80.0, clay: float = 5.0) -> np.ndarray:
    """CLM-structure Rsoil = k * t_scalar(tsoil) * w_scalar(swc) (docs/clm_baseline.md).

    Parameters
    ----------
    tsoil_c : array
        Soil temperature. [degC]
    swc : array
        Volumetric soil water content. [m3 m-3]
    k : float
        Scale (pool sizes x base rates). [umol m-2 s-1]
    sand, clay : float
        Sand and clay content. [%]

    Returns
    -------
    array  Rsoil [umol m-2 s-1].
    """
    return k * clm_t_scalar(tsoil_c) * clm_w_scalar(swc, sand, clay)


@dataclass
class ClmFit:
    """The CLM-structure baseline with its least-squares scale."""

    k: float
    sand: float = 80.0
    clay: float = 5.0
    n: int = 0
    rmse: float = float("nan")
    n_masked: int = 0

    def predict(self, tsoil_c, swc) -> np.ndarray:
        """Rsoil [umol m-2 s-1] from tsoil [degC] and swc [m3 m-3]."""
        return clm_structure(tsoil_c, swc, self.k, self.sand, self.clay)


def fit_clm_structure(tsoil_c, swc, rsoil, sand: float = 80.0, clay: float = 5.0) -> ClmFit:
    """Fit the scale k of `clm_structure` by linear least squares, k = sum(f r) / sum(f^2) with
    f = t_scalar * w_scalar; NaN triples are dropped and counted.
    """
    f = (clm_t_scalar(tsoil_c) * clm_w_scalar(swc, sand, clay)).ravel()
    r = np.asarray(rsoil, dtype=np.float64).ravel()
    if f.shape != r.shape:
        raise ValueError(f"tsoil_c, swc and rsoil must have the same length; got {f.shape} and "
                         f"{r.shape}")
    ok = np.isfinite(f) & np.isfinite(r)
    if ok.sum() < 2 or not np.any(f[ok] > 0):
        raise ValueError(f"cannot fit the CLM-structure scale: {int(ok.sum())} valid triples and "
                         "the moisture scalar is zero on all of them (soil too dry for CLM)")
    k = float(np.sum(f[ok] * r[ok]) / np.sum(f[ok] ** 2))
    return ClmFit(k, sand, clay, int(ok.sum()), float(np.sqrt(np.mean((k * f[ok] - r[ok]) ** 2))),
                  int((~ok).sum()))


def fit_family(tsoil_c, swc, rsoil, sand: float = 80.0, clay: float = 5.0,
               fitted_on: str = "") -> dict:
    """The baselines of the paper on the same pairs: the Q10 family of equation 2 (LM, `fit`) and
    the CLM-structure baseline (`fit_clm_structure`); forms that need swc are skipped when `swc` is
    None. Returns ``{name: Q10Fit | ClmFit}`` (both with ``.predict(tsoil_c, swc)``), names
    ``q10, q10_swc, logistic_power, clm_structure``.
    """
    fits: dict = {}
    for form in FORMS:
        if form == "q10" or swc is not None:
            fits[form] = fit(form, tsoil_c, swc, rsoil, fitted_on=fitted_on)
    if swc is not None:
        fits["clm_structure"] = fit_clm_structure(tsoil_c, swc, rsoil, sand, clay)
    return fits
