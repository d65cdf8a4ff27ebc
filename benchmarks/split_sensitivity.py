"""Benchmark (a) with its test start moved day by day: how much does its result depend on the split?

Benchmark (a) trains the streaming ensemble on US-Hn1's record before 2019-08-20 (validation: the last
tenth of it, about eight days) and scores 2019-08-20..09-14. Here the test start moves over a range of
days; every run is scored on the SAME rows (``--score-from`` .. the test end), so only the split moves:
the training rows, the validation days, and with them the early stopping and the network's share λ.
``--variants``: the λ rule (``train.modulation_choice``: one_se, min, none), then optionally ``+slide``
(``train.member_validation = "slide"``: member k validates on its own block of the training rows and trains
on the rest) and/or ``+refit`` (``train.refit = true``: every member trained again on training +
validation rows with the epochs and λ validation chose; with +slide the members' upper medians). Per run:
the ensemble's NSE, its members' NSE and λ, the physical base alone (λ = 0), and the rain that fell in
the (last member's) validation days.

    PYTHONPATH=. python3 benchmarks/split_sensitivity.py --out DIR     # ~3 min per variant (13 test starts)

    PYTHONPATH=. python3 benchmarks/split_sensitivity.py --merge A/split_sensitivity.json B/... --out DIR

Writes DIR/split_sensitivity.json and DIR/split_sensitivity.png (``--merge``: earlier runs side by side).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from rsoil_couple.config import SplitSection
from rsoil_couple.metrics import nse
from rsoil_couple.training.figures import pyplot
from rsoil_couple.training.stream_bench import ensemble_at, load_benchmark, read_sites, train_benchmark, vars_for
from rsoil_couple.training.stream_run import member_predictions

ROOT = Path(__file__).resolve().parents[1]


def one_run(b, site, start: str, variant: str, score_from: np.datetime64) -> dict:
    """Train benchmark ``b``'s ensemble with the test from ``start``; scores on the rows from ``score_from``."""
    split = SplitSection(scenario="extrapolation", test_start=start, test_end=b.options["test_end"],
                         val_fraction=float(b.options.get("val_fraction", 0.1)))
    rule, *how = variant.split("+")
    if not set(how) <= {"refit", "slide"}:
        raise SystemExit(f"--variants {variant}: expected RULE, optionally +slide and/or +refit (RULE: one_se, min, none)")
    bv = dataclasses.replace(b, train=dataclasses.replace(b.train, modulation_choice=rule, refit="refit" in how,
                                                          member_validation="slide" if "slide" in how else "shared"))
    members, hists, prepared, masks = train_benchmark(bv, [site], split, 0, b.members, vars_for(b, site), False)
    p, (_, val, test) = prepared[0], masks[0]
    y = p.y.numpy()
    rows = test & np.isfinite(y) & (np.asarray(p.time, "datetime64[s]") >= score_from)
    mp = member_predictions(members, hists, p)
    ls = [h["log_scales"][p.name] for h in hists]
    base = ensemble_at(members, p, 0.0, ls)
    rain = p.drivers[:, p.past_vars.index("precip")] if "precip" in p.past_vars else np.zeros(len(y))
    vt = np.asarray(p.time)[val]
    return {"test_start": start, "variant": variant, "n_scored": int(rows.sum()), "nse": nse(y[rows], mp.mean(0)[rows]),
            "member_nse": [nse(y[rows], m[rows]) for m in mp], "base_alone_nse": nse(y[rows], base[rows]),
            "member_lambda": [float(m.modulation_weight) for m in members],
            "validation": {"from": str(vt.min())[:16], "to": str(vt.max())[:16], "rows": int(val.sum()),
                           "rain_mm": float(np.nansum(rain[val]))}}


def figure(runs: list[dict], variants: list[str], path: Path, title: str) -> None:
    """NSE (ensemble, members, base alone), mean λ and validation rain against the test start, per variant."""
    plt = pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    starts = sorted({r["test_start"] for r in runs})
    x = np.arange(len(starts))
    for k, variant in enumerate(variants):
        rr = {r["test_start"]: r for r in runs if r["variant"] == variant}
        axes[0].plot(x, [rr[s]["nse"] for s in starts], "-o", color=f"C{k}", label=f"ensemble, {variant}")
        for j, s in enumerate(starts):
            axes[0].plot([j] * len(rr[s]["member_nse"]), rr[s]["member_nse"], ".", color=f"C{k}", alpha=0.4)
        axes[1].plot(x, [np.mean(rr[s]["member_lambda"]) for s in starts], "-o", color=f"C{k}", label=variant)
    base = {r["test_start"]: r["base_alone_nse"] for r in runs if r["variant"] == variants[0]}
    axes[0].plot(x, [base[s] for s in starts], "k:", label="physical base alone")
    axes[0].axhline(0.65, color="grey", lw=0.6, ls="--")
    axes[0].set_ylim(-0.5, 1)
    axes[0].set_ylabel("NSE on the same rows")
    axes[0].legend(fontsize=7)
    axes[0].set_title(title, fontsize=9)
    axes[1].set_ylabel("mean λ of the members")
    axes[1].legend(fontsize=7)
    rain = {r["test_start"]: r["validation"]["rain_mm"] for r in runs if r["variant"] == variants[0]}
    axes[2].bar(x, [rain[s] for s in starts], color="C9")
    axes[2].set_ylabel("rain in the\nvalidation days [mm]"
                       + ("\n(+slide: the last\nmember's)" if any("+slide" in v for v in variants) else ""))
    axes[2].set_xticks(x, starts, rotation=45, fontsize=7)
    axes[2].set_xlabel("test start (training and validation end the day before)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def summarize(runs: list[dict], variants: list[str]) -> dict:
    """Per variant: the ensemble's NSE over the starts (min, median, max), how many starts meet (a)'s 0.65, and
    how many meet it with every member >= 0.55 (a's second target)."""
    out = {}
    for variant in variants:
        rs = [r for r in runs if r["variant"] == variant]
        out[variant] = {"nse_min": min(r["nse"] for r in rs), "nse_median": float(np.median([r["nse"] for r in rs])),
                        "nse_max": max(r["nse"] for r in rs), "starts_meeting_0.65": sum(r["nse"] >= 0.65 for r in rs),
                        "starts_meeting_0.65_members_0.55": sum(r["nse"] >= 0.65 and min(r["member_nse"]) >= 0.55
                                                                for r in rs),
                        "lowest_member_nse": min(min(r["member_nse"]) for r in rs)}
    return out


def merge(paths: list[str], out: Path) -> int:
    """Earlier runs (same benchmark, starts and scored rows) side by side: one JSON, one figure."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    keys = ("bench_config", "site", "members", "score_from", "test_end", "starts")
    for p, d in zip(paths[1:], parts[1:]):
        bad = [k for k in keys if d[k] != parts[0][k]]
        if bad:
            raise SystemExit(f"--merge: {p} differs from {paths[0]} in {bad}: not the same experiment")
    variants = [v for d in parts for v in d["variants"]]
    if len(set(variants)) < len(variants):
        raise SystemExit(f"--merge: a variant appears twice in {paths}")
    runs = [r for d in parts for r in d["runs"]]
    return write(out, {"benchmark": "split_sensitivity", **{k: parts[0][k] for k in keys}, "variants": variants,
                       "summary": summarize(runs, variants), "runs": runs, "merged_from": [str(p) for p in paths]})


def write(out: Path, res: dict) -> int:
    """``res`` as OUT/split_sensitivity.json and its figure, the summary printed (a run and --merge alike)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "split_sensitivity.json").write_text(json.dumps(res, indent=1))
    figure(res["runs"], res["variants"], out / "split_sensitivity.png",
           f"benchmark {Path(res['bench_config']).stem} with its test start moved: {res['site']}, scored "
           f"{res['score_from']}..{res['test_end']}")
    for variant, v in res["summary"].items():
        print(f"{variant:20s} ensemble NSE {v['nse_min']:.3f}..{v['nse_max']:.3f} (median {v['nse_median']:.3f}); "
              f">= 0.65 at {v['starts_meeting_0.65']} of {len(res['starts'])} starts, with every member >= 0.55 at "
              f"{v['starts_meeting_0.65_members_0.55']}")
    print(f"wrote {out}/split_sensitivity.json")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default=str(ROOT / "configs" / "benchmarks" / "a_us_hn1_extrapolation.toml"))
    ap.add_argument("--first", default="2019-08-12", help="first test start")
    ap.add_argument("--last", default="2019-08-24", help="last test start")
    ap.add_argument("--score-from", default="2019-08-25", help="every run is scored from here to the test end")
    ap.add_argument("--variants", nargs="+", default=["one_se", "none", "one_se+refit", "none+refit"],
                    help="train.modulation_choice values (one_se, min, none), each optionally "
                         "+slide (train.member_validation) and/or +refit (train.refit)")
    ap.add_argument("--members", type=int, default=None, help="override the benchmark's members (quick checks)")
    ap.add_argument("--merge", nargs="+", metavar="JSON", default=None,
                    help="no training: put earlier runs' split_sensitivity.json side by side (one table, one figure)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.merge:
        return merge(args.merge, Path(args.out))
    torch.set_num_threads(1)
    b = load_benchmark(args.bench)
    if args.members:
        b = dataclasses.replace(b, members=args.members)
    if b.kind != "extrapolation":
        raise SystemExit(f"{args.bench}: kind {b.kind!r}; this moves the test start of an 'extrapolation' benchmark")
    score_from = np.datetime64(args.score_from)
    if np.datetime64(args.last) > score_from:
        raise SystemExit(f"--last {args.last} is after --score-from {args.score_from}: the scored rows must be "
                         "test rows in every run")
    site = read_sites(b.sites)[0]
    starts = [str(d) for d in np.arange(np.datetime64(args.first), np.datetime64(args.last) + 1)]
    out = Path(args.out)
    t0, runs = time.perf_counter(), []
    for variant in args.variants:
        for s in starts:
            r = one_run(b, site, s, variant, score_from)
            runs.append(r)
            print(f"[{time.perf_counter() - t0:6.0f} s] {variant:12s} test from {s}: NSE {r['nse']:6.3f} (base alone "
                  f"{r['base_alone_nse']:6.3f}), λ {r['member_lambda']}, validation {r['validation']['from'][:10]}.."
                  f"{r['validation']['to'][:10]} rain {r['validation']['rain_mm']:.1f} mm", flush=True)
    bench = Path(args.bench).resolve()
    return write(out, {"benchmark": "split_sensitivity",
                       "bench_config": str(bench.relative_to(ROOT)) if bench.is_relative_to(ROOT) else bench.name,
                       "site": site.name, "members": b.members, "score_from": args.score_from,
                       "test_end": b.options["test_end"], "starts": starts, "variants": args.variants,
                       "summary": summarize(runs, args.variants), "runs": runs,
                       "runtime_s": round(time.perf_counter() - t0, 1)})

if __name__ == "__main__":
    raise SystemExit(main())
