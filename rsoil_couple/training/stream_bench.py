"""Benchmarks outside the training envelope for streaming models (issue 11 a-d): ``rsoil-couple experiment``.

A benchmark config has a ``[benchmark]`` table (configs/bench_*.toml; docs/training.md, "Benchmarks"):

- ``extrapolation``: one site, test window ``test_start..test_end``; ``seeds`` single members and their
  ensemble mean.
- ``cross_season``: per site, train on ``train_months``, test on ``test_months`` (its own scale).
- ``loso``: leave one site out: train on the others; at the left-out site, CC uncalibrated, and NSE on
  its last ``1 - calib_fraction`` with only the site scale fitted (least squares through the origin)
  on its first ``calib_fraction``, against the Q10 family fitted on that same first part.
- ``own_split``: per site, train on the first ``train_fraction`` (validation: its last 10 %), test on
  the rest, against the best Q10 form fitted on the same training rows.

``choose_recent_hours = [h, ...]`` (extrapolation and own_split): one ensemble per delay-line length
``model.recent_hours``, the one with the best NSE on the validation rows scored (`_train_chosen`).
``choose_hidden = [n, ...]`` (with ``train.member_validation = "slide"``): one ensemble per LSTM width
``model.hidden``, the one with the lowest `cross_validation_loss` kept (`_train_chosen`).

Every benchmark writes ``OUT/benchmark.json`` (the numbers, the config, the learned physics with
spreads) and ``OUT/<kind>.png``. Sites are keys of `rsoil_couple.data.sites.SITES` read at their own
step (with ``model.hidden = 0`` the model is defined in hours; an LSTM trains at one step).
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import tomllib

from ..config import DataSection, ModelConfig, RunConfig, SplitSection, TrainSection
from ..metrics import best_scaled, cc, nse, origin_scale
from ..models.stream_options import MODULATION_WEIGHTS
from .baseline_scores import driver_rows, q10_family_best, q10_on_rows
from .records import SiteArrays
from .stream import predict_sequence, prepare_site
from .stream_run import physics_record, train_members

KINDS = ("extrapolation", "cross_season", "loso", "own_split")


@dataclasses.dataclass
class Benchmark:
    """A parsed benchmark config."""

    kind: str
    name: str
    sites: list[str]
    past_vars: list[str]
    members: int
    model: ModelConfig
    train: TrainSection
    options: dict


def load_benchmark(path: str | Path) -> Benchmark:
    """Read a benchmark TOML; errors name the file and the key."""
    with open(path, "rb") as fh:
        d = tomllib.load(fh)
    b = d.get("benchmark")
    if not isinstance(b, dict):
        raise ValueError(f"{path}: no [benchmark] table")
    kind = b.get("kind", "")
    if kind not in KINDS:
        raise ValueError(f"{path}: benchmark.kind = {kind!r}; expected one of {list(KINDS)}")
    from ..data.sites import SITES
    sites = list(b.get("sites", []))
    bad = [s for s in sites if s not in SITES]
    if not sites or bad:
        raise ValueError(f"{path}: benchmark.sites must name sites of rsoil_couple.data.sites.SITES "
                         f"({sorted(SITES)}); unknown: {bad}")
    model = ModelConfig(**d.get("model", {"kind": "kg_stream", "hidden": 0}))
    train = TrainSection(**d.get("train", {}))
    opts = {k: v for k, v in b.items() if k not in ("kind", "name", "sites", "past_vars", "members")}
    return Benchmark(kind, b.get("name", Path(path).stem), sites, list(b.get("past_vars", ["tsoil", "swc"])),
                     int(b.get("members", 3)), model, train, opts)


def read_sites(keys: list[str]) -> list[SiteArrays]:
    """Registered sites at their own step."""
    from ..data import read_site
    from ..data.sites import SITES, site_path
    from .records import site_from_dataset
    out = []
    for k in keys:
        s = site_from_dataset(read_site(site_path(k)), name=SITES[k].site, source=SITES[k].path)
        s.depth_m = SITES[k].depth_m
        s.original_step_seconds = s.step_seconds
        out.append(s)
    return out


def _cfg(b: Benchmark, sites: list[SiteArrays], split: SplitSection, seed: int, members: int,
         past_vars: list[str]) -> RunConfig:
    from ..config import RunSection, SearchSection, SiteConfig
    data = DataSection(sites=[SiteConfig(s.source, s.name, s.depth_m) for s in sites], past_vars=past_vars,
                       future_vars=[], past_hours=168, future_hours=0)
    return RunConfig(run=RunSection(name=b.name, seed=seed, threads=1), data=data, split=split, model=b.model,
                     train=dataclasses.replace(b.train, members=members), search=SearchSection())


def _masked_site(s: SiteArrays, keep: np.ndarray) -> SiteArrays:
    """``s`` with the target removed outside ``keep`` (drivers kept: the state still runs through them)."""
    return dataclasses.replace(s, target=np.where(keep, s.target, np.nan))


def vars_for(b: Benchmark, s: SiteArrays) -> list[str]:
    """The benchmark's variables, without precip at a site that has no rain record."""
    return [v for v in b.past_vars if v in s.drivers and np.isfinite(s.drivers[v]).any()]


def train_benchmark(b, sites, split, seed, members, past_vars, progress, masks=None):
    """Benchmark ``b``'s model and training on ``sites`` with ``split``: `train_members`' (members, histories,
    prepared sites, masks), one torch thread, the config built by `_cfg`.
    """
    cfg = _cfg(b, sites, split, seed, members, past_vars)
    return train_members(cfg, sites, int(sites[0].step_seconds), progress, masks)


def _train_chosen(b, sites, split, seed, members, past_vars, progress, masks=None):
    """`train_benchmark`, and the choice record; with ``choose_recent_hours = [h, ...]`` in ``[benchmark]``: one
    ensemble per delay-line length (``model.recent_hours``), the one whose ensemble has the highest NSE on
    the first site's VALIDATION rows kept (test rows never seen; ties to the first length listed); with
    ``choose_hidden = [n, ...]``: one per LSTM width (``model.hidden``; 0: none), the one with the lowest
    `cross_validation_loss` kept (ties to the first listed).
    """
    hidden = [int(h) for h in b.options.get("choose_hidden", [])]
    hours = [float(h) for h in b.options.get("choose_recent_hours", [])]
    run = (sites, split, seed, members, past_vars, progress, masks)
    if hidden:
        if b.train.member_validation != "slide" or hours:
            raise ValueError(f"{b.name}: choose_hidden compares the members' cross-validation losses: it needs "
                             "train.member_validation = \"slide\" and no choose_recent_hours")
        out, h, cv = _train_best(b, "hidden", hidden, lambda o: cross_validation_loss(o[1]), True, run)
        return out, {"hidden_cross_validation_loss": cv, "hidden_chosen": h}
    if hours and (b.train.refit or b.train.member_validation != "shared"):
        raise ValueError(f"{b.name}: choose_recent_hours scores the validation rows, which train.refit = true and "
                         "train.member_validation = \"slide\" train on; use one or the other")
    if not hours:
        return train_benchmark(b, *run), {}

    def val_nse(o):
        return _split_scores(o[0], o[1], o[2][:1], o[3][:1], which=1).get(o[2][0].name, {}).get("nse", float("-inf"))
    out, h, nses = _train_best(b, "recent_hours", hours, val_nse, False, run)
    return out, {"recent_hours_validation_nse": nses, "recent_hours_chosen": h}


def _train_best(b, field: str, values: list, score, lower: bool, run: tuple):
    """One ensemble per value of ``model.<field>`` (`train_benchmark` with ``run``'s arguments), each scored by
    ``score(output)``; returns the best one's output (the lowest score with ``lower``, else the highest; ties
    to the first value listed), its value and every value's score.
    """
    best, scores = None, {}
    for v in values:
        out = train_benchmark(dataclasses.replace(b, model=dataclasses.replace(b.model, **{field: v})), *run)
        sc = scores[f"{v:g}"] = score(out)
        if best is None or (sc < best[0] if lower else sc > best[0]):
            best = (sc, v, out)
    return best[2], best[1], scores


def cross_validation_loss(hists: list[dict]) -> float:
    """The members' mean of their best validation loss in the sliding pass (each member's own block of the
    training rows, ``train.member_validation = "slide"``; kept as ``refit.first_pass_val_loss`` after a refit).
    """
    return float(np.mean([min(h["refit"]["first_pass_val_loss"] if "refit" in h else h["val_loss"]) for h in hists]))


def ensemble_at(members, p, lam: float, log_scales=None) -> np.ndarray:
    """The members' mean over a prepared site with every member's modulation weight set to ``lam``
    (0: the physical base alone); each member's own weight is restored afterwards.
    """
    keep = [float(m.modulation_weight) for m in members]
    try:
        for m in members:
            m.modulation_weight.fill_(lam)
        return np.mean([predict_sequence(m, p, None if log_scales is None else log_scales[k])
                        for k, m in enumerate(members)], 0)
    finally:
        for m, v in zip(members, keep):
            m.modulation_weight.fill_(v)


def physics_only(members, p, log_scales=None) -> np.ndarray:
    """The ensemble's physical base alone over a prepared site (each member's modulation weight set to 0)."""
    return ensemble_at(members, p, 0.0, log_scales)


def _calibrated_modulation(by_lam: dict, y, first) -> tuple[float, float, np.ndarray]:
    """`rsoil-couple calibrate --fit-modulation` on the ``first`` rows, from the ensemble's prediction at
    each weight (``by_lam``, in `MODULATION_WEIGHTS` order): (λ, factor, prediction at λ); ties to the smaller λ
    (`rsoil_couple.metrics.best_scaled`, the rule calibrate applies).
    """
    lams = list(by_lam)
    i, k, _ = best_scaled([(y[first], by_lam[lam][first]) for lam in lams])
    return lams[i], k, by_lam[lams[i]]


def _split_scores(members, hists, prepared, masks, which=2) -> dict:
    out = {}
    for p, mk in zip(prepared, masks):
        ok = mk[which] & np.isfinite(p.y.numpy())
        if not ok.any():
            continue
        ls = [h["log_scales"][p.name] for h in hists]
        mp = np.stack([predict_sequence(m, p, v) for m, v in zip(members, ls)])[:, ok]
        base = physics_only(members, p, ls)[ok]
        y = p.y.numpy()[ok]
        out[p.name] = {"n": int(ok.sum()), "member_nse": [nse(y, q) for q in mp], "member_cc": [cc(y, q) for q in mp],
                       "nse": nse(y, mp.mean(0)), "cc": cc(y, mp.mean(0)), "min_pred": float(mp.mean(0).min()),
                       "physics_only_nse": nse(y, base), "physics_only_cc": cc(y, base),
                       "time": p.time[ok], "obs": y, "pred": mp.mean(0), "base": base, "drivers": p.drivers[ok]}
    return out


def run_extrapolation(b, progress=True) -> dict:
    """(a): ``members`` seeds on the site's record before ``test_start``; scores in the test window."""
    sites = read_sites(b.sites)
    split = SplitSection(scenario="extrapolation", test_start=b.options["test_start"], test_end=b.options["test_end"],
                         val_fraction=float(b.options.get("val_fraction", 0.1)))
    (members, hists, prepared, masks), choice = _train_chosen(b, sites, split, int(b.options.get("seed", 0)),
                                                              b.members, vars_for(b, sites[0]), progress)
    sc = _split_scores(members, hists, prepared, masks)
    for r in sc.values():
        r.update(choice)
    return {"sites": sc, "physics": physics_record(members, hists)}


def run_cross_season(b, progress=True) -> dict:
    """Per site: train on its ``train`` months (plus the whole records of ``extra_sites``), test on ``test``."""
    from .stream_run import split_masks
    out, phys = {}, {}
    extra_keys = list(b.options.get("extra_sites", []))
    extra = read_sites(extra_keys)
    for key, s in zip(b.sites, read_sites(b.sites)):
        months = b.options["months"][key]
        split = SplitSection(scenario="months", train_months=months["train"], test_months=months["test"],
                             val_fraction=0.1)
        others = [e for e, k in zip(extra, extra_keys) if k != key]
        masks = [split_masks(s, split, 0)] + [split_masks(e, SplitSection(scenario="temporal", fractions=[0.9, 0.1, 0.0]), 0)
                                              for e in others]
        members, hists, prepared, masks = train_benchmark(b, [s] + others, split, 0, b.members, vars_for(b, s),
                                                          progress, masks)
        prepared, masks = prepared[:1], masks[:1]
        out.update(_split_scores(members, hists, prepared, masks))
        phys[s.name] = physics_record(members, hists)
        tr = masks[0][0] & np.isfinite(prepared[0].y.numpy())
        te = masks[0][2] & np.isfinite(prepared[0].y.numpy())
        out[s.name]["q10"] = q10_on_rows(prepared[0], tr, te)
        out[s.name]["ceiling"] = season_ceiling(prepared[0], te)
    return {"sites": out, "physics": phys}


def _seasons(time: np.ndarray, rows: np.ndarray, gap_days: float = 60.0) -> np.ndarray:
    """Label of each row's season: runs of ``rows`` separated by more than ``gap_days`` are seasons 0, 1, ..."""
    t = np.asarray(time, "datetime64[s]").astype(np.int64)[rows]
    return np.concatenate([[0], np.cumsum(np.diff(t) > gap_days * 86400.0)]) if t.size else np.zeros(0, int)


def season_ceiling(p, te_rows: np.ndarray) -> dict:
    """What the drivers can tell about a test season, whatever is trained on the growing season.

    - ``fit_on_test``: the Q10 family fitted on the test rows THEMSELVES (in-sample): the best NSE any
      Q10 form of soil temperature and SWC reaches there, the test season seen whole.
    - ``other_seasons``: each test season (e.g. each winter) predicted by the Q10 family fitted on the
      OTHER test seasons of the site (NSE pooled over every season): a model that has seen winters,
      just not this one.

    A target above both is beyond what a Q10 of these drivers carries, from any training data.
    """
    from ..baselines import q10
    t, w, y, rows = driver_rows(p, te_rows)
    out = {"fit_on_test": q10_family_best(t, w, y, t, w, y)}
    season = _seasons(p.time, rows)
    n = int(season.max()) + 1 if season.size else 0
    forms = {}
    for form in q10.FORMS:
        if form != "q10" and w is None:
            continue
        pred = np.full(y.shape, np.nan)
        for k in range(n):
            fit, ev = season != k, season == k
            try:
                f = q10.fit(form, t[fit], None if form == "q10" else w[fit], y[fit])
                pred[ev] = f.predict(t[ev], None if form == "q10" else w[ev])
            except (ValueError, RuntimeError):
                continue
        ok = np.isfinite(pred)
        forms[form] = {"nse": nse(y[ok], pred[ok]), "rows": int(ok.sum())} if ok.any() else {"error": "no fit"}
    good = {k: v["nse"] for k, v in forms.items() if "nse" in v}
    out["other_seasons"] = {"seasons": n, "forms": forms, "best": max(good, key=good.get) if good else None,
                            "best_nse": max(good.values()) if good else float("nan")}
    return out


def run_own_split(b, progress=True) -> dict:
    """(d): per site, the first ``train_fraction`` trains, the rest tests; the best Q10 form on the same rows."""
    out, phys = {}, {}
    frac = float(b.options.get("train_fraction", 0.7))
    for key, s in zip(b.sites, read_sites(b.sites)):
        split = SplitSection(scenario="temporal", fractions=[frac * 0.9, frac * 0.1, 1.0 - frac],
                             val_block_days=float(b.options.get("val_block_days", 0.0)))
        (members, hists, prepared, masks), choice = _train_chosen(b, [s], split, 0, b.members, vars_for(b, s),
                                                                  progress)
        out.update(_split_scores(members, hists, prepared, masks))
        out[s.name].update(choice)
        phys[s.name] = physics_record(members, hists)
        fit_rows = (masks[0][0] | masks[0][1]) & np.isfinite(prepared[0].y.numpy())
        out[s.name]["q10"] = q10_on_rows(prepared[0], fit_rows, masks[0][2] & np.isfinite(prepared[0].y.numpy()))
    return {"sites": out, "physics": phys}


def run_loso(b, progress=True) -> dict:
    """(c): per site, train on the others; scale fitted on its first ``calib_fraction``, scored on the rest."""
    all_sites = read_sites(b.sites)
    calib = float(b.options.get("calib_fraction", 0.3))
    out, phys = {}, {}
    for i, left in enumerate(all_sites):
        train_sites = [s for j, s in enumerate(all_sites) if j != i]
        split = SplitSection(scenario="temporal", fractions=[0.9, 0.1, 0.0])
        members, hists, _, _ = train_benchmark(b, train_sites, split, 0, b.members, b.past_vars, progress)
        p = prepare_site(members[0], left)
        y = p.y.numpy()
        n = len(y)
        first = (np.arange(n) < calib * n) & np.isfinite(y) & p.spun_up.numpy()
        rest = (np.arange(n) >= calib * n) & np.isfinite(y)
        mp = np.stack([predict_sequence(m, p) for m in members])
        ens = mp.mean(0)
        k = origin_scale(y[first], ens[first])
        by_lam = {lam: ensemble_at(members, p, lam) for lam in MODULATION_WEIGHTS}
        base = by_lam[0.0]
        kb = origin_scale(y[first], base[first])
        lam, kl, ens_l = _calibrated_modulation(by_lam, y, first)
        allr = np.isfinite(y) & p.spun_up.numpy()
        out[left.name] = {"n_calib": int(first.sum()), "n_test": int(rest.sum()), "scale_factor": k,
                          "cc_uncalibrated": cc(y[allr], ens[allr]), "nse_uncalibrated_rest": nse(y[rest], ens[rest]),
                          "nse": nse(y[rest], k * ens[rest]), "cc": cc(y[rest], ens[rest]),
                          "member_nse": [nse(y[rest], origin_scale(y[first], q[first]) * q[rest]) for q in mp],
                          "q10": q10_on_rows(p, first, rest), "min_pred": float(ens.min()),
                          "physics_only_nse": nse(y[rest], kb * base[rest]),
                          "physics_only_cc_uncalibrated": cc(y[allr], base[allr]),
                          "modulation_weight_calibrated": lam,
                          "nse_scale_and_modulation_calibrated": nse(y[rest], kl * ens_l[rest]),
                          "time": p.time[rest], "obs": y[rest], "pred": k * ens[rest], "base": kb * base[rest],
                          "drivers": p.drivers[rest]}
        phys[left.name] = physics_record(members, hists)
        if progress:
            r = out[left.name]
            print(f"LOSO {left.name}: cc_uncal {r['cc_uncalibrated']:.3f}  nse_cal {r['nse']:.3f}  "
                  f"best Q10 ({r['q10']['best']}) {r['q10']['best_nse']:.3f}", flush=True)
    return {"sites": out, "physics": phys}


RUNNERS = {"extrapolation": run_extrapolation, "cross_season": run_cross_season, "loso": run_loso,
           "own_split": run_own_split}


def run_benchmark(path: str | Path, out: Path, progress: bool = True) -> dict:
    """Run the benchmark of ``path``; write ``out/benchmark.json`` and the figure; return the result."""
    import torch

    from .stream_figures import benchmark_figure
    b = load_benchmark(path)
    # one intra-op thread, as run.threads = 1 for training: small LSTM/dense steps gain nothing from more,
    # and on a loaded machine OpenMP barriers wait for descheduled threads (docs/core.md)
    torch.set_num_threads(int(b.options.get("threads", 1)))
    t0 = time.perf_counter()
    res = RUNNERS[b.kind](b, progress)
    out.mkdir(parents=True, exist_ok=True)
    fig = benchmark_figure(b.kind, res, out / f"{b.kind}.png")
    clean = {name: {k: v for k, v in r.items() if k not in ("time", "obs", "pred", "base", "drivers")}
             for name, r in res["sites"].items()}
    result = {"benchmark": b.name, "kind": b.kind, "config": str(path), "sites": clean, "physics": res["physics"],
              "runtime_s": round(time.perf_counter() - t0, 1), "figure": fig,
              "model": dataclasses.asdict(b.model), "train": dataclasses.asdict(b.train), "members": b.members}
    result["summary"] = summarize(b.kind, clean)
    (out / "benchmark.json").write_text(json.dumps(result, indent=1, default=_json_default))
    return result


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o))


def summarize(kind: str, sites: dict) -> dict:
    """The targets' view: per-site pass/fail and counts."""
    if kind == "extrapolation":
        r = next(iter(sites.values()))
        return {"ensemble_nse": r["nse"], "min_member_nse": float(min(r["member_nse"])),
                "target_met": bool(r["nse"] >= 0.65 and min(r["member_nse"]) >= 0.55)}
    if kind == "cross_season":
        return {"nse": {k: r["nse"] for k, r in sites.items()},
                "target_met": bool(all(r["nse"] >= 0.3 and r["min_pred"] > 0 for r in sites.values()))}
    if kind == "loso":
        beats = {k: bool(r["nse"] > r["q10"]["best_nse"]) for k, r in sites.items()}
        cc6 = {k: bool(r["cc_uncalibrated"] >= 0.6) for k, r in sites.items()}
        return {"beats_calibrated_q10": beats, "n_beats": int(sum(beats.values())), "cc_ge_0.6": cc6,
                "n_cc": int(sum(cc6.values())),
                "target_met": bool(sum(beats.values()) >= 6 and sum(cc6.values()) >= 6)}
    beats = {k: bool(r["nse"] > r["q10"]["best_nse"]) for k, r in sites.items()}
    return {"beats_best_q10": beats, "n_beats": int(sum(beats.values())), "target_met": bool(all(beats.values()))}
