"""Validation figures: time series, scatter, diel cycles and rain-pulse windows of every source against the observations."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..data.events import rain_events
from ..training.figures import pyplot
from .sources import Sources, _metrics


# ----------------------------------------------------------------------------------------------
# figures
def _safe(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in s)


def all_figures(src: Sources, common, fig_dir: Path) -> dict[str, str]:
    """Scatter, time series with rain, rain-event zooms (Fig. 6) and diel hysteresis loops.

    Returns {figure kind: file name inside fig_dir}.
    """
    plt = pyplot()
    tag = _safe(src.column)
    names = list(src.series)
    colors = {k: f"C{i + 1}" for i, k in enumerate(names + list(src.clm))}
    files = {}
    t = pd.DatetimeIndex(src.time)

    # observed vs modelled scatter, one panel per series
    if names:
        ncol = min(3, len(names))
        nrow = int(np.ceil(len(names) / ncol))
        fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 4 * nrow), squeeze=False)
        hi = np.nanmax([np.nanmax(src.obs)] + [np.nanmax(v) for v in src.series.values()])
        for ax, k in zip(axes.ravel(), names):
            ok = np.isfinite(src.obs) & np.isfinite(src.series[k])
            ax.scatter(src.obs[ok], src.series[k][ok], s=3, alpha=0.4, color=colors[k])
            ax.plot([0, hi], [0, hi], "k--", lw=0.8)
            m = _metrics(src.obs, src.series[k])
            ax.set_title(f"{k}  NSE {m.get('nse', np.nan):.2f}  CC {m.get('cc', np.nan):.2f}", fontsize=9)
            ax.set_xlabel("observed Rsoil [µmol m$^{-2}$ s$^{-1}$]")
            ax.set_ylabel("modelled Rsoil [µmol m$^{-2}$ s$^{-1}$]")
        for ax in axes.ravel()[len(names):]:
            ax.set_visible(False)
        fig.tight_layout()
        files["scatter"] = f"{tag}_scatter.png"
        fig.savefig(fig_dir / files["scatter"], dpi=110)
        plt.close(fig)

    # time series with rain (and the common CLM axis when present)
    nrows = 3 if common is not None else 2
    fig, axes = plt.subplots(nrows, 1, figsize=(12, 2.2 + 2.4 * nrows), sharex=True,
                             gridspec_kw={"height_ratios": [1] + [3] * (nrows - 1)})
    if "precip" in src.drivers:
        axes[0].bar(t, src.drivers["precip"], width=src.step_s / 86400.0, color="tab:blue")
    axes[0].invert_yaxis()
    axes[0].set_ylabel(f"rain [mm / {src.step_s / 60:g} min]")
    axes[1].plot(t, src.obs, "k.", ms=1.5, label="observed")
    for k in names:
        axes[1].plot(t, src.series[k], lw=0.7, color=colors[k], label=k)
    axes[1].set_ylabel("Rsoil [µmol m$^{-2}$ s$^{-1}$]")
    axes[1].legend(fontsize=7, ncol=4, loc="upper right")
    if common is not None:
        ct, o_agg, series, frac = common
        axes[2].plot(pd.DatetimeIndex(ct), o_agg, "ko-", ms=2.5, lw=0.8, label="observed (aggregated)")
        for k, v in series.items():
            axes[2].plot(pd.DatetimeIndex(ct), v, ".-", ms=2.5, lw=0.8, color=colors[k], label=k)
        axes[2].set_ylabel("Rsoil, CLM step")
        axes[2].legend(fontsize=7, ncol=4, loc="upper right")
    fig.suptitle(f"{src.column}: soil respiration and rain")
    fig.tight_layout()
    files["timeseries"] = f"{tag}_timeseries.png"
    fig.savefig(fig_dir / files["timeseries"], dpi=110)
    plt.close(fig)

    # rain-event zooms (the paper's Fig. 6): 1 day before to 4 days after each large event
    if "precip" in src.drivers:
        events = rain_events(src.time, src.drivers["precip"])
        if events:
            fig, axes = plt.subplots(2, len(events), figsize=(4 * len(events), 5.5), squeeze=False,
                                     gridspec_kw={"height_ratios": [1, 3]}, sharex="col")
            for j, e in enumerate(events):
                w = (src.time > e - np.timedelta64(1, "D")) & (src.time <= e + np.timedelta64(4, "D"))
                axes[0, j].bar(t[w], src.drivers["precip"][w], width=src.step_s / 86400.0, color="tab:blue")
                axes[0, j].invert_yaxis()
                axes[0, j].set_title(str(pd.Timestamp(e).date()), fontsize=9)
                axes[1, j].plot(t[w], src.obs[w], "k.", ms=3, label="observed")
                for k in names:
                    axes[1, j].plot(t[w], src.series[k][w], lw=1, color=colors[k], label=k)
                axes[1, j].tick_params(axis="x", labelrotation=45, labelsize=7)
            axes[0, 0].set_ylabel("rain [mm/step]")
            axes[1, 0].set_ylabel("Rsoil [µmol m$^{-2}$ s$^{-1}$]")
            axes[1, 0].legend(fontsize=7)
            fig.tight_layout()
            files["rain_events"] = f"{tag}_rain_events.png"
            fig.savefig(fig_dir / files["rain_events"], dpi=110)
            plt.close(fig)

    # diel hysteresis loops: mean diel cycle of Rsoil against Tsoil, dry days vs 3 days after rain
    if "tsoil" in src.drivers:
        hour = ((t - pd.Timedelta(seconds=src.step_s / 2)).hour.values
                + (t - pd.Timedelta(seconds=src.step_s / 2)).minute.values / 60.0)
        p = pd.Series(np.nan_to_num(src.drivers.get("precip", np.zeros(len(t)))), index=t)
        after_rain = (p.rolling(f"{3 * 86400}s").sum() >= 2.0).values
        groups = {"dry days": ~after_rain, "within 3 days after >= 2 mm rain": after_rain}
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
        for ax, (gname, gmask) in zip(axes, groups.items()):
            ok = gmask & np.isfinite(src.obs)
            if ok.sum() < 48:
                ax.set_title(f"{gname}: too few observed steps")
                continue
            bins = np.floor(hour[ok]).astype(int)
            ts = (np.bincount(bins, weights=src.drivers["tsoil"][ok], minlength=24)
                  / np.maximum(np.bincount(bins, minlength=24), 1))
            for k, v, style in [("observed", src.obs, "k")] + [(k, src.series[k], colors[k]) for k in names]:
                vv = v[ok]
                good = np.isfinite(vv)
                r = np.bincount(bins[good], weights=vv[good], minlength=24) / np.maximum(np.bincount(bins[good], minlength=24), 1)
                x, y = np.append(ts, ts[0]), np.append(r, r[0])
                ax.plot(x, y, "-", color=style, lw=1.5 if k == "observed" else 1, label=k)
                ax.plot(x[0], y[0], "o", color=style, ms=4)  # local midnight
                for h in (6, 12, 18):  # direction of travel
                    ax.annotate("", xy=(x[h + 1], y[h + 1]), xytext=(x[h], y[h]),
                                arrowprops=dict(arrowstyle="->", color=style, lw=1))
            ax.set_title(f"{gname} ({int(ok.sum())} steps)", fontsize=9)
            ax.set_xlabel("Tsoil [°C], mean by hour of day")
            ax.set_ylabel("Rsoil [µmol m$^{-2}$ s$^{-1}$]")
        axes[0].legend(fontsize=7)
        fig.suptitle(f"{src.column}: diel hysteresis (dot = 00:00, arrows at 06, 12, 18 h)")
        fig.tight_layout()
        files["hysteresis"] = f"{tag}_hysteresis.png"
        fig.savefig(fig_dir / files["hysteresis"], dpi=110)
        plt.close(fig)
    return files
