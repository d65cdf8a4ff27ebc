"""Streaming vs window model on benchmarks (d), (b) and (a) (issue 12, item 5), side by side.

For every site of a benchmark config (default ``configs/benchmarks/d_own_site_split.toml``) this trains
the WINDOW model of the shipped config ``configs/us_hn1_kg_lstm.toml`` (kg_lstm: 24 h past of the site's
tsoil / swc / precip, 24 h of future soil temperature supplied, its search of hidden 16 / 32 on
validation loss), ``--members`` seeds averaged (one file, `train.members`), one torch thread, on the
benchmark's split of that site's record at its own step:

- ``own_split`` (d): the last 30 % as test (from the day of the row at 70 %; validation a random tenth
  of the rest, where (d) takes the tenth before the test);
- ``cross_season`` (b): the benchmark's train and test months (validation a random tenth of the train
  months). The streaming model of (b) also trained on the other sites' whole records; a window model
  cannot: its windows need one step for all sites (US-SRM 30 min, SCI-Embudo 2 h, the others 1 h);
  for the same reason (c), leave one site out over all eight, has no window counterpart;
- ``extrapolation`` (a): the benchmark's test window (the shipped window config's own split; use
  ``--members 5`` for (a)'s five seeds).

Its test NSE / CC are put beside the streaming ensemble's and the best fitted Q10's from the benchmark's
``benchmark.json`` (``--stream-json``, default docs/benchmarks/<config name>/benchmark.json).

The two models do not score the same rows: the window model only rows with a complete 48 h window (at
gappy sites far fewer: Haibei (d) 7,357 of the streaming model's 12,681). ``--common-rows`` trains the
streaming ensemble of the benchmark config here too (the same sites; ``--members`` and ``--epochs`` then
apply to it as well) and scores both models on the rows both score (matched by time; the observations
there must agree), beside each one's own rows.

    PYTHONPATH=. python3 benchmarks/window_vs_stream.py --out docs/benchmarks/window_vs_stream   # (d), ~15 min
    PYTHONPATH=. python3 benchmarks/window_vs_stream.py --bench configs/benchmarks/b_cross_season.toml --out DIR
    PYTHONPATH=. python3 benchmarks/window_vs_stream.py --bench configs/benchmarks/a_us_hn1_extrapolation.toml \
        --members 5 --out DIR
    PYTHONPATH=. python3 benchmarks/window_vs_stream.py --sites Haibei US-Wkg --common-rows --out DIR
    PYTHONPATH=. python3 benchmarks/window_vs_stream.py --common-rows --window-val last --train-fraction 0.6 --out DIR
    PYTHONPATH=. python3 benchmarks/window_vs_stream.py --sites US-Wkg --members 1 --epochs 1 --out DIR  # CI size

``--train-fraction`` runs (d) at another training share for both models (the streaming model trained here,
so it needs ``--common-rows``); ``benchmarks/window_vs_stream_summary.py`` sets several runs side by side.

Writes OUT/window_<kind>.json and OUT/window_<kind>.png (with ``--common-rows`` also the monthly means on
the common rows, ``by_month_common`` in the JSON and OUT/window_<kind>_by_month.png); prints progress per site.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rsoil_couple.config import SiteConfig, SplitSection, load_run_config
from rsoil_couple.metrics import nse
from rsoil_couple.training.experiment import ablation
from rsoil_couple.training.figures import pyplot
from rsoil_couple.training.run import train_run
from rsoil_couple.training.stream_bench import RUNNERS, load_benchmark, read_sites, vars_for
from rsoil_couple.training.stream_figures import nse_bars

ROOT = Path(__file__).resolve().parents[1]


def window_split(b, key: str, site) -> SplitSection:
    """The benchmark's split of one site for a window model (see the module docstring)."""
    if b.kind == "cross_season":
        m = b.options["months"][key]
        return SplitSection(scenario="months", train_months=m["train"], test_months=m["test"], val_fraction=0.1)
    if b.kind == "extrapolation":
        return SplitSection(scenario="extrapolation", test_start=b.options["test_start"],
                            test_end=b.options["test_end"], val_fraction=float(b.options.get("val_fraction", 0.1)))
    if b.kind != "own_split":
        raise SystemExit(f"{b.name}: kind {b.kind!r} has no window counterpart here "
                         "(own_split, cross_season, extrapolation)")
    t = np.asarray(site.time, "datetime64[D]")
    frac = float(b.options.get("train_fraction", 0.7))   # as the streaming runner's own_split
    return SplitSection(scenario="extrapolation", test_start=str(t[int(frac * len(t))]),
                        test_end=str(t[-1] + np.timedelta64(1, "D")), val_fraction=0.1)


def window_config(base, site, split: SplitSection, past_vars: list[str], members: int, epochs: int | None,
                  seed: int, kind: str):
    """The shipped window config for one site on ``split``, ``members`` seeds."""
    data = dataclasses.replace(base.data, sites=[SiteConfig(site.source, site.name, site.depth_m)],
                               past_vars=past_vars)
    train = dataclasses.replace(base.train, members=members, progress=False,
                                **({"epochs": epochs} if epochs else {}))
    run = dataclasses.replace(base.run, seed=seed, threads=1, name=f"window_{kind}_{site.name}")
    return dataclasses.replace(base, data=data, split=split, train=train, run=run)


def common_rows(res, stream_site: dict) -> dict:
    """Both models scored on the test rows both score (matched by time), beside each one's own rows."""
    wt = np.asarray(res.ws.time)[res.split.test]
    if not np.allclose(res.test_obs, np.asarray(res.ws.y)[res.split.test], equal_nan=True):
        raise RuntimeError("window test predictions are not in the order of split.test")
    both, iw, js = np.intersect1d(wt, stream_site["time"], return_indices=True)
    y = res.test_obs[iw]
    if not np.array_equal(np.asarray(y, np.float32), np.asarray(stream_site["obs"][js], np.float32)):
        raise RuntimeError("the two models' observations differ on common rows: the splits read other data")
    return {"common_n": int(len(both)), "window_nse_common": nse(y, res.test_pred[iw]),
            "stream_nse_common": nse(y, stream_site["pred"][js]), "stream_nse_rerun": float(stream_site["nse"]),
            "stream_n_rerun": int(stream_site["n"]),
            "by_month_common": by_month(both, {"obs": y, "window": res.test_pred[iw], "stream": stream_site["pred"][js],
                                               "stream_base_alone": stream_site["base"][js]})}


def by_month(time: np.ndarray, series: dict) -> list[dict]:
    """Monthly means of each series over the given rows (where in the year a model's error lies)."""
    df = pd.DataFrame({k: np.asarray(v, np.float64) for k, v in series.items()}, index=pd.DatetimeIndex(time))
    g = df.groupby([df.index.year, df.index.month])
    return [{"year": int(yr), "month": int(mo), "n": int(n), **{k: float(v) for k, v in row.items()}}
            for ((yr, mo), row), n in zip(g.mean().iterrows(), g.size())]


def month_figure(rows: dict, path: Path, title: str) -> None:
    """Per site, monthly means on the common rows: observed, window model, streaming model, its base alone."""
    names = [n for n in rows if rows[n].get("by_month_common")]
    plt = pyplot()
    fig, axes = plt.subplots(len(names), 1, figsize=(11, 2.4 * len(names)), squeeze=False)
    for ax, n in zip(axes[:, 0], names):
        t = rows[n]["by_month_common"]
        # months at their calendar place (months since the first), a month without common rows a gap
        x = np.array([12 * (m["year"] - t[0]["year"]) + m["month"] - t[0]["month"] for m in t])
        gap = np.concatenate([[False], np.diff(x) > 1])
        for key, style in (("obs", "k-o"), ("window", "C1-"), ("stream", "C0-"), ("stream_base_alone", "C0:")):
            y = np.array([m[key] for m in t], float)
            ax.plot(np.insert(x.astype(float), np.flatnonzero(gap), np.nan), np.insert(y, np.flatnonzero(gap), np.nan),
                    style, ms=3, lw=1.2, label=key.replace("_", " "))
        every = max(1, len(x) // 12)
        ax.set_xticks(x[::every], [f"{m['year']}-{m['month']:02d}" for m in t][::every], fontsize=6, rotation=45)
        ax.set_ylabel("Rsoil [umol m-2 s-1]", fontsize=7)
        ax.set_title(f"{n}: monthly means of the {rows[n]['common_n']} test rows both models score "
                     f"(window NSE {rows[n]['window_nse_common']:.3f}, streaming {rows[n]['stream_nse_common']:.3f})",
                     fontsize=8)
    axes[0, 0].legend(fontsize=7, ncol=4)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def figure(rows: dict, path: Path, title: str) -> None:
    plt = pyplot()
    names = list(rows)
    fig, ax = plt.subplots(figsize=(11, 3.6))
    bars = [("streaming kg_stream ensemble", "stream_nse"), ("window kg_lstm, true future", "window_nse"),
            ("window kg_lstm, persistence future", "window_persistence_nse"), ("best fitted Q10 form", "q10_best_nse")]
    if any("common_n" in r for r in rows.values()):
        bars += [("streaming, common rows", "stream_nse_common"), ("window, common rows", "window_nse_common")]
    nse_bars(ax, names, [(lab, [rows[n].get(key, float("nan")) for n in names]) for lab, key in bars])
    ax.set_ylabel("NSE on the test rows")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default=str(ROOT / "configs" / "benchmarks" / "d_own_site_split.toml"))
    ap.add_argument("--window-config", default=str(ROOT / "configs" / "us_hn1_kg_lstm.toml"))
    ap.add_argument("--stream-json", default=None, help="default: docs/benchmarks/<config name>/benchmark.json")
    ap.add_argument("--sites", nargs="+", default=None, help="a subset of the benchmark's sites")
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=None, help="override train.epochs (quick checks)")
    ap.add_argument("--common-rows", action="store_true",
                    help="also train the streaming ensemble here and score both models on the rows both score")
    ap.add_argument("--window-val", choices=("random", "last"), default="random",
                    help="the window model's validation: a random tenth of its training rows (default) or the "
                         "last tenth in time (the streaming model's rule)")
    ap.add_argument("--train-fraction", type=float, default=None,
                    help="(d) only: another training share for both models (needs --common-rows)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    b = load_benchmark(args.bench)
    if args.train_fraction is not None:
        if b.kind != "own_split" or not args.common_rows:
            raise SystemExit("--train-fraction applies to (d) (kind own_split) with --common-rows: the benchmark's "
                             "stored streaming run is at its own share")
        b = dataclasses.replace(b, options={**b.options, "train_fraction": args.train_fraction})
    base = load_run_config(args.window_config)
    stream_json = Path(args.stream_json or ROOT / "docs" / "benchmarks" / Path(args.bench).stem / "benchmark.json")
    # at another share the stored run does not apply: the streaming numbers are this run's (--common-rows)
    stream = {} if args.train_fraction is not None else json.loads(stream_json.read_text())["sites"]
    keys = args.sites or b.sites
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, t_all = {}, time.perf_counter()
    stream_rows = {}
    if args.common_rows:   # the benchmark's own runner, these sites only, one thread (as `experiment`)
        torch.set_num_threads(1)
        # --members / --epochs apply to both models here: trained alike
        train = dataclasses.replace(b.train, epochs=args.epochs) if args.epochs else b.train
        sb = dataclasses.replace(b, sites=list(keys), members=args.members, train=train)
        stream_rows = RUNNERS[b.kind](sb, False)["sites"]
    for key, site in zip(keys, read_sites(keys)):
        t0 = time.perf_counter()
        assumed = None
        if not np.isfinite(site.depth_m):   # US-Bi1: the file does not say; only the model file's metadata
            assumed = site.depth_m = 0.05   # needs a depth (training does not read it), nothing is exported
        # --window-val last: validation = the last tenth of the training rows in time (split.val_at_end)
        split = dataclasses.replace(window_split(b, key, site), val_at_end=args.window_val == "last")
        cfg = window_config(base, site, split, vars_for(b, site), args.members, args.epochs,
                            b.options.get("seed", 0), b.kind)
        s = stream.get(site.name) or stream_rows.get(site.name, {})
        r = rows[site.name] = {"stream_nse": s.get("nse", float("nan")), "stream_cc": s.get("cc", float("nan")),
                               "stream_n": s.get("n"), "q10_best_nse": s.get("q10", {}).get("best_nse", float("nan")),
                               "window_past_vars": cfg.data.past_vars, "depth_m_assumed_for_metadata": assumed}
        try:
            res = train_run(cfg, [site])
        except ValueError as exc:   # e.g. no complete 48 h window at a gappy site: recorded, named, not scored
            r.update(window_error=str(exc), window_nse=float("nan"), window_cc=float("nan"), window_n=0,
                     window_persistence_nse=float("nan"), window_seconds=round(time.perf_counter() - t0, 1))
            print(f"{site.name:12s} window model not trained: {exc}", flush=True)
            continue
        member = [float(m["nse"]) for m in res.meta.get("ensemble", {}).get("member_test_metrics", [])]
        learned_q10 = [float(m.q10().detach()) for m in getattr(res.model, "members", [res.model]) if hasattr(m, "q10")]
        # what a land model would give it: the future soil temperature forecast by persistence (yesterday's
        # cycle at today's level) instead of the truth, on the test rows that have the day before
        abl = ablation(res)
        r.update(window_nse=res.test_metrics["nse"], window_cc=res.test_metrics["cc"], window_n=res.test_metrics["n"],
                 window_member_nse=member, window_member_q10=learned_q10,
                 window_seconds=round(time.perf_counter() - t0, 1),
                 window_ablation={k: {"nse": float(v["nse"]), "cc": float(v["cc"]), "n": int(v["n"])} for k, v in abl.items()},
                 window_persistence_nse=float(abl["persistence"]["nse"]),
                 window_persistence_cc_loss=float(abl["true"]["cc"] - abl["persistence"]["cc"]))
        if site.name in stream_rows:
            r.update(common_rows(res, stream_rows[site.name]))
            print(f"{site.name:12s} on the {r['common_n']} rows both score: window {r['window_nse_common']:.3f}, "
                  f"streaming {r['stream_nse_common']:.3f} (streaming rerun on its own {r['stream_n_rerun']} rows: "
                  f"{r['stream_nse_rerun']:.3f})", flush=True)
        print(f"{site.name:12s} window NSE {r['window_nse']:.3f} (CC {r['window_cc']:.3f}, n {r['window_n']}; "
              f"persistence future: NSE {r['window_persistence_nse']:.3f}, CC loss {r['window_persistence_cc_loss']:.3f})"
              f"  streaming {r['stream_nse']:.3f}  best Q10 {r['q10_best_nse']:.3f}  [{r['window_seconds']:.0f} s]",
              flush=True)
    better = {k: bool(r["stream_nse"] >= r["window_nse"]) for k, r in rows.items() if "window_error" not in r}
    # against the window model as a land model would run it (persistence future, its own test rows)
    better_p = {k: bool(r["stream_nse"] >= r["window_persistence_nse"]) for k, r in rows.items()
                if "window_error" not in r}
    bench = Path(args.bench).resolve()
    result = {"benchmark": f"window_{b.kind}",
              "bench_config": str(bench.relative_to(ROOT)) if bench.is_relative_to(ROOT) else bench.name,
              "window_config": Path(args.window_config).name, "members": args.members, "epochs": args.epochs,
              "train_fraction": b.options.get("train_fraction") if b.kind == "own_split" else None,
              "window_validation": args.window_val,
              "sites": rows, "stream_matches_or_beats_window": better, "n_stream_ge_window": int(sum(better.values())),
              "stream_matches_or_beats_window_persistence": better_p,
              "n_stream_ge_window_persistence": int(sum(better_p.values())),
              "n_window_scored": len(better),
              **({"stream_matches_or_beats_window_common_rows": (bc := {
                  k: bool(r["stream_nse_common"] >= r["window_nse_common"]) for k, r in rows.items() if "common_n" in r}),
                  "n_stream_ge_window_common_rows": int(sum(bc.values()))} if stream_rows else {}),
              "runtime_s": round(time.perf_counter() - t_all, 1)}
    (out / f"window_{b.kind}.json").write_text(json.dumps(result, indent=1))
    figure(rows, out / f"window_{b.kind}.png", f"benchmark {b.name}: streaming vs window model")
    if stream_rows:
        month_figure(rows, out / f"window_{b.kind}_by_month.png", f"benchmark {b.name}: streaming vs window model")
    print(f"streaming >= window at {result['n_stream_ge_window']}/{len(better)} sites (>= the window model with a "
          f"persistence future at {result['n_stream_ge_window_persistence']}); wrote {out}/window_{b.kind}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
