"""The experiments' baselines (Q10 family, CLM structure, the paper's presets) fitted and scored on given rows."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..metrics import regression_metrics


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
