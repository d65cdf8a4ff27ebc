"""Streaming vs window model over several runs of window_vs_stream.py: every site and split side by side.

Issue 12 item 5 asks the streaming model to match or beat the window model on every benchmark. One run
of ``benchmarks/window_vs_stream.py`` compares them on one split; a lead on one split may be that split's
luck. This reads the JSON of several runs (``LABEL=PATH``, e.g. benchmark (d) at training shares 0.6,
0.7 and 0.8, (b), (a)) and puts every comparison in one table and one figure (no training):

- per run and site: the two models' NSE on their own test rows and, where the run has ``--common-rows``,
  on the rows both score; which is higher;
- per run and over all runs: how often the streaming model is at least as good, and the median of the
  paired NSE differences (streaming minus window).

    PYTHONPATH=. python3 benchmarks/window_vs_stream_summary.py \\
        d0.6=docs/benchmarks/window_vs_stream_share0.6/window_own_split.json \\
        d0.7=docs/benchmarks/window_vs_stream_stop24/window_own_split.json \\
        d0.8=docs/benchmarks/window_vs_stream_share0.8/window_own_split.json --out DIR

Writes DIR/window_vs_stream_summary.json and DIR/window_vs_stream_summary.png.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rsoil_couple.training.figures import pyplot


def rows_of(label: str, run: dict) -> list[dict]:
    """One row per site the window model scored in ``run`` (a window_vs_stream.py JSON)."""
    out = []
    for site, r in run["sites"].items():
        if "window_error" in r or not np.isfinite(r["window_nse"]):
            continue
        row = {"run": label, "site": site, "stream_nse": float(r["stream_nse"]), "window_nse": float(r["window_nse"]),
               "window_member_nse": r.get("window_member_nse")}
        if "common_n" in r:
            row.update(common_n=r["common_n"], stream_nse_common=float(r["stream_nse_common"]),
                       window_nse_common=float(r["window_nse_common"]))
        out.append(row)
    return out


def tally(rows: list[dict], key: str = "") -> dict:
    """How often the streaming model is at least as good, and the median paired difference."""
    s, w = f"stream_nse{key}", f"window_nse{key}"
    rows = [r for r in rows if s in r]
    d = np.array([r[s] - r[w] for r in rows])
    return {"n": len(rows), "n_stream_ge_window": int((d >= 0).sum()),
            "median_difference": float(np.median(d)) if len(d) else None,
            "window_ahead": [f"{r['run']}: {r['site']}" for r in rows if r[s] < r[w]]}


def summarise(runs: dict[str, dict]) -> dict:
    per_run, rows = {}, []
    for label, run in runs.items():
        mine = rows_of(label, run)
        per_run[label] = {"own_rows": tally(mine), "common_rows": tally(mine, "_common")}
        rows += mine
    return {"experiment": "window_vs_stream_summary", "rows": rows, "per_run": per_run,
            "all_runs": {"own_rows": tally(rows), "common_rows": tally(rows, "_common")}}


def bounded(nse):
    """NSE / (2 - NSE) (C2M, Mathevet et al. 2006): the same order, but in (-1, 1], so that a score of -30
    and one of 0.7 fit on one axis."""
    nse = np.asarray(nse, float)
    return nse / (2.0 - nse)


def figure(result: dict, path: Path) -> None:
    """Window NSE against streaming NSE, one point per run and site, on the bounded scale `bounded` (ticks in
    NSE); above the diagonal the streaming model is better."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.6, 6.2))
    for k, label in enumerate(result["per_run"]):
        rs = [r for r in result["rows"] if r["run"] == label]
        t = result["per_run"][label]["own_rows"]
        x, y = bounded([r["window_nse"] for r in rs]), bounded([r["stream_nse"] for r in rs])
        ax.scatter(x, y, s=30, marker="osD^v<>"[k % 7], color=f"C{k}",
                   label=f"{label}: streaming >= window at {t['n_stream_ge_window']}/{t['n']}")
        for r, xi, yi in zip(rs, x, y):
            ax.annotate(r["site"], (xi, yi), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.plot([-1, 1], [-1, 1], color="grey", lw=0.8)
    ticks = np.array([-30.0, -5.0, -2.0, -1.0, -0.5, 0.0, 0.5, 0.8, 1.0])
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_ticks(bounded(ticks), [f"{v:g}" for v in ticks])
    ax.set_xlim(-1, 1.02)
    ax.set_ylim(-1, 1.02)
    ax.grid(lw=0.3)
    ax.set_xlabel("window kg_lstm, NSE on its test rows (bounded scale)")
    ax.set_ylabel("streaming kg_stream, NSE on its test rows (bounded scale)")
    a = result["all_runs"]["own_rows"]
    ax.set_title(f"streaming >= window at {a['n_stream_ge_window']} of {a['n']} (median NSE difference "
                 f"{a['median_difference']:+.3f})", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="LABEL=PATH of a window_vs_stream.py JSON")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    runs, inputs = {}, {}
    for spec in args.runs:
        label, sep, path = spec.partition("=")
        if not sep or not label:
            raise SystemExit(f"{spec!r}: give each run as LABEL=PATH")
        runs[label], inputs[label] = json.loads(Path(path).read_text()), path
    result = summarise(runs) | {"inputs": inputs}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "window_vs_stream_summary.json").write_text(json.dumps(result, indent=1))
    figure(result, out / "window_vs_stream_summary.png")
    for label, t in result["per_run"].items():
        print(f"{label}: streaming >= window at {t['own_rows']['n_stream_ge_window']}/{t['own_rows']['n']} "
              f"(median difference {t['own_rows']['median_difference']:+.3f}); window ahead at: "
              + (", ".join(a.split(": ", 1)[1] for a in t["own_rows"]["window_ahead"]) or "none"))
    a = result["all_runs"]
    print(f"all runs: {a['own_rows']['n_stream_ge_window']}/{a['own_rows']['n']} on own rows, "
          f"{a['common_rows']['n_stream_ge_window']}/{a['common_rows']['n']} on common rows; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
