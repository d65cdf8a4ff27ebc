"""Ensembles (``train.members = N``): N seeds of the chosen configuration, exported as ONE model file.

Member 0 is the model the declared search chose (trained with ``run.seed``: exactly the model of
``members = 1``); members 1 … N−1 are trained with the same data, split, training subset and chosen
hyperparameters (hidden, lr, epochs) and seeds ``run.seed + k`` (initial weights and batch order).
`rsoil_couple.models.Ensemble` averages them; the metadata's ``ensemble`` record holds every member's
test metrics and the spread (docs/training.md, "Ensembles").
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..config import RunConfig
from ..models import Ensemble, RsoilModel
from .fit import _subsample, build_model, fit, search_grid, set_determinism
from .splits import Split
from .windows import WindowSet


def member_seeds(cfg: RunConfig) -> list[int]:
    """Seeds of the members: ``run.seed``, ``run.seed + 1``, … (``train.members`` of them)."""
    return [cfg.run.seed + k for k in range(cfg.train.members)]


def train_members(cfg: RunConfig, ws: WindowSet, split: Split, first: RsoilModel, search: dict) -> list[RsoilModel]:
    """``first`` (the search's choice) plus members 1 … N−1 trained with seeds ``run.seed + k``."""
    chosen = search["chosen"]
    train_idx = search["train_idx"]
    val_idx = _subsample(split.val, cfg.train.max_eval_samples, cfg.run.seed)   # as search_and_fit
    _, epochs = search_grid(cfg)
    mcfg = dataclasses.replace(cfg.model, hidden=int(chosen["hidden"]))
    members = [first]
    for seed in member_seeds(cfg)[1:]:
        set_determinism(seed, cfg.run.threads)
        m = build_model(cfg, ws, train_idx, mcfg)
        fit(m, ws, train_idx, val_idx, cfg.train, seed, lr=float(chosen["lr"]), epochs=epochs,
            desc=f"{cfg.run.name} member seed {seed}")
        members.append(m.eval())
    return members


def _stats(x: list[float]) -> dict:
    a = np.asarray(x, np.float64)
    return {"min": float(a.min()), "max": float(a.max()), "mean": float(a.mean()),
            "sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0}


def ensemble_record(cfg: RunConfig, members: list[RsoilModel], member_pred: np.ndarray, ens_pred: np.ndarray,
                    member_metrics: list[dict]) -> dict:
    """The metadata's ``ensemble`` record.

    member_pred : [n_members, n_test] every member's test predictions [µmol m-2 s-1].
    ens_pred : [n_test] the ensemble mean's test predictions.
    member_metrics : every member's test metrics (``regression_metrics``), in member order.

    ``spread``: over the test samples, the mean and maximum of the across-member standard deviation
    (ddof = 1) [µmol m-2 s-1] and the mean standard deviation relative to the mean prediction; and the
    min / max / mean / sd over members of each member's NSE and CC.
    """
    sd = member_pred.std(0, ddof=1) if len(member_pred) > 1 else np.zeros(member_pred.shape[1])
    spread = {
        "test_mean_sd": float(sd.mean()) if sd.size else 0.0,
        "test_max_sd": float(sd.max()) if sd.size else 0.0,
        "test_mean_rel_sd": float(sd.mean() / max(float(np.mean(ens_pred)), 1e-12)) if sd.size else 0.0,
        "nse": _stats([m["nse"] for m in member_metrics]),
        "cc": _stats([m["cc"] for m in member_metrics]),
    }
    rec = {"members": len(members), "combine": "mean", "seeds": member_seeds(cfg),
           "member_test_metrics": member_metrics, "spread": spread}
    if cfg.model.kind == "kg_lstm":
        rec["kg_q10"] = [float(m.q10().detach()) for m in members]
    return rec


def as_ensemble(members: list[RsoilModel]) -> Ensemble:
    """One module whose ``forward`` is the member mean (``members_forward`` gives each member)."""
    return Ensemble(members).eval()
