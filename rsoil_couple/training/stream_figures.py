"""Figures of the streaming benchmarks (rsoil_couple.training.stream_bench): one PNG per benchmark."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .figures import pyplot


def nse_bars(ax, names: list[str], series: list[tuple[str, list[float]]]) -> None:
    """Grouped NSE bars per site on ``ax`` (y from -1 to 1; a value below -1 is written at the axis)."""
    x = np.arange(len(names))
    w = 0.8 / len(series)
    for k, (lab, v) in enumerate(series):
        xs = x - 0.4 + w * (k + 0.5)
        ax.bar(xs, v, w, label=lab)
        for xi, vi in zip(xs, v):
            if np.isfinite(vi) and vi < -1:
                ax.text(xi, -0.95, f"{vi:.1f}", ha="center", va="bottom", fontsize=6, rotation=90)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xticks(x, names)
    ax.set_ylim(-1, 1)


def benchmark_figure(kind: str, res: dict, path: Path) -> str:
    """Observed vs predicted test series per site (and, for ``loso`` / ``own_split``, NSE against Q10 bars)."""
    plt = pyplot()
    sites = res["sites"]
    names = list(sites)
    bars = kind in ("loso", "own_split", "cross_season")
    nrow = len(names) + (1 if bars else 0)
    fig, axes = plt.subplots(nrow, 1, figsize=(11, 2.3 * nrow), squeeze=False)
    axes = axes[:, 0]
    if bars:
        ax = axes[0]
        x = np.arange(len(names))
        label = "kg_stream" + (" (site scale calibrated)" if kind == "loso" else "")
        series = [(label, [sites[n]["nse"] for n in names]),
                  ("best fitted Q10 form", [sites[n]["q10"]["best_nse"] for n in names])]
        if kind == "cross_season":   # what a Q10 of the drivers reaches with the test season's kind seen
            series += [("Q10 family fitted on the other test seasons",
                        [sites[n]["ceiling"]["other_seasons"]["best_nse"] for n in names]),
                       ("Q10 family fitted on the test rows themselves",
                        [sites[n]["ceiling"]["fit_on_test"]["best_nse"] for n in names])]
            ax.axhline(0.3, color="k", ls="--", lw=0.8, label="target")
        nse_bars(ax, names, series)
        if kind == "loso":
            ax.plot(x, [sites[n]["cc_uncalibrated"] for n in names], "k^", label="CC uncalibrated")
        ax.set_ylabel("NSE on test rows")
        ax.legend(fontsize=7, ncol=3)
        axes = axes[1:]
    for ax, n in zip(axes, names):
        r = sites[n]
        t = r["time"]
        ax.plot(t, r["obs"], ".", ms=1.5, color="k", label="observed")
        if "base" in r:
            ax.plot(t, r["base"], ".", ms=1.0, color="C0", alpha=0.5,
                    label=f"its physical base alone (NSE {r['physics_only_nse']:.2f})")
        ax.plot(t, r["pred"], ".", ms=1.5, color="C3", label=f"kg_stream (NSE {r['nse']:.2f})")
        ax.set_ylabel(f"{n}\nRsoil [µmol m-2 s-1]", fontsize=8)
        ax.legend(fontsize=7, loc="upper right", markerscale=5)
    fig.suptitle(f"streaming benchmark: {kind}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path.name
