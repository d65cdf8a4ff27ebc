"""Streaming models in an experiment: the paper's Table 1 grid without windows (``rsoil-couple experiment``).

Used when every model of ``experiment.models`` is a streaming kind (``kg_stream``, or a
``[models.<name>]`` variant of it; configs/paper_us_hn1_stream.toml). A streaming model reads no window,
so a past length of the grid becomes the truncation length of back-propagation through time
(``train.chunk_hours``): how far back the gradients of one chunk reach. The LSTM state still carries
from chunk to chunk (its memory is not cut, only the gradient); with ``model.hidden = 0`` (no LSTM)
nothing is carried and the length changes only which steps share a batch (`stream_run.batch_chunks`
keeps the steps per batch about equal).

Test rows, the same for every model and baseline of one (scenario, seed): the test rows of
`stream_run.split_masks` with observed Rsoil, after the 168 h spin-up and with finite drivers.
The baselines are fitted on the train + validation rows of the same split (also spun up), do not depend
on the past length, and are fitted once per (scenario, seed) and listed under every past length, so
each table row has them beside it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..config import ExperimentConfig, case_config
from ..metrics import regression_metrics
from ..models import MODELS
from .baseline_scores import prediction_range, score_baselines
from .fit import set_determinism
from .records import SiteArrays, model_step_seconds
from .stream_run import batch_chunks, load_stream_sites, member_predictions, split_masks, train_members


def is_streaming(ecfg: ExperimentConfig) -> bool:
    """Whether the experiment's models are streaming kinds (the config loader refuses a mix)."""
    from ..config import model_kind
    return all(getattr(MODELS[model_kind(ecfg.overrides, m)], "streaming", False) for m in ecfg.experiment.models)


@dataclass
class Rows:
    """The records of an experiment's sites, concatenated, as the figures read them (a `WindowSet`'s names)."""

    time: np.ndarray
    y: np.ndarray
    X: np.ndarray              # [n, n_vars] raw drivers in ``past_vars`` order
    past_vars: list


@dataclass
class TestRows:
    """Integer rows of `Rows` scored (``test``) and fitted on by the baselines (``fit``)."""

    test: np.ndarray
    fit: np.ndarray


@dataclass
class StreamCase:
    """One trained streaming case, shaped for `rsoil_couple.training.figures.experiment_figures`."""

    ws: Rows
    split: TestRows
    test_pred: np.ndarray
    test_metrics: dict


def case_rows(sites: list[SiteArrays], past_vars: list[str], split_cfg, seed: int) -> tuple[Rows, TestRows, list]:
    """Concatenated records, the common test and fit rows (module docstring), and the per-site masks."""
    masks = [split_masks(s, split_cfg, seed) for s in sites]
    X = np.concatenate([np.stack([s.drivers[v] for v in past_vars], 1) for s in sites]).astype(np.float64)
    y = np.concatenate([s.target for s in sites]).astype(np.float64)
    spun = np.concatenate([np.arange(len(s.time)) >= math.ceil(168.0 * 3600.0 / s.step_seconds) for s in sites])
    ok = np.isfinite(y) & np.isfinite(X).all(1) & spun
    tr, va, te = (np.concatenate([m[k] for m in masks]) for k in range(3))
    rows = Rows(np.concatenate([s.time for s in sites]), y, X, list(past_vars))
    return rows, TestRows(np.flatnonzero(te & ok), np.flatnonzero((tr | va) & ok)), masks


def _baselines(ecfg: ExperimentConfig, rows: Rows, idx: TestRows, scenario: str, seed: int) -> tuple[list, dict]:
    e = ecfg.experiment
    pv = rows.past_vars
    scores, preds = score_baselines(e.baselines, rows.X[:, pv.index("tsoil")],
                                    rows.X[:, pv.index("swc")] if "swc" in pv else None, rows.y, idx.fit,
                                    idx.test, e.clm_sand, e.clm_clay)
    cases = [{"model": name, "kind": "baseline", "scenario": scenario, "past_hours": float(ph), "future_hours": 0.0,
              "seed": seed, **sc} for ph in e.past_hours for name, sc in scores.items()]
    return cases, preds


def stream_cases(ecfg: ExperimentConfig, sites: list[SiteArrays] | None = None) -> tuple[list[dict], dict, list]:
    """Train and score every (scenario, past length, model, seed) of a streaming experiment.

    Returns the cases (metrics.json's ``cases``), ``(model, scenario, past_hours, seed) -> StreamCase``
    and ``("baselines", scenario, past_hours, seed) -> {"ws", "split", "preds"}`` for the figures, and
    the sites. ``sites``: records to use instead of reading ``data.sites`` (at one step).
    """
    e, b = ecfg.experiment, ecfg.base
    loaded: dict = {}

    def site_records(cfg) -> list[SiteArrays]:
        if sites is not None:
            return list(sites)
        key = cfg.model.hidden == 0         # own steps (hidden 0) or data.step_minutes
        if key not in loaded:
            loaded[key] = load_stream_sites(cfg)
        return loaded[key]

    cases: list[dict] = []
    keep: dict = {}
    for scenario in e.scenarios:
        for seed in e.seeds:
            cfg0 = case_config(ecfg, e.models[0], scenario, e.past_hours[0], seed)
            rows, idx, _ = case_rows(site_records(cfg0), b.data.past_vars, cfg0.split, seed)
            bc, preds = _baselines(ecfg, rows, idx, scenario, seed)
            cases += bc
            for ph in e.past_hours:
                keep[("baselines", scenario, float(ph), seed)] = {"ws": rows, "split": idx, "preds": preds}
                for name in e.models:
                    case, view = _one_case(ecfg, name, scenario, ph, seed, site_records, rows, idx)
                    cases.append(case)
                    keep[(name, scenario, float(ph), seed)] = view
    return cases, keep, site_records(case_config(ecfg, e.models[0], e.scenarios[0], e.past_hours[0], e.seeds[0]))


def _one_case(ecfg, name, scenario, ph, seed, site_records, rows: Rows, idx: TestRows) -> tuple[dict, StreamCase]:
    cfg = case_config(ecfg, name, scenario, ph, seed)
    set_determinism(seed, cfg.run.threads)
    sites = site_records(cfg)
    t0 = time.perf_counter()
    step = model_step_seconds(cfg.data) or int(sites[0].step_seconds)
    members, hists, prepared, masks = train_members(cfg, sites, step, progress=False)
    pred = np.concatenate([member_predictions(members, hists, p).mean(0) for p in prepared])
    if len(pred) != len(rows.y):
        raise ValueError(f"[models.{name}]: its sites have {len(pred)} rows, the experiment's {len(rows.y)} "
                         "(every model of a streaming experiment must run at one step)")
    seconds = time.perf_counter() - t0
    te = pred[idx.test]
    metrics = regression_metrics(rows.y[idx.test], te)
    h = hists[0]
    n_rows = [sum(int((mk[k] & np.isfinite(p.y.numpy()) & p.spun_up.numpy()).sum()) for p, mk in zip(prepared, masks))
              for k in (0, 1)]
    phys = h["physics"]
    case = {"model": name, "kind": "deep", "model_kind": cfg.model.kind, "scenario": scenario,
            "past_hours": float(ph), "chunk_hours": float(cfg.train.chunk_hours), "future_hours": 0.0,
            "seed": int(seed), "test": metrics, "val_loss": float(min(h["val_loss"])),
            "hyperparameters": {"hidden": cfg.model.hidden, "lr": cfg.train.lr, "past_vars": list(cfg.data.past_vars),
                                "chunk_hours": cfg.train.chunk_hours, "batch_chunks": batch_chunks(cfg.train),
                                "modulation_max": cfg.model.modulation_max},
            "epochs": int(h["epochs"]), "n_train": n_rows[0], "n_val": n_rows[1], "seconds": round(seconds, 2),
            "range": prediction_range(te),
            "physics": {k: float(phys[k]) for k in ("q10", "moisture_exponent", "anomaly_share") if k in phys}}
    print(f"{scenario:13s} {name:16s} chunk {ph:5g} h seed {seed}: nse {metrics['nse']:.3f} cc {metrics['cc']:.3f} "
          f"({seconds:.1f} s, {h['epochs']} epochs)", flush=True)
    return case, StreamCase(rows, idx, te, metrics)
