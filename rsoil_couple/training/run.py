"""One run: data -> windows -> split -> search/fit -> test metrics -> metadata, and `rsoil-couple train`."""
from __future__ import annotations

import argparse
import json
import time as _time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..config import RunConfig, check_finite, load_run_config
from ..metrics import regression_metrics
from ..models import RsoilModel
from ..variables import CANONICAL_VARS, DRIVER_UNITS
from .fit import _subsample, predict, search_and_fit, set_determinism
from .records import SiteArrays, load_data, site_from_dataset
from .splits import Split, make_split
from .windows import WindowSet


# --------------------------------------------------------------------------------------------------
# One run: data -> windows -> split -> search/fit -> test metrics -> metadata
@dataclass
class RunResult:
    """Outcome of one training run (`train_run`): the trained model, its metadata and its test scores.

    Parameters
    ----------
    model : RsoilModel
        The trained model in eval mode (an `Ensemble` when ``train.members > 1``).
    meta : dict
        Model-file metadata (rsoil_meta.json) for `export_model`.
    ws : WindowSet
        All samples of the run's sites.
    split : Split
        Train / validation / test samples of ``ws``.
    search : dict
        Hyperparameter search record: ``trials``, the ``chosen`` settings, ``train_idx`` (training rows used).
    test_pred : numpy.ndarray
        Predicted Rsoil of the test samples [umol m-2 s-1]
    test_obs : numpy.ndarray
        Observed Rsoil of the test samples [umol m-2 s-1]
    test_metrics : dict
        ``mse``, ``nse``, ``cc``, ``kge`` and ``n`` of the test predictions (`regression_metrics`).
    seconds : float, default 0
        Wall-clock time of the run [s]
    extra : dict
        Further results; an ensemble adds ``member_test_pred`` ``[n_members, n_test]`` [umol m-2 s-1]
    """

    model: RsoilModel
    meta: dict
    ws: WindowSet
    split: Split
    search: dict
    test_pred: np.ndarray
    test_obs: np.ndarray
    test_metrics: dict
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def fit_fallback_q10(ws: WindowSet, idx: np.ndarray) -> dict:
    """Fallback Q10 of the model file, fitted (rsoil_couple.q10, LM) on the training samples at t:
    ``q10_swc`` when swc is an input, else ``q10``; constrained to a physical response (Q10 > 1,
    SWC exponent > 0) because the fallback runs exactly where the network cannot: outside the
    training record (e.g. a dryland summer where hot means dry would otherwise fit Q10 < 1).
    """
    from ..baselines import q10
    t = ws.X[idx, ws.past_vars.index("tsoil")].astype(np.float64)
    y = ws.y[idx].astype(np.float64)
    swc = ws.X[idx, ws.past_vars.index("swc")].astype(np.float64) if "swc" in ws.past_vars else None
    res = q10.fit("q10_swc" if swc is not None else "q10", t, swc, y, physical=True,
                  fitted_on="training split (physical: Q10 > 1, SWC exponent > 0)")
    return res.to_meta()


def _periods(ws: WindowSet, idx: np.ndarray) -> tuple[list[str], list[list[str]]]:
    sites, periods = [], []
    fmt = lambda t: str(np.datetime_as_string(t, unit="m"))  # noqa: E731
    for i, s in enumerate(ws.sites):
        r = idx[ws.site[idx] == i]
        if len(r):
            sites.append(s.name)
            periods.append([fmt(ws.time[r[0]]), fmt(ws.time[r[-1]])])
    return sites, periods


def make_meta(cfg: RunConfig, ws: WindowSet, split: Split, search: dict, fallback: dict,
              test_metrics: dict, ensemble: dict | None = None) -> dict:
    """``rsoil_meta.json`` content (without model_id / versions, which export fills).

    ``ensemble``: the record of `training.ensemble.ensemble_record` (``train.members > 1``); then
    ``test_metrics`` are those of the ensemble mean and ``training.kg_q10`` the members' mean Q10.
    """
    used = list(dict.fromkeys(ws.past_vars + ws.future_vars))
    rows = ws.covered_rows(search["train_idx"])
    env = {}
    for v in used:
        col = ws.X[rows, ws.past_vars.index(v)] if v in ws.past_vars else ws.F[rows, ws.future_vars.index(v)]
        env[v] = {"min": float(np.nanmin(col)), "max": float(np.nanmax(col))}
    sites, periods = _periods(ws, search["train_idx"])
    synthetic = any(s.source == "synthetic" for s in ws.sites)
    meta = {
        "schema": "rsoil_meta", "schema_version": 1, "model_kind": cfg.model.kind,
        "step_seconds": int(ws.step_seconds),
        "past_hours": ws.past_hours, "past_steps": ws.P,
        "future_hours": ws.future_hours, "future_steps": ws.Fs,
        "past_vars": [{"name": v, "units": DRIVER_UNITS[v]} for v in ws.past_vars],
        "future_vars": [{"name": v, "units": DRIVER_UNITS[v]} for v in ws.future_vars],
        "depth_m": float(ws.sites[0].depth_m),
        "output": {"name": "rsoil", "units": "umol m-2 s-1"},
        "envelope": env,
        "physical_range": {v: dict(zip(("min", "max"), CANONICAL_VARS[v].physical_range)) for v in used},
        "fallback_q10": fallback,
        "training": {"sites": sites, "periods": periods, "n_train": search["n_train"],
                     "n_val": search["n_val"], "seed": cfg.run.seed, "scenario": cfg.split.scenario,
                     "synthetic": synthetic, "hyperparameters": search["chosen"],
                     "skipped_samples": ws.counts, "excluded_overlap": split.excluded_overlap},
        "test_metrics": test_metrics,
    }
    if cfg.model.kind == "kg_lstm":
        meta["training"]["kg_q10"] = float(search["model_q10"])
    if ensemble is not None:
        meta["ensemble"] = ensemble
    # the metadata is JSON read by the C++ core: no Infinity/NaN (json.dumps(allow_nan=False) would
    # refuse them too, but without naming the key)
    check_finite(meta, "rsoil_meta")
    json.dumps(meta, allow_nan=False)
    return meta


def train_run(cfg: RunConfig, sites: Sequence[SiteArrays] | None = None) -> RunResult:
    """Train one configured model (with the declared search) and measure it on the test split."""
    t0 = _time.perf_counter()
    sites = list(sites) if sites is not None else load_data(cfg.data)
    ws = WindowSet(sites, cfg.data.past_vars, cfg.data.future_vars, cfg.data.past_hours, cfg.data.future_hours)
    split = make_split(ws, cfg.split, cfg.run.seed)
    model, search = search_and_fit(cfg, ws, split)
    search["train_idx"] = _subsample(split.train, cfg.train.max_train_samples, cfg.run.seed)
    obs = ws.y[split.test]
    extra: dict = {}
    record = None
    if cfg.train.members > 1:
        from . import ensemble as E
        members = E.train_members(cfg, ws, split, model, search)
        member_pred = np.stack([predict(m, ws, split.test) for m in members])
        member_metrics = [regression_metrics(obs, p) for p in member_pred]
        model = E.as_ensemble(members)
        pred = predict(model, ws, split.test)
        record = E.ensemble_record(cfg, members, member_pred, pred, member_metrics)
        extra["member_test_pred"] = member_pred
        if cfg.model.kind == "kg_lstm":
            search["model_q10"] = float(np.mean(record["kg_q10"]))
    else:
        if cfg.model.kind == "kg_lstm":
            search["model_q10"] = float(model.q10().detach())
        pred = predict(model, ws, split.test)
    tm = regression_metrics(obs, pred)
    fallback = fit_fallback_q10(ws, search["train_idx"])
    meta = make_meta(cfg, ws, split, search, fallback, tm, record)
    return RunResult(model.eval(), meta, ws, split, search, pred, obs, tm, _time.perf_counter() - t0, extra)


def synthetic_sites(step_seconds: int = 1800, days: int = 40, seed: int = 0) -> list[SiteArrays]:
    """The synthetic dryland site of rsoil_couple.synthetic as one :class:`SiteArrays` (labelled synthetic)."""
    from ..data.synthetic import synthetic_site
    if step_seconds % 60:
        raise ValueError(f"synthetic site: step_seconds = {step_seconds} must be whole minutes")
    ds = synthetic_site(days=days, step_minutes=step_seconds // 60, seed=seed)
    s = site_from_dataset(ds, name=str(ds.attrs.get("site", "synthetic")), source="synthetic")
    return [s]


# --------------------------------------------------------------------------------------------------
# CLI: rsoil-couple train CONFIG.toml --out MODEL.pt
def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``rsoil-couple train`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command's parser, filled here with the positional ``config`` (run TOML) and ``--out`` (model file
        to write)..
    """
    parser.add_argument("config", help="run config (TOML), see docs/training.md")
    parser.add_argument("--out", required=True, help="model file to write (TorchScript + rsoil_meta.json)")


def run(args: argparse.Namespace) -> int:
    """Run ``rsoil-couple train``: train the configured model, export it and print its scores.

    Trains with `train_run`, writes the model file (TorchScript + rsoil_meta.json) to ``args.out`` with
    `export_model` and prints the sample counts, the split, the chosen hyperparameters and the test MSE
    [(umol m-2 s-1)^2], NSE, CC and KGE (per member and their spread for an ensemble).

    Parameters
    ----------
    args : argparse.Namespace
        Options parsed by `configure_parser`.

    Returns
    -------
    int
        Exit status 0; an invalid config raises ``ValueError`` naming the file and the key.
    """
    from ..modelfile.export import export_model
    cfg = load_run_config(args.config)
    set_determinism(cfg.run.seed, cfg.run.threads)
    from ..models import MODELS
    if MODELS[cfg.model.kind].streaming:
        from .stream_run import report_stream_run
        return report_stream_run(cfg, args.out)
    res = train_run(cfg)
    meta = export_model(res.model, res.meta, args.out)
    tm = res.test_metrics
    for name, c in res.ws.counts.items():
        print(f"{name}: {c['valid']} samples, {c['skipped_gap']} skipped (gap in window), "
              f"{c['skipped_edge']} skipped (record edge)")
    print(f"split {cfg.split.scenario}: train {meta['training']['n_train']}, val {meta['training']['n_val']}, "
          f"test {tm['n']}, excluded for overlap with the test period {res.split.excluded_overlap}")
    print(f"chosen: {res.search['chosen']}")
    fmt = lambda m: f"mse {m['mse']:.4g}  nse {m['nse']:.3f}  cc {m['cc']:.3f}  kge {m['kge']:.3f}  n {m['n']}"  # noqa: E731
    ens = meta.get("ensemble")
    if ens:
        q = ens.get("kg_q10")
        for k, (seed, m) in enumerate(zip(ens["seeds"], ens["member_test_metrics"])):
            print(f"member {k} (seed {seed}): {fmt(m)}" + (f"  q10 {q[k]:.3f}" if q else ""))
        sp = ens["spread"]
        print(f"spread over members: nse {sp['nse']['min']:.3f}..{sp['nse']['max']:.3f} (sd {sp['nse']['sd']:.3f}), "
              f"cc {sp['cc']['min']:.3f}..{sp['cc']['max']:.3f}; across-member sd of the test predictions "
              f"{sp['test_mean_sd']:.4g} umol m-2 s-1 on average ({100 * sp['test_mean_rel_sd']:.1f} % of the mean)")
        print(f"test (ensemble mean of {ens['members']}): {fmt(tm)}")
    else:
        print(f"test: {fmt(tm)}")
    print(f"wrote {args.out} (model_id {meta['model_id']}, {res.seconds:.1f} s)")
    return 0
