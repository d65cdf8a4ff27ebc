"""A set of runs and baselines (the paper's Table 1, Figs. 2A-6): ``rsoil-couple experiment CONFIG --out DIR``.

Writes ``DIR/metrics.json`` (``{"cases": [...]}``, one entry per deep-model run and per baseline),
``DIR/summary.md`` (tables, mean ± spread over seeds) and the figures. Baselines (Q10 family and the
CLM-structure scalar model, fitted by LM/least squares on train+validation; the paper's published
parameters as presets) are scored, case by case, on the same test samples as the deep models that
read the future window (uniLSTM, without one, has a few more samples at the record's end).
The future-branch ablation scores every model that reads the future window again with the observed
future soil temperature replaced by a persistence forecast (yesterday's diel cycle shifted to today's
level) or held flat at the current value.
"""
from __future__ import annotations

import argparse
import json
import time as _time
from pathlib import Path

import numpy as np

from ..config import ExperimentConfig, case_config, load_experiment_config
from .baseline_scores import prediction_range, score_baselines
from .figures import aggregate
from .fit import predict, set_determinism
from .records import SiteArrays, load_data
from .run import regression_metrics, train_run
from .splits import make_split
from .windows import WindowSet


def _window_case(ecfg: ExperimentConfig, sites, scenario: str, past_hours: float, seed: int):
    """Windows and split of a ``past_hours`` case with the future window: the baselines' test set,
    identical to that of the deep models with a future branch in the same case.
    """
    from dataclasses import replace
    b = ecfg.base
    fh = ecfg.experiment.future_hours if b.data.future_vars else 0.0
    ws = WindowSet(sites, b.data.past_vars, b.data.future_vars if fh else [], past_hours, fh)
    return ws, make_split(ws, replace(b.split, scenario=scenario), seed)


def baseline_cases(ecfg: ExperimentConfig, sites, scenario: str, past_hours: float,
                   seed: int) -> tuple[list[dict], dict]:
    """Fit (train+val) and score (test) the configured baselines on the samples of one case;
    returns the cases and the test predictions by name.
    """
    ws, split = _window_case(ecfg, sites, scenario, past_hours, seed)
    pv = ws.past_vars
    e = ecfg.experiment
    scores, preds = score_baselines(e.baselines, ws.X[:, pv.index("tsoil")],
                                    ws.X[:, pv.index("swc")] if "swc" in pv else None, ws.y,
                                    np.concatenate([split.train, split.val]), split.test, e.clm_sand, e.clm_clay)
    cases = [{"model": name, "kind": "baseline", "scenario": scenario, "past_hours": float(ws.past_hours),
              "future_hours": float(ws.future_hours), "seed": seed, **sc} for name, sc in scores.items()]
    return cases, {"ws": ws, "split": split, "preds": preds}


def ablation(res) -> dict:
    """Test metrics with true / persistence / flat future soil temperature (same samples)."""
    ws, te = res.ws, res.split.test
    D = int(round(86400 / ws.step_seconds))
    ok = te[(ws.site[te - D] == ws.site[te]) & (ws.site[te - D] >= 0)] if len(te) else te
    out = {}
    for how in ("true", "persistence", "flat"):
        p = predict(res.model, ws, ok, future=how)
        fin = np.isfinite(p)
        out[how] = regression_metrics(ws.y[ok][fin], p[fin])
    return out


def window_cases(ecfg: ExperimentConfig, sites: list[SiteArrays]) -> tuple[list[dict], dict]:
    """Every (scenario, past length, model, seed) case of window models with its baselines; returns the
    cases and, for the figures, ``(model, scenario, past_hours, seed) -> RunResult`` (``"baselines"``:
    the baselines' windows, split and predictions).
    """
    e = ecfg.experiment
    cases: list[dict] = []
    keep: dict = {}
    for scenario in e.scenarios:
        for ph in e.past_hours:
            for seed in e.seeds:
                bc, bl = baseline_cases(ecfg, sites, scenario, float(ph), seed)
                cases += bc
                keep[("baselines", scenario, float(ph), seed)] = bl
            for kind in e.models:
                for seed in e.seeds:
                    cfg = case_config(ecfg, kind, scenario, ph, seed)
                    set_determinism(seed, cfg.run.threads)
                    res = train_run(cfg, sites)
                    case = {"model": kind, "kind": "deep", "scenario": scenario,
                            "past_hours": float(ph), "future_hours": float(cfg.data.future_hours),
                            "seed": int(seed), "test": res.test_metrics,
                            "val_loss": float(res.search["chosen"]["val_loss"]),
                            "hyperparameters": {"hidden": res.search["chosen"]["hidden"],
                                                "lr": res.search["chosen"]["lr"]},
                            "search": res.search["trials"], "n_train": res.search["n_train"],
                            "n_val": res.search["n_val"], "excluded_overlap": res.split.excluded_overlap,
                            "seconds": round(res.seconds, 2), "range": prediction_range(res.test_pred),
                            "samples": res.ws.counts}
                    if res.split.note:
                        case["note"] = res.split.note
                    if kind == "kg_lstm":
                        case["q10_learned"] = res.search["model_q10"]
                    if e.ablation and res.ws.Fs:
                        case["ablation"] = ablation(res)
                    cases.append(case)
                    keep[(kind, scenario, float(ph), seed)] = res
                    print(f"{scenario:13s} {kind:8s} past {ph:5g} h seed {seed}: "
                          f"nse {res.test_metrics['nse']:.3f} cc {res.test_metrics['cc']:.3f} "
                          f"({res.seconds:.1f} s)", flush=True)
    return cases, keep


def run_experiment(ecfg: ExperimentConfig, out: Path, sites: list[SiteArrays] | None = None,
                   datasets=None) -> dict:
    """Run every case of ``ecfg``; write metrics.json, summary.md and figures to ``out``.

    Window models run `window_cases`; streaming models (every model a streaming kind) run
    `rsoil_couple.training.stream_experiment.stream_cases`. Both write the same metrics.json, summary.md
    and figures.
    """
    from . import figures as plots
    from .stream_experiment import is_streaming, stream_cases
    t0 = _time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    e = ecfg.experiment
    if is_streaming(ecfg):
        cases, keep, sites = stream_cases(ecfg, sites)
    else:
        sites = sites if sites is not None else load_data(ecfg.base.data)
        cases, keep = window_cases(ecfg, sites)
    result = {"cases": cases, "config": {"models": e.models, "scenarios": e.scenarios,
                                         "past_hours": e.past_hours, "future_hours": e.future_hours,
                                         "seeds": e.seeds, "baselines": e.baselines,
                                         "sites": [s.name for s in sites]}}
    if is_streaming(ecfg):
        result["config"]["streaming"] = True
        result["config"]["future_hours"] = 0.0
    if e.mi:
        result["mi"] = _mutual_information(ecfg, out)
    if e.figures:
        result["figures"] = plots.experiment_figures(result, keep, out)
    result["runtime_s"] = round(_time.perf_counter() - t0, 1)
    (out / "metrics.json").write_text(json.dumps(result, indent=1))
    (out / "summary.md").write_text(summary_markdown(result))
    return result


def _mutual_information(ecfg: ExperimentConfig, out: Path) -> dict:
    """Fig. 2A on the first site (rsoil_couple.mi); returns each driver's peak lag [h]."""
    from .. import data
    from ..baselines import mi
    ds = data.read_site(ecfg.base.data.sites[0].path)
    res = mi.lagged_mi(ds, progress=False)
    (out / "mi.json").write_text(json.dumps(res, indent=1))
    mi.plot_mi(res, out / "fig2a_mutual_information.png")
    return {d: {"peak_lag_hours": r["peak_lag_hours"], "peak_mi": r["peak_mi"]} for d, r in res["drivers"].items()}


# --------------------------------------------------------------------------------------------------
def best_check(rows: list[dict], scenario: str) -> dict | None:
    """Best deep row (by mean NSE) against every baseline scored on the same test samples (same
    past_hours case) on NSE and CC.
    """
    deep = [r for r in rows if r["scenario"] == scenario and r["kind"] == "deep"]
    base = [r for r in rows if r["scenario"] == scenario and r["kind"] == "baseline"]
    if not deep:
        return None
    best = max(deep, key=lambda r: r["nse"][0])
    base = [b for b in base if b["past_hours"] == best["past_hours"]]   # the same test samples
    return {"best": best, "beats_nse": all(best["nse"][0] > b["nse"][0] for b in base),
            "beats_cc": all(best["cc"][0] > b["cc"][0] for b in base),
            "best_baseline_nse": max((b["nse"][0] for b in base), default=float("nan")),
            "best_baseline_cc": max((b["cc"][0] for b in base), default=float("nan"))}


def summary_markdown(result: dict) -> str:
    """Markdown summary of an experiment: test metrics per scenario, MI peaks, ablation and figures.

    Parameters
    ----------
    result : dict
        Result of `run_experiment` (``cases``, ``config`` and optionally ``mi``, ``figures``, ``runtime_s``).

    Returns
    -------
    str
        Text of ``summary.md``: per scenario one row per model and past window with the test MSE
        [(umol m-2 s-1)^2], NSE, CC, KGE (mean and standard deviation over seeds) and the prediction range
        [umol m-2 s-1]; whether the best deep model beats every baseline; the future-branch ablation.
    """
    rows = aggregate(result["cases"])
    f = lambda ms, d=3: f"{ms[0]:.{d}f} ± {ms[1]:.{d}f}"  # noqa: E731
    lines = ["# Experiment summary", "",
             f"Sites: {', '.join(result['config']['sites'])}. Seeds: {result['config']['seeds']}. "
             f"Metrics on the test split: mean ± sample standard deviation over seeds. "
             f"Runtime {result.get('runtime_s', float('nan'))} s.", ""]
    streaming = bool(result["config"].get("streaming"))
    if streaming:
        lines += ["Streaming models (no window): `past [h]` is the truncation length of back-propagation "
                  "through time (`train.chunk_hours`); the baselines do not depend on it (one fit per "
                  "scenario and seed, listed once as `any`). Test rows: observed Rsoil after the 168 h spin-up, "
                  "the same for every model and baseline.", ""]
    if "mi" in result:
        lines += ["## Mutual information peaks (Fig. 2A)", "", "| driver | peak lag [h] | peak MI [bits] |",
                  "|---|---|---|"]
        lines += [f"| {d} | {v['peak_lag_hours']:+.1f} | {v['peak_mi']:.3f} |" for d, v in result["mi"].items()]
        lines.append("")
    for sc in result["config"]["scenarios"]:
        lines += [f"## {sc}", "", "| model | past [h] | seeds | n test | MSE | NSE | CC | KGE | pred min..max |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in sorted([r for r in rows if r["scenario"] == sc], key=lambda r: (r["kind"], r["model"], r["past_hours"])):
            ph = f"{r['past_hours']:g}"
            if streaming and r["kind"] == "baseline":      # one fit whatever the length: list it once
                if r["past_hours"] != min(result["config"]["past_hours"]):
                    continue
                ph = "any"
            lines.append(f"| {r['model']} | {ph} | {r['n_seeds']} | {r['n_test']} | {f(r['mse'], 4)} | {f(r['nse'])} | "
                         f"{f(r['cc'])} | {f(r['kge'])} | {r['min_pred']:.2f}..{r['max_pred']:.2f} |")
        chk = best_check(rows, sc)
        if chk:
            b = chk["best"]
            lines += ["", f"Best deep model: **{b['model']}**, past {b['past_hours']:g} h: NSE {f(b['nse'])}, "
                      f"CC {f(b['cc'])}; best baseline NSE {chk['best_baseline_nse']:.3f}, CC "
                      f"{chk['best_baseline_cc']:.3f} → beats every baseline on NSE: "
                      f"{'yes' if chk['beats_nse'] else 'NO'}, on CC: {'yes' if chk['beats_cc'] else 'NO'}."]
        abl = [r for r in rows if r["scenario"] == sc and "ablation" in r]
        if abl:
            lines += ["", "Future-branch ablation (mean over seeds; same test samples):", "",
                      "| model | past [h] | NSE true | NSE persistence | NSE flat | CC true | CC persistence | CC flat |",
                      "|---|---|---|---|---|---|---|---|"]
            for r in sorted(abl, key=lambda r: (r["model"], r["past_hours"])):
                a = r["ablation"]
                lines.append(f"| {r['model']} | {r['past_hours']:g} | {a['true']['nse']:.3f} | "
                             f"{a['persistence']['nse']:.3f} | {a['flat']['nse']:.3f} | {a['true']['cc']:.3f} | "
                             f"{a['persistence']['cc']:.3f} | {a['flat']['cc']:.3f} |")
        lines.append("")
    if result.get("figures"):
        lines += ["## Figures", ""] + [f"- `{p}`" for p in result["figures"]]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``rsoil-couple experiment`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command's parser, filled here with the positional ``config`` (experiment TOML) and ``--out``
        (output folder)..
    """
    parser.add_argument("config", help="experiment config (TOML), see docs/training.md")
    parser.add_argument("--out", required=True, help="output folder (metrics.json, summary.md, figures)")


def run(args: argparse.Namespace) -> int:
    """Run ``rsoil-couple experiment``: every case of the experiment config, then print the summary.

    `run_experiment` writes metrics.json, summary.md and the figures to ``args.out``; summary.md and the
    runtime [s] are printed.

    Parameters
    ----------
    args : argparse.Namespace
        Options parsed by `configure_parser`.

    Returns
    -------
    int
        Exit status 0; an invalid config raises ``ValueError`` naming the file and the key.
    """
    import tomllib
    with open(args.config, "rb") as fh:
        if "benchmark" in tomllib.load(fh):
            from .stream_bench import run_benchmark
            res = run_benchmark(args.config, Path(args.out))
            print(json.dumps(res["summary"], indent=1))
            print(f"wrote {args.out}/benchmark.json and {res['figure']} in {res['runtime_s']} s")
            return 0
    ecfg = load_experiment_config(args.config)
    res = run_experiment(ecfg, Path(args.out))
    print((Path(args.out) / "summary.md").read_text())
    print(f"wrote {args.out}/metrics.json, summary.md and {len(res.get('figures', []))} figures "
          f"in {res['runtime_s']} s")
    return 0
