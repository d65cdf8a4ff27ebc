"""`rsoil-couple train` for streaming models (``model.kind = "kg_stream"``): splits, members, metadata.

Sites are read at their own step when ``model.hidden = 0`` (the model is then defined in hours: its
moving averages are exact at any step) and brought to ``data.step_minutes`` otherwise (the LSTM is
trained at one step). The file is written for ``data.step_minutes`` (default: the first site's step).

Splits are per site and by time (a streaming state depends on the drivers only, never on targets):
``extrapolation`` tests on ``test_start..test_end`` at every site that covers it; ``months`` on
``test_months``; ``temporal`` on the last ``fractions[2]`` of each record, with validation the
``fractions[1]`` before it; ``interpolation`` draws rows at random with ``fractions``. Validation is
otherwise the last ``val_fraction`` of each site's training rows (in time), never rows after the test.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
import torch

from ..config import RunConfig
from ..models.kg_stream import KGStream
from ..models.stream_ensemble import StreamEnsemble
from ..models.stream_options import check_train_choice
from ..variables import CANONICAL_VARS, DRIVER_UNITS
from .baseline_scores import q10_on_rows
from .records import SiteArrays, load_sites, model_step_seconds
from .stream import StreamSite, predict_sequence, prepare_site, train_stream


def load_stream_sites(cfg: RunConfig) -> list[SiteArrays]:
    """The configured sites, at their own step (hidden = 0) or at ``data.step_minutes``."""
    step = None if cfg.model.hidden == 0 else model_step_seconds(cfg.data)
    if step is None:
        return [load_sites([sc], None, cfg.data.past_vars)[0] for sc in cfg.data.sites]
    return load_sites(cfg.data.sites, step, cfg.data.past_vars)


def _day(s: str) -> np.datetime64:
    return np.datetime64(s, "D")


def split_masks(site: SiteArrays, scfg, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test row masks of one site (see the module docstring)."""
    n = len(site.time)
    t = site.time.astype("datetime64[ns]")
    idx = np.arange(n)
    test = np.zeros(n, bool)
    if scfg.scenario == "extrapolation":
        test = (t >= _day(scfg.test_start)) & (t < _day(scfg.test_end) + np.timedelta64(1, "D"))
    elif scfg.scenario == "months":
        month = t.astype("datetime64[M]").astype(int) % 12 + 1
        test = np.isin(month, scfg.test_months)
        train_ok = np.isin(month, scfg.train_months) if scfg.train_months else ~test
    elif scfg.scenario == "temporal":
        f_tr, f_va, _ = scfg.fractions
        a, b = int(f_tr * n), int((f_tr + f_va) * n)
        if scfg.val_block_days > 0 and b > 0:
            return _blocked_validation(t, b, f_va / (f_tr + f_va), float(scfg.val_block_days), seed) + (idx >= b,)
        return idx < a, (idx >= a) & (idx < b), idx >= b
    elif scfg.scenario == "interpolation":
        u = np.random.default_rng(seed).random(n)
        f_tr, f_va, _ = scfg.fractions
        return u < f_tr, (u >= f_tr) & (u < f_tr + f_va), u >= f_tr + f_va
    pool = ~test if scfg.scenario != "months" else train_ok & ~test
    if scfg.scenario == "extrapolation" and test.any():
        pool &= idx < idx[test][0]      # nothing after the start of the test window trains
    rows = idx[pool]
    cut = rows[int((1.0 - scfg.val_fraction) * len(rows))] if len(rows) else n
    return pool & (idx < cut), pool & (idx >= cut), test


def _blocked_validation(t: np.ndarray, b: int, share: float, days: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation masks of rows ``0 .. b`` (the rest False): whole blocks of ``days`` days (from the
    first row's time) drawn at random with ``seed``, ``share`` of the blocks (at least one) for validation.
    """
    n = len(t)
    blk = ((t[:b] - t[0]) // np.timedelta64(int(days * 86400), "s")).astype(np.int64)
    ids = np.unique(blk)
    n_va = max(1, int(round(share * len(ids))))
    chosen = np.random.default_rng(seed).choice(ids, size=n_va, replace=False)
    va = np.zeros(n, bool)
    va[:b] = np.isin(blk, chosen)
    tr = np.zeros(n, bool)
    tr[:b] = ~va[:b]
    return tr, va


def build_stream_model(cfg: RunConfig, step_seconds: int) -> KGStream:
    """A `KGStream` of the config's ``[model]`` for ``data.past_vars`` (past window = the spin-up)."""
    spin = int(math.ceil(168.0 * 3600.0 / step_seconds))
    return KGStream.from_config(cfg.model, cfg.data.past_vars, cfg.data.future_vars, spin, 0, step_seconds)


@dataclasses.dataclass
class StreamResult:
    """What a streaming training run made: the model (member or ensemble), metadata and test arrays."""

    model: torch.nn.Module
    meta: dict
    members: list
    histories: list
    prepared: list
    masks: list
    test_pred: dict
    member_test_pred: dict


def batch_chunks(train) -> int:
    """Chunks per batch: ``batch_size // 16`` chunks of 48 h, i.e. the same number of steps at any ``chunk_hours``."""
    return max(1, int(round(max(1, train.batch_size // 16) * 48.0 / train.chunk_hours)))


def train_members(cfg: RunConfig, sites: Sequence[SiteArrays], export_step: int, progress: bool = True,
                  masks: list | None = None) -> tuple[list[KGStream], list[dict], list[StreamSite], list]:
    """Train ``train.members`` members (seeds ``run.seed + k``) on ``sites``; returns members, histories,
    the prepared sites and the (train, val, test) masks per site (``masks``: given per site, else
    `split_masks` of ``cfg.split``). Gradients reach back ``train.chunk_hours`` (default 48 h); a batch
    holds `batch_chunks` chunks, about ``train.batch_size // 16`` x 48 h of steps (default 128: 8 chunks
    of 48 h), so the truncation length changes the batches' shape, not how many steps each one holds.
    """
    probe = build_stream_model(cfg, export_step)
    prepared = [prepare_site(probe, s) for s in sites]
    masks = masks or [split_masks(s, cfg.split, cfg.run.seed) for s in sites]
    members, hists = [], []
    t = cfg.train
    opts = dict(lr=t.lr, progress=progress, batch_chunks=batch_chunks(t), chunk_hours=t.chunk_hours,
                modulation_choice=t.modulation_choice, modulation_block_hours=t.modulation_block_hours,
                site_weighting=t.site_weighting, base_in_joint=t.base_in_joint, site_normalization=t.site_normalization)
    refit = t.refit and any(bool(mk[1].any()) for mk in masks)
    check_train_choice("member_validation", t.member_validation)
    slide = t.member_validation == "slide"
    for k in range(t.members):
        seed = cfg.run.seed + k
        torch.manual_seed(seed)
        m = build_stream_model(cfg, export_step)
        mks = member_masks(masks, k, t.members) if slide else masks
        h = train_stream(m, prepared, [mk[0] for mk in mks], [mk[1] for mk in mks], epochs=t.epochs, seed=seed,
                         patience=t.patience, **opts)
        members.append(m)
        hists.append(h)
    if refit:   # every member again on training + validation rows with validation's epochs and λ
        chosen = [(int(np.argmin(h["val_loss"])) + 1, float(m.modulation_weight)) for m, h in zip(members, hists)]
        if slide:   # one choice from every member's block: the upper medians (values the members chose)
            chosen = [tuple(sorted(c)[len(c) // 2] for c in zip(*chosen))] * len(chosen)
        for k, ((epochs, lam), h) in enumerate(zip(chosen, hists)):
            seed = cfg.run.seed + k
            torch.manual_seed(seed)
            m = build_stream_model(cfg, export_step)
            hists[k] = {**train_stream(m, prepared, [mk[0] | mk[1] for mk in masks], None, epochs=epochs, seed=seed,
                                       patience=epochs + 1, **opts),
                        "refit": {"epochs": epochs, "modulation_weight": lam, "first_pass_val_loss": h["val_loss"]}}
            m.modulation_weight.fill_(lam)
            hists[k]["physics"] = m.physics()
            members[k] = m
    for m, h in zip(members, hists):
        scales = list(h["log_scales"].values())
        m.site_scale.fill_(math.exp(scales[0] if len(scales) == 1 else float(np.median(scales))))
    return members, hists, prepared, masks


def member_masks(masks: list, k: int, n: int) -> list:
    """Member ``k`` of ``n``'s (train, validation, test) masks for ``train.member_validation = "slide"``: per
    site, its training and validation rows in time order, and a validation block of as many rows as the
    shared one, starting ``k / (n - 1)`` of the way from the first of those rows to the last possible start
    (k = n - 1: the shared block). The block is contiguous in that order; the member trains on the rest.
    """
    out = []
    for tr, va, te in masks:
        pool = np.flatnonzero(tr | va)
        nv = int(va.sum())
        if n < 2 or nv == 0 or nv >= len(pool):
            out.append((tr, va, te))
            continue
        start = int(round(k * (len(pool) - nv) / (n - 1)))
        v = np.zeros_like(va)
        v[pool[start:start + nv]] = True
        out.append(((tr | va) & ~v, v, te))
    return out


def learnt_masks(cfg: RunConfig, masks: list) -> list:
    """The masks with the validation rows counted as training rows where the members learnt from them
    (``train.refit``, ``train.member_validation = "slide"``): the rule of the file's envelope, training
    periods, ``n_train`` and fallback Q10.
    """
    if cfg.train.refit or cfg.train.member_validation == "slide":
        return [(mk[0] | mk[1], *mk[1:]) for mk in masks]
    return masks


def physics_record(members: list[KGStream], hists: list[dict]) -> dict:
    """Learned temperature response (Q10; for Lloyd-Taylor E0 and Q10 over 5-15, 0-10, 20-30 degC), moisture
    exponent and anomaly share of every member, their mean and spread.
    """
    rec: dict = {}
    for key in [k for k in hists[0]["physics"] if k != "site_scale"]:
        vals = [float(h["physics"][key]) for h in hists]
        rec[key] = {"members": vals, "mean": float(np.mean(vals)),
                    "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0}
    rec["site_log_scales"] = {name: [float(h["log_scales"][name]) for h in hists] for name in hists[0]["log_scales"]}
    return rec


def envelope(prepared: list[StreamSite], masks: list, past_vars: Sequence[str]) -> dict:
    """Min / max of each raw driver over the training rows of every site."""
    env = {}
    for j, v in enumerate(past_vars):
        vals = np.concatenate([p.drivers[mk[0], j] for p, mk in zip(prepared, masks)])
        env[v] = {"min": float(np.nanmin(vals)), "max": float(np.nanmax(vals))}
    return env


def base_meta(cfg: RunConfig, step_seconds: int, sites: Sequence[SiteArrays], prepared, masks) -> dict:
    """The fields every streaming file shares, fallback Q10 included (the caller adds streaming, site_scale,
    metrics). Validation rows the members learnt from count as training rows here (`learnt_masks`).
    """
    spin = int(math.ceil(168.0 * 3600.0 / step_seconds))
    masks = learnt_masks(cfg, masks)
    periods = []
    for s, mk in zip(sites, masks):
        tt = s.time[mk[0]]
        periods.append([str(tt[0])[:19], str(tt[-1])[:19]] if len(tt) else ["", ""])
    return {
        "schema": "rsoil_meta", "schema_version": 1, "model_kind": cfg.model.kind,
        "step_seconds": int(step_seconds), "past_hours": spin * step_seconds / 3600.0, "past_steps": spin,
        "future_hours": 0.0, "future_steps": 0,
        "past_vars": [{"name": v, "units": DRIVER_UNITS[v]} for v in cfg.data.past_vars], "future_vars": [],
        "depth_m": float(sites[0].depth_m), "output": {"name": "rsoil", "units": "umol m-2 s-1"},
        "envelope": envelope(prepared, masks, cfg.data.past_vars),
        "fallback_q10": _fallback_q10(prepared, masks, cfg.data.past_vars),
        "physical_range": {v: dict(zip(("min", "max"), CANONICAL_VARS[v].physical_range)) for v in cfg.data.past_vars},
        "training": {"sites": [s.name for s in sites], "periods": periods,
                     "n_train": int(sum(int(np.isfinite(p.y.numpy()[mk[0]]).sum()) for p, mk in zip(prepared, masks))),
                     "n_val": int(sum(int(np.isfinite(p.y.numpy()[mk[1]]).sum()) for p, mk in zip(prepared, masks))),
                     "seed": cfg.run.seed, "scenario": cfg.split.scenario,
                     "synthetic": any(s.source == "synthetic" for s in sites),
                     "hyperparameters": {"hidden": cfg.model.hidden, "lr": cfg.train.lr, "epochs": cfg.train.epochs,
                                         "chunk_hours": cfg.train.chunk_hours,
                                         "temperature_form": cfg.model.temperature_form,
                                         "moisture_form": cfg.model.moisture_form,
                                         "sees_level": cfg.model.sees_level,
                                         "envelope": cfg.model.envelope,
                                         "recent_hours": cfg.model.recent_hours, "refit": cfg.train.refit,
                                         "member_validation": cfg.train.member_validation,
                                         "modulation_choice": cfg.train.modulation_choice,
                                         "learn_q10": cfg.model.learn_q10,
                                         "modulation_max": cfg.model.modulation_max},
                     "depths_m": {s.name: (float(s.depth_m) if np.isfinite(s.depth_m) else None) for s in sites},
                     "steps_s": {s.name: int(s.step_seconds) for s in sites}},
    }


def as_model(members: list[KGStream]) -> torch.nn.Module:
    """One member as is, several as a `StreamEnsemble`."""
    return members[0] if len(members) == 1 else StreamEnsemble(members)


def member_predictions(members: list[KGStream], hists: list[dict], ss: StreamSite,
                       use_trained_scale: bool = True) -> np.ndarray:
    """Every member's Rsoil over a prepared site ``[n_members, T]`` (its trained scale for that site when known)."""
    out = []
    for m, h in zip(members, hists):
        ls = h["log_scales"].get(ss.name) if use_trained_scale else None
        out.append(predict_sequence(m, ss, ls))
    return np.stack(out)


def _fallback_q10(prepared: list[StreamSite], masks: list, past_vars: Sequence[str]) -> dict:
    """The file's fallback Q10 (``q10_swc`` with swc, else ``q10``; physical) fitted on all training rows."""
    from ..baselines import q10
    it, iw = past_vars.index("tsoil"), (past_vars.index("swc") if "swc" in past_vars else -1)
    t, w, y = [], [], []
    for p, mk in zip(prepared, masks):
        ok = mk[0] & np.isfinite(p.y.numpy()) & np.isfinite(p.drivers).all(1)
        t.append(p.drivers[ok, it])
        w.append(p.drivers[ok, iw] if iw >= 0 else p.drivers[ok, it] * 0)
        y.append(p.y.numpy()[ok])
    t, w, y = (np.concatenate(a).astype(np.float64) for a in (t, w, y))
    res = q10.fit("q10_swc" if iw >= 0 else "q10", t, w if iw >= 0 else None, y, physical=True,
                  fitted_on="training rows of every site (physical: Q10 > 1, SWC exponent > 0)")
    return res.to_meta()


def site_q10_scores(prepared: list[StreamSite], masks: list, scored) -> dict:
    """Per site of ``scored``: the best of the Q10 family fitted on that site's own training and validation
    rows, scored on its test rows (NSE, CC) - what the ensemble's held-out scores are to be compared with.
    """
    out = {}
    for p, mk in zip(prepared, masks):
        if p.name in scored:
            seen = np.isfinite(p.y.numpy())
            r = q10_on_rows(p, (mk[0] | mk[1]) & seen, mk[2] & seen)
            if r["best"] is not None:
                out[p.name] = {"form": r["best"], "nse": r["best_nse"], "cc": r["forms"][r["best"]]["cc"]}
    return out


def stream_train_run(cfg: RunConfig, sites: Sequence[SiteArrays] | None = None, progress: bool = True) -> StreamResult:
    """Train a streaming model (members, ensemble) and score it on each site's test rows."""
    from ..config import check_finite
    from ..metrics import regression_metrics
    from .ensemble import _stats
    sites = list(sites) if sites is not None else load_stream_sites(cfg)
    step = model_step_seconds(cfg.data) or int(sites[0].step_seconds)
    members, hists, prepared, masks = train_members(cfg, sites, step, progress)
    model = as_model(members)
    test_pred, member_pred, obs_all, pred_all, mpred_all = {}, {}, [], [], []
    for p, mk in zip(prepared, masks):
        mp = member_predictions(members, hists, p)
        ok = mk[2] & np.isfinite(p.y.numpy())
        member_pred[p.name] = mp[:, ok]
        test_pred[p.name] = mp.mean(0)[ok]
        obs_all.append(p.y.numpy()[ok])
        pred_all.append(test_pred[p.name])
        mpred_all.append(mp[:, ok])
    obs = np.concatenate(obs_all)
    meta = base_meta(cfg, step, sites, prepared, masks)
    meta["streaming"] = model.streaming_meta()
    per_site = {p.name: regression_metrics(p.y.numpy()[mk[2] & np.isfinite(p.y.numpy())], test_pred[p.name])
                for p, mk in zip(prepared, masks) if len(test_pred[p.name])}
    meta["test_metrics"] = regression_metrics(obs, np.concatenate(pred_all)) if len(obs) else {"n": 0}
    meta["training"]["physics"] = physics_record(members, hists)
    meta["training"]["test_metrics_per_site"] = per_site
    meta["training"]["q10_per_site"] = site_q10_scores(prepared, masks, per_site)
    n_sites = len(sites)
    meta["site_scale"] = {"value": 1.0 if len(members) > 1 else float(members[0].site_scale),
                          "method": "trained" if n_sites == 1 else "training_median",
                          "sites": [s.name for s in sites]}
    if len(members) > 1:
        mp = np.concatenate(mpred_all, 1)
        mm = [regression_metrics(obs, mp[k]) for k in range(len(members))]
        sd = mp.std(0, ddof=1)
        meta["training"]["physics"]["member_site_scales"] = [float(m.site_scale) for m in members]
        meta["ensemble"] = {"members": len(members), "combine": "mean",
                            "seeds": [cfg.run.seed + k for k in range(len(members))], "member_test_metrics": mm,
                            "spread": {"test_mean_sd": float(sd.mean()), "test_max_sd": float(sd.max()),
                                       "test_mean_rel_sd": float(sd.mean() / max(float(mp.mean()), 1e-9)),
                                       "nse": _stats([m["nse"] for m in mm]), "cc": _stats([m["cc"] for m in mm])}}
    check_finite(meta, "rsoil_meta")
    return StreamResult(model.eval(), meta, members, hists, prepared, masks, test_pred, member_pred)


def report_stream_run(cfg: RunConfig, out: str) -> int:
    """``rsoil-couple train`` for a streaming kind: train, export to ``out``, print per-site scores and physics."""
    from ..modelfile.export import export_model
    res = stream_train_run(cfg)
    meta = export_model(res.model, res.meta, out)
    fmt = lambda m: f"nse {m['nse']:.3f}  cc {m['cc']:.3f}  kge {m['kge']:.3f}  n {m['n']}"  # noqa: E731
    q = meta["training"].get("q10_per_site", {})
    for name, m in meta["training"]["test_metrics_per_site"].items():
        own = f"  | best Q10 fitted on this site ({q[name]['form']}): nse {q[name]['nse']:.3f}" if name in q else ""
        print(f"test {name}: {fmt(m)}{own}")
    ph = meta["training"]["physics"]
    print("learned physics (mean ± sd over members): " + ", ".join(
        f"{k} {ph[k]['mean']:.3f} ± {ph[k]['sd']:.3f}" for k in ("q10", "moisture_exponent", "anomaly_share") if k in ph))
    if "ensemble" in meta:
        sp = meta["ensemble"]["spread"]
        print(f"members nse {sp['nse']['min']:.3f}..{sp['nse']['max']:.3f}, cc {sp['cc']['min']:.3f}..{sp['cc']['max']:.3f}")
    if meta["test_metrics"].get("n"):
        print(f"test (all sites): {fmt(meta['test_metrics'])}")
    print(f"wrote {out} (model_id {meta['model_id']}, streaming state {meta['streaming']['state_size']} floats/column)")
    return 0
