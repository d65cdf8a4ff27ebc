"""Figures of the experiments (the paper's Figs. 3-6) and diel hysteresis loops; PNG via matplotlib (Agg).

Generic helpers (`hysteresis_loops`, `rain_events`) take plain arrays so other modules (validate) can
reuse them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.events import rain_events

COLORS = {"lstm": "C3", "unilstm": "C0", "mlp": "C2", "kg_lstm": "C4", "q10": "0.6", "q10_swc": "0.45",
          "logistic_power": "0.3", "clm": "C1",
          # the streaming analogues (configs/paper_us_hn1_stream.toml)
          "kg_stream_lstm": "C4", "kg_stream_dense": "C2", "kg_stream_tsoil": "C0"}


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (figures are written to files, never shown)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def hysteresis_loops(ax, time, tsoil, series: dict, event: np.datetime64) -> None:
    """Diel loops Rsoil vs Tsoil for the day before ``event`` (dashed) and the day after (solid).

    series : label -> Rsoil array [µmol m-2 s-1] on ``time``.
    """
    t = np.asarray(time, "datetime64[ns]")
    day = np.timedelta64(1, "D")
    for k, (label, r) in enumerate(series.items()):
        for (a, b), ls, when in (((event - day, event), "--", "day before"), ((event + day, event + 2 * day), "-", "day after")):
            m = (t >= a) & (t < b) & np.isfinite(r) & np.isfinite(tsoil)
            if m.sum() < 3:
                continue
            ax.plot(tsoil[m], r[m], ls, color=COLORS.get(label, f"C{k}" if label != "observed" else "k"),
                    label=f"{label}, {when}", lw=1.2)
            ax.plot(tsoil[m][0], r[m][0], "o", ms=3, color=ax.lines[-1].get_color())
    ax.set_xlabel("Tsoil [°C]")
    ax.set_ylabel("Rsoil [µmol m$^{-2}$ s$^{-1}$]")


def _series(res):
    te = res.split.test
    return res.ws.time[te], res.ws.y[te], res.test_pred


def _broken(t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Insert NaN wherever consecutive times are more than one step apart, so lines do not bridge
    gaps in a non-contiguous test set.
    """
    t = np.asarray(t, "datetime64[ns]")
    y = np.asarray(y, np.float64)
    if len(t) < 3:
        return t, y
    d = np.diff(t)
    cut = np.flatnonzero(d > np.min(d)) + 1
    return np.insert(t, cut, t[cut - 1] + np.min(d)), np.insert(y, cut, np.nan)


def experiment_figures(result: dict, keep: dict, out: Path) -> list[str]:
    """All figures of one experiment; returns the file names written."""
    plt = pyplot()
    out = Path(out)
    written: list[str] = []
    cfg = result["config"]
    rows = aggregate(result["cases"])
    seed0, longest = cfg["seeds"][0], float(max(cfg["past_hours"]))
    # Fig. 4: metrics vs past length
    fig, axes = plt.subplots(2, len(cfg["scenarios"]), figsize=(5 * len(cfg["scenarios"]), 6), squeeze=False,
                             constrained_layout=True)
    for j, sc in enumerate(cfg["scenarios"]):
        for i, met in enumerate(("nse", "cc")):
            ax = axes[i, j]
            for m in cfg["models"]:
                rr = sorted([r for r in rows if r["scenario"] == sc and r["model"] == m], key=lambda r: r["past_hours"])
                if rr:
                    ax.errorbar([r["past_hours"] for r in rr], [r[met][0] for r in rr], [r[met][1] for r in rr],
                                marker="o", capsize=3, color=COLORS.get(m), label=m)
            for b in sorted({r["model"] for r in rows if r["kind"] == "baseline" and not r["model"].startswith("paper_")}):
                rr = sorted([r for r in rows if r["scenario"] == sc and r["model"] == b], key=lambda r: r["past_hours"])
                if rr:
                    ax.plot([r["past_hours"] for r in rr], [r[met][0] for r in rr], ":", color=COLORS.get(b, "0.5"),
                            lw=1.2, label=b)
            ax.set_xscale("log")
            ax.set_xticks(cfg["past_hours"], [f"{h:g}" for h in cfg["past_hours"]])
            ax.minorticks_off()
            ax.set_xlabel("truncation length of BPTT [h]" if cfg.get("streaming") else "past window [h]")
            ax.set_ylabel(met.upper())
            ax.set_title(f"{sc}")
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.savefig(out / "fig4_metrics_vs_past_length.png", dpi=110)
    plt.close(fig)
    written.append("fig4_metrics_vs_past_length.png")
    for sc in cfg["scenarios"]:
        deep = {m: keep.get((m, sc, longest, seed0)) for m in cfg["models"]}
        deep = {m: r for m, r in deep.items() if r is not None}
        bl = keep.get(("baselines", sc, longest, seed0))
        if not deep:
            continue
        # Fig. 3: observed vs predicted time series on the test split
        fig, ax = plt.subplots(figsize=(11, 4), constrained_layout=True)
        ref = next(iter(deep.values()))
        t, y, _ = _series(ref)
        contiguous = sc != "interpolation"
        sty = "-" if contiguous else "."
        ax.plot(*_broken(t, y), "k" + sty, lw=1.4, ms=2, label="observed")
        for m, r in deep.items():
            tt, _, p = _series(r)
            ax.plot(*_broken(tt, p), sty, color=COLORS.get(m), lw=0.9, ms=2, label=f"{m} (seed {seed0})")
        if bl is not None:
            for name in ("q10_swc", "clm"):
                if name in bl["preds"]:
                    ax.plot(*_broken(bl["ws"].time[bl["split"].test], bl["preds"][name]), sty, color=COLORS[name],
                            lw=0.9, ms=2, label=name)
        ax.set_ylabel("Rsoil [µmol m$^{-2}$ s$^{-1}$]")
        ax.set_title(f"Test split, {sc}, {'truncation' if cfg.get('streaming') else 'past'} {longest:g} h")
        ax.legend(fontsize=7, ncol=4)
        name = f"fig3_timeseries_{sc}.png"
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(name)
        # Fig. 5: scatter obs vs pred per model
        panels = list(deep.items()) + ([(n, None) for n in ("q10_swc", "clm", "q10") if bl and n in bl["preds"]])
        fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.3), squeeze=False, constrained_layout=True)
        for ax, (m, r) in zip(axes[0], panels):
            if r is not None:
                _, yy, p = _series(r)
            else:
                yy, p = bl["ws"].y[bl["split"].test], bl["preds"][m]
            ax.plot(yy, p, ".", ms=2, color=COLORS.get(m, "C0"))
            hi = float(np.nanmax(np.concatenate([yy, p])))
            ax.plot([0, hi], [0, hi], "k--", lw=0.8)
            from .run import regression_metrics
            mm = regression_metrics(yy, p)
            ax.set_title(f"{m}: NSE {mm['nse']:.2f}, CC {mm['cc']:.2f}", fontsize=9)
            ax.set_xlabel("observed")
            ax.set_ylabel("predicted")
        name = f"fig5_scatter_{sc}.png"
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(name)
        # Fig. 6 and hysteresis loops around rain events in the test period (contiguous scenarios)
        if not contiguous or "precip" not in ref.ws.past_vars:
            continue
        rain = ref.ws.X[:, ref.ws.past_vars.index("precip")]
        tsoil = ref.ws.X[:, ref.ws.past_vars.index("tsoil")]
        te = ref.split.test
        lo, hi = te.min(), te.max()
        events = rain_events(ref.ws.time[lo:hi + 1], rain[lo:hi + 1], min_mm=0.2, separation_days=2.0, n=3)
        if not events:
            continue
        full = {}
        for m, r in deep.items():
            arr = np.full(len(ref.ws.y), np.nan)
            arr[r.split.test] = r.test_pred
            full[m] = arr
        fig, axes = plt.subplots(1, len(events), figsize=(4.5 * len(events), 3.5), squeeze=False, constrained_layout=True)
        for ax, ev in zip(axes[0], events):
            m = (ref.ws.time >= ev - np.timedelta64(2, "D")) & (ref.ws.time <= ev + np.timedelta64(4, "D"))
            ax.plot(ref.ws.time[m], ref.ws.y[m], "k", lw=1.4, label="observed")
            for k, arr in full.items():
                ax.plot(ref.ws.time[m], arr[m], color=COLORS.get(k), lw=0.9, label=k)
            ax2 = ax.twinx()
            ax2.bar(ref.ws.time[m], rain[m], width=0.02, color="C9", alpha=0.6)
            ax2.set_ylabel("rain [mm / step]")
            ax.set_title(f"rain event {str(ev)[:16]}", fontsize=9)
            ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        axes[0, 0].set_ylabel("Rsoil [µmol m$^{-2}$ s$^{-1}$]")
        axes[0, 0].legend(fontsize=7)
        name = f"fig6_rain_events_{sc}.png"
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(name)
        fig, ax = plt.subplots(figsize=(5.5, 4.5), constrained_layout=True)
        best = max(deep, key=lambda k: deep[k].test_metrics["nse"])
        obs = ref.ws.y.astype(np.float64)
        hysteresis_loops(ax, ref.ws.time, tsoil, {"observed": obs, best: full[best]}, events[0])
        ax.set_title(f"Diel hysteresis before/after rain {str(events[0])[:10]}", fontsize=9)
        ax.legend(fontsize=7)
        name = f"hysteresis_loops_{sc}.png"
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(name)
    return written


def aggregate(cases: list[dict]) -> list[dict]:
    """Mean and spread (sample std) of test metrics over seeds per (model, scenario, past_hours)."""
    groups: dict = {}
    for c in cases:
        groups.setdefault((c["scenario"], c["model"], c["past_hours"], c["kind"]), []).append(c)
    rows = []
    for (sc, m, ph, kind), cs in groups.items():
        row = {"scenario": sc, "model": m, "past_hours": ph, "kind": kind, "n_seeds": len(cs),
               "n_test": cs[0]["test"]["n"]}
        for k in ("mse", "nse", "cc", "kge"):
            v = np.array([c["test"][k] for c in cs])
            row[k] = (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0)
        row["min_pred"] = min(c["range"]["min"] for c in cs)
        row["max_pred"] = max(c["range"]["max"] for c in cs)
        if "ablation" in cs[0]:
            row["ablation"] = {h: {k: float(np.mean([c["ablation"][h][k] for c in cs])) for k in ("nse", "cc", "mse")}
                               for h in ("true", "persistence", "flat")}
        rows.append(row)
    return rows
