"""The experiments' baselines (Q10 family, CLM structure, the paper's presets) fitted and scored on given rows."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..metrics import cc, nse, regression_metrics


def prediction_range(pred: np.ndarray) -> dict:
    """Min and max [umol m-2 s-1], number of negative and of non-finite values of a prediction."""
    pred = np.asarray(pred, np.float64)
    return {"min": float(np.nanmin(pred)), "max": float(np.nanmax(pred)),
            "n_negative": int((pred < 0).sum()), "n_nonfinite": int((~np.isfinite(pred)).sum())}


def score_baselines(names: Sequence[str], tsoil: np.ndarray, swc: np.ndarray | None, y: np.ndarray,
                    fit_idx: np.ndarray, test_idx: np.ndarray, clm_sand: float = 80.0,
                    clm_clay: float = 5.0) -> tuple[dict, dict]:
    """Fit every baseline of ``names`` on the ``fit_idx`` rows and predict the ``test_idx`` rows.

    Parameters
    ----------
    names : sequence of str
        Baselines of `rsoil_couple.config.BASELINES`: ``q10``, ``q10_swc``, ``logistic_power`` (fitted by
        LM), ``clm`` (CLM structure, scale fitted), ``paper_<form>`` (the published parameters).
    tsoil, swc, y : numpy.ndarray
        Soil temperature [degC], SWC [m3 m-3] (None: forms that need it are skipped) and observed Rsoil
        [umol m-2 s-1] of every row; the rows used must be finite.
    fit_idx, test_idx : numpy.ndarray
        Integer rows to fit on and to score.
    clm_sand, clm_clay : float
        Soil texture of the CLM-structure baseline [%]

    Returns
    -------
    tuple of dict
        Per baseline name, ``{"params", "test" (regression_metrics), "range"}`` and the test predictions.
    """
    from ..baselines import q10
    t, w, y = (None if a is None else np.asarray(a, np.float64) for a in (tsoil, swc, y))
    te = np.asarray(test_idx)
    scores, preds = {}, {}
    for name in names:
        form = name.removeprefix("paper_")
        if form != "q10" and w is None:
            continue                      # needs swc, which this configuration does not have
        if name == "clm":
            f = q10.fit_clm_structure(t[fit_idx], w[fit_idx], y[fit_idx], clm_sand, clm_clay)
            pred, params = f.predict(t[te], w[te]), {"k": f.k, "sand": f.sand, "clay": f.clay}
        elif name.startswith("paper_"):
            f = q10.paper_fit(form)
            pred, params = f.predict(t[te], None if w is None else w[te]), dict(f.params)
        else:
            f = q10.fit(form, t[fit_idx], None if w is None else w[fit_idx], y[fit_idx],
                        fitted_on="train+validation")
            pred, params = f.predict(t[te], None if w is None else w[te]), dict(f.params)
        pred = np.asarray(pred, np.float64)
        preds[name] = pred
        scores[name] = {"params": {k: float(v) for k, v in params.items()},
                        "test": regression_metrics(y[te], pred), "range": prediction_range(pred)}
    return scores, preds


def q10_family_best(t_fit, w_fit, y_fit, t_ev, w_ev, y_ev) -> dict:
    """Fit every Q10 form on the fit rows; NSE of each on the evaluation rows, and the best."""
    from ..baselines import q10
    res = {}
    for form in q10.FORMS:
        try:
            f = q10.fit(form, t_fit, None if form == "q10" else w_fit, y_fit)
            p = f.predict(t_ev, None if form == "q10" else w_ev)
            res[form] = {"nse": nse(y_ev, p), "cc": cc(y_ev, p)}
        except (ValueError, RuntimeError) as exc:
            res[form] = {"error": str(exc)[:200]}
    ok = {k: v for k, v in res.items() if "nse" in v and np.isfinite(v["nse"])}
    best = max(ok, key=lambda k: ok[k]["nse"]) if ok else None
    return {"forms": res, "best": best, "best_nse": ok[best]["nse"] if best else float("nan")}


def driver_rows(p, rows):
    """Temperature, SWC (None without it), target and the row mask of ``rows`` with finite drivers."""
    d = p.drivers.astype(np.float64)
    it = p.past_vars.index("tsoil")
    iw = p.past_vars.index("swc") if "swc" in p.past_vars else None
    ok = rows & np.isfinite(d[:, [it] + ([iw] if iw is not None else [])]).all(1)
    return d[ok, it], (d[ok, iw] if iw is not None else None), p.y.numpy().astype(np.float64)[ok], ok


def q10_on_rows(p, fit_rows, ev_rows) -> dict:
    """`q10_family_best` on a prepared site's rows (forms with SWC only where the site has it)."""
    t_f, w_f, y_f, _ = driver_rows(p, fit_rows)
    t_e, w_e, y_e, _ = driver_rows(p, ev_rows)
    return q10_family_best(t_f, w_f, y_f, t_e, w_e, y_e)
