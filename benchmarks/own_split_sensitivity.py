"""Benchmark (d) at other splits: does a model choice hold when the training share moves? (issue 11 d)

Benchmark (d) trains on each site's first 70 % and tests on the rest, against the best Q10 form fitted
on the same first 70 %. A configuration chosen after seeing that one split's test rows may only suit
that split. This runs each given (d) config (``--benches``) at other training shares (``--fractions``,
``[benchmark] train_fraction``; everything else as configured) and reports per site and share the
ensemble's NSE, the best fitted Q10's NSE on the same rows, and per config and share how many sites it
beats the Q10 at; configs are compared on the same rows at each share.

    PYTHONPATH=. python3 benchmarks/own_split_sensitivity.py \\
        --benches configs/benchmarks/d_own_site_split_h0.toml configs/benchmarks/d_own_site_split.toml \\
        --fractions 0.6 0.8 --out docs/benchmarks/own_split_sensitivity     # ~3 min per config and share

Writes DIR/own_split_sensitivity.json and DIR/own_split_sensitivity.png.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from rsoil_couple.training.figures import pyplot
from rsoil_couple.training.stream_bench import load_benchmark, run_own_split

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benches", nargs="+", required=True, help="(d) configs (kind = \"own_split\")")
    ap.add_argument("--fractions", nargs="+", type=float, default=[0.6, 0.8])
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    runs = {}
    for path in args.benches:
        b = load_benchmark(path)
        if b.kind != "own_split":
            raise SystemExit(f"{path}: [benchmark] kind is {b.kind!r}; this compares own_split (d) configs")
        for frac in args.fractions:
            bf = dataclasses.replace(b, options={**b.options, "train_fraction": frac})
            t1 = time.time()
            res = run_own_split(bf, progress=False)["sites"]
            sites = {n: {"nse": r["nse"], "member_nse": r.get("member_nse"), "q10_best": r["q10"]["best"],
                         "q10_nse": r["q10"]["best_nse"]} for n, r in res.items()}
            beats = sum(bool(s["nse"] > s["q10_nse"]) for s in sites.values())
            runs.setdefault(b.name, {})[f"{frac:g}"] = {"sites": sites, "n_beats_q10": beats,
                                                        "runtime_s": round(time.time() - t1, 1)}
            print(f"[{time.time() - t0:7.0f} s] {b.name} train_fraction {frac:g}: beats the best fitted Q10 at "
                  f"{beats}/{len(sites)}; " + ", ".join(f"{n} {s['nse']:.3f} ({s['q10_nse']:.3f})"
                                                         for n, s in sites.items()), flush=True)
    result = {"experiment": "own_split_sensitivity", "benches": args.benches, "fractions": args.fractions,
              "runs": runs, "runtime_s": round(time.time() - t0, 1)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "own_split_sensitivity.json").write_text(json.dumps(result, indent=1))
    figure(result, out / "own_split_sensitivity.png")
    print(f"wrote {out / 'own_split_sensitivity.json'} and own_split_sensitivity.png")
    return 0


def figure(result: dict, path: Path) -> None:
    """Per share, NSE per site: each config's ensemble and the best fitted Q10 (the same rows)."""
    plt = pyplot()
    fracs = [f"{f:g}" for f in result["fractions"]]
    names = list(result["runs"])
    sites = list(next(iter(result["runs"].values()))[fracs[0]]["sites"])
    fig, axes = plt.subplots(len(fracs), 1, figsize=(11, 3.3 * len(fracs)), squeeze=False)
    width = 0.8 / (len(names) + 1)
    for ax, f in zip(axes[:, 0], fracs):
        bars = [(f"{n} ({result['runs'][n][f]['n_beats_q10']}/{len(sites)} beat the Q10)",
                 [result["runs"][n][f]["sites"][s]["nse"] for s in sites]) for n in names]
        bars.append(("best fitted Q10", [result["runs"][names[0]][f]["sites"][s]["q10_nse"] for s in sites]))
        for j, (lab, vals) in enumerate(bars):
            x = np.arange(len(sites)) + (j - len(names) / 2) * width
            ax.bar(x, np.clip(vals, -1, 1), width, label=lab)
            for xi, v in zip(x, vals):
                if v < -1:
                    ax.text(xi, -0.95, f"{v:.1f}", rotation=90, ha="center", va="bottom", fontsize=6)
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set_xticks(np.arange(len(sites)), sites)
        ax.set_ylim(-1, 1)
        ax.set_ylabel(f"NSE, train share {f}")
        ax.legend(fontsize=7, ncol=2)
    axes[0, 0].set_title("benchmark (d) at other training shares: each site's test rows after the share")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
