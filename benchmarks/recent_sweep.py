"""kg_stream's delay line (``model.recent_hours``) side by side: (d) per site and (a) per seed, from the runs'
``benchmark.json`` (configs/benchmarks/*_recent<h>.toml, run by ``rsoil-couple experiment``).

    PYTHONPATH=. python3 benchmarks/recent_sweep.py --out docs/benchmarks/recent_sweep

Reads docs/benchmarks/{d_own_site_split,a_us_hn1_extrapolation}_{shared,recent<h>}/benchmark.json (h = 0:
the _shared form, which the _recent<h> configs vary; and ``--hours``); writes OUT/recent_sweep.json (the
numbers, and each (d) run's sites beating the best fitted Q10) and OUT/recent_sweep.png. The three lengths
were compared on the TEST splits themselves: this is a description of the sweep, not a validated choice of ``recent_hours``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rsoil_couple.training.figures import pyplot
from rsoil_couple.training.stream_figures import nse_bars

ROOT = Path(__file__).resolve().parents[1]


def _run(name: str, hours: float) -> dict:
    stem = f"{name}_shared" if hours == 0 else f"{name}_recent{hours:g}"   # the form the _recent<h> variants vary
    path = ROOT / "docs" / "benchmarks" / stem / "benchmark.json"
    return {"config": f"configs/benchmarks/{stem}.toml", **json.loads(path.read_text())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, nargs="+", default=[6.0, 12.0, 24.0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    hours = [0.0] + list(args.hours)
    d = {h: _run("d_own_site_split", h) for h in hours}
    a = {h: _run("a_us_hn1_extrapolation", h) for h in hours}
    sites = list(d[0.0]["sites"])
    result = {"recent_hours": hours, "chosen_on": "the test splits (a description, not a validated choice)",
              "d_nse": {f"{h:g}": {s: d[h]["sites"][s]["nse"] for s in sites} for h in hours},
              "d_member_nse": {f"{h:g}": {s: d[h]["sites"][s]["member_nse"] for s in sites} for h in hours},
              "d_best_q10_nse": {s: d[0.0]["sites"][s]["q10"]["best_nse"] for s in sites},
              "d_beats_best_q10": {f"{h:g}": d[h]["summary"]["n_beats"] for h in hours},
              "a_ensemble_nse": {f"{h:g}": a[h]["summary"]["ensemble_nse"] for h in hours},
              "a_member_nse": {f"{h:g}": a[h]["sites"]["US-Hn1"]["member_nse"] for h in hours},
              "configs": [r["config"] for r in (*d.values(), *a.values())]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recent_sweep.json").write_text(json.dumps(result, indent=1))
    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 3.8), gridspec_kw={"width_ratios": [4, 1]})
    series = [(f"recent_hours = {h:g} ({d[h]['summary']['n_beats']}/8 beat Q10)",
               [d[h]["sites"][s]["nse"] for s in sites]) for h in hours]
    nse_bars(ax, sites, series + [("best fitted Q10 form", [result["d_best_q10_nse"][s] for s in sites])])
    ax.set_ylabel("NSE, last 30 %")
    ax.set_title("(d) own-site split: streaming ensemble of 3 seeds")
    ax.legend(fontsize=7, ncol=3)
    for k, h in enumerate(hours):
        m = np.asarray(result["a_member_nse"][f"{h:g}"])
        bx.plot(np.full(m.size, k), m, "o", ms=4, color="grey")
        bx.plot(k, result["a_ensemble_nse"][f"{h:g}"], "D", color="C3")
    bx.axhline(0.65, color="C3", lw=0.6, ls="--")
    bx.axhline(0.55, color="grey", lw=0.6, ls="--")
    bx.set_xticks(range(len(hours)), [f"{h:g} h" for h in hours])
    bx.set_ylim(-0.2, 1.0)
    bx.set_title("(a) US-Hn1: seeds o, ensemble ◆", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "recent_sweep.png", dpi=90)
    plt.close(fig)
    print(json.dumps({k: result[k] for k in ("d_beats_best_q10", "a_ensemble_nse")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
