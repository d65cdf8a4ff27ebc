"""Compare observed soil respiration with model runs, Q10 baselines and CLM SR/HR on a common time axis.

`rsoil-couple validate --obs OBS --model-run RUN.nc [--clm HIST.nc ...] [--q10] --out DIR`:
- observations: anything `rsoil_couple.data.read_site` reads (must hold `rsoil`);
- model runs: `rsoil-couple predict` outputs (`rsoil` on time, column), matched to the observed
  columns by column id (or paired when both have one column);
- Q10 baselines (`--q10`): the three forms of the paper's eq. 2 and the CLM-structure baseline,
  fitted by least squares on the observations (in-sample unless `--fit-period` is given);
- CLM `SR`/`HR` [gC m-2 s-1 -> µmol m-2 s-1] from history files.
Everything is compared at the observations' step ('native') and, when CLM output is coarser, on
the CLM time axis ('common'): each fine series is averaged over each CLM interval (t - dt, t] using
only the fine steps where the observation is valid (so every source covers the same moments), and
an aggregate counts only when at least `min_valid` of its steps are valid; the valid fraction is
kept. Metrics (MSE, RMSE, NSE, KGE, CC, bias) per column and per period go to DIR/metrics.json,
figures to DIR/figures, and a Markdown report to DIR/report.md.
"""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from . import clm
from .metrics import all_metrics

DEFAULT_MIN_VALID = 0.75


# ----------------------------------------------------------------------------------------------
# time helpers
def to_datetime64(values, where: str = "time") -> np.ndarray:
    """datetime64[ns] from datetime64 or cftime values (noleap/360_day dates by their fields)."""
    v = np.asarray(values)
    if np.issubdtype(v.dtype, np.datetime64):
        return v.astype("datetime64[ns]")
    try:
        return np.array([np.datetime64(f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:"
                                       f"{d.minute:02d}:{d.second:02d}", "ns") for d in v])
    except (AttributeError, ValueError) as exc:
        raise ValueError(f"{where}: cannot place these dates on the observations' calendar ({exc})") from None


def aggregate(fine_time: np.ndarray, values: np.ndarray, step_s: float, end_time: np.ndarray,
              interval_s: np.ndarray, min_valid: float = DEFAULT_MIN_VALID) -> tuple[np.ndarray, np.ndarray]:
    """Mean of a fine series over coarse intervals (end - interval, end], with its valid fraction.

    fine_time : END stamps of the fine series (datetime64). values : [n_fine] (NaN = invalid).
    step_s : fine step [s]. end_time, interval_s : END stamps and lengths [s] of the coarse records.
    Returns (mean, valid_fraction), each [n_coarse]; mean is NaN where the fraction < min_valid.
    """
    ft = fine_time.astype("datetime64[ns]").astype("int64")
    et = end_time.astype("datetime64[ns]").astype("int64")
    start = et - (np.asarray(interval_s) * 1e9).astype("int64")
    k = np.searchsorted(et, ft, side="left")
    inside = (k < len(et))
    inside[inside] &= ft[inside] > start[k[inside]]
    v = np.asarray(values, dtype="float64")
    ok = inside & np.isfinite(v)
    sums = np.bincount(k[ok], weights=v[ok], minlength=len(et))
    counts = np.bincount(k[ok], minlength=len(et)).astype("float64")
    frac = counts / np.maximum(np.asarray(interval_s) / step_s, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where((frac >= min_valid) & (counts > 0), sums / counts, np.nan)
    return mean, frac


# ----------------------------------------------------------------------------------------------
# inputs
@dataclass
class Sources:
    """Everything compared, for one observed column, at the observations' step."""

    column: str
    time: np.ndarray  # datetime64, END stamps
    step_s: float
    obs: np.ndarray
    drivers: dict  # tsoil [degC], swc [m3 m-3], precip [mm per step]
    series: dict = field(default_factory=dict)  # name -> values at obs times
    clm: dict = field(default_factory=dict)  # name -> (time, values, interval_s)
    notes: list = field(default_factory=list)


def _run_name(path: str, ds: xr.Dataset, taken: set) -> str:
    # "lstm (persistence)": the model kind and, for rsoil-couple predict output, the policy
    name = str(ds.attrs.get("model_kind", Path(path).stem))
    if "policy" in ds.attrs:
        name = f"{name} ({ds.attrs['policy']})"
    base, i = name, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    return name


def _match_column(ids: Sequence, want: str, n_obs: int, where: str) -> int:
    ids = [str(c) for c in ids]
    if want in ids:
        return ids.index(want)
    if len(ids) == 1 and n_obs == 1:
        return 0
    raise ValueError(f"{where}: variable 'column' has no column {want!r} (has {ids[:10]}) and the "
                     "files cannot be paired one-to-one")


def load_sources(obs_path: str, runs: Sequence[str] = (), clm_paths: Sequence[str] = (), *,
                 q10: bool = False, fit_period: tuple[str, str] | None = None,
                 clm_calendar: str | None = None, clm_column: int = 0,
                 columns: Sequence[str] | None = None) -> list[Sources]:
    """Read observations, model runs, baselines and CLM fluxes; one `Sources` per observed column."""
    from .data import read_site

    obs = read_site(obs_path)
    if "rsoil" not in obs.data_vars:
        raise ValueError(f"{obs_path}: missing variable 'rsoil' (observed soil respiration, "
                         "umol m-2 s-1): nothing to validate against")
    step = float(obs.attrs["step_seconds"])
    ids = [str(c) for c in obs["column"].values]
    if columns:
        missing = [c for c in columns if c not in ids]
        if missing:
            raise ValueError(f"{obs_path}: variable 'column' has no column(s) {missing}")
        ids = list(columns)
    t = obs["time"].values.astype("datetime64[ns]")
    run_ds = []
    for r in runs:
        if not Path(r).is_file():
            raise FileNotFoundError(f"{r}: model run not found")
        ds = clm.open_netcdf(r)
        if "rsoil" not in ds.variables:
            raise ValueError(f"{r}: missing variable 'rsoil' (a `rsoil-couple predict` output)")
        if _norm(ds["rsoil"].attrs.get("units", "")) not in ("umolm-2s-1",):
            raise ValueError(f"{r}: variable 'rsoil' has units {ds['rsoil'].attrs.get('units')!r}; "
                             "expected 'umol m-2 s-1'")
        run_ds.append((r, ds))
    flux = None
    if clm_paths:
        flux = clm.read_fluxes(list(clm_paths), calendar=clm_calendar).load()
        if not 0 <= clm_column < flux.sizes["column"]:
            raise ValueError(f"{clm_paths[0]}: variable 'column': no column {clm_column}")

    out = []
    for cid in ids:
        o = obs.sel(column=cid)
        src = Sources(cid, t, step, o["rsoil"].values.astype("float64"),
                      {v: o[v].values.astype("float64") for v in ("tsoil", "swc", "precip") if v in o})
        taken: set = set()
        for r, ds in run_ds:
            j = _match_column(ds["column"].values, cid, len(obs["column"]), r)
            rt = to_datetime64(ds["time"].values, f"{r}: variable 'time'")
            s = pd.Series(ds["rsoil"].isel(column=j).values.astype("float64"), index=rt)
            s = s[~s.index.duplicated()]
            vals = s.reindex(pd.DatetimeIndex(t)).values
            if not np.isfinite(vals).any():
                raise ValueError(f"{r}: variable 'time' does not overlap the observations in {obs_path}")
            name = _run_name(r, ds, taken)
            taken.add(name)
            src.series[name] = vals
            if "status" in ds.variables:
                st = pd.Series(ds["status"].isel(column=j).values, index=rt)
                st = st[~st.index.duplicated()].reindex(pd.DatetimeIndex(t))
                ok = np.isfinite(src.obs) & st.notna().values
                frac_net = float(np.mean(st.values[ok] <= 1)) if ok.any() else float("nan")
                src.notes.append(f"{name}: the network ran (status active/extrapolating) on "
                                 f"{100 * frac_net:.1f} % of the observed steps; the rest are Q10 fallback")
        if q10:
            _add_baselines(src, fit_period)
        if flux is not None:
            ft = to_datetime64(flux["time"].values, f"{clm_paths[0]}: variable 'time'")
            for v in (k.lower() for k in clm.FLUX_VARS):
                if v in flux:
                    src.clm[f"clm_{v}"] = (ft, flux[v].isel(column=clm_column).values.astype("float64"),
                                           flux["interval_s"].values.astype("float64"))
        out.append(src)
    return out


def _norm(u: str) -> str:
    return str(u).replace(" ", "").replace("µ", "u").lower()


def _add_baselines(src: Sources, fit_period: tuple[str, str] | None) -> None:
    """Fit the Q10 family and the CLM-structure baseline on the observations (or `fit_period`)."""
    from . import q10

    ts, sw = src.drivers["tsoil"], src.drivers.get("swc")
    fit_mask = np.ones(len(src.time), bool)
    if fit_period:
        a, b = (np.datetime64(pd.Timestamp(x), "ns") for x in fit_period)
        fit_mask = (src.time > a) & (src.time <= b)
        src.notes.append(f"Q10 baselines fitted on {fit_period[0]} .. {fit_period[1]} "
                         f"({int(fit_mask.sum())} steps)")
    else:
        src.notes.append("Q10 baselines fitted on the observations they are evaluated on (in-sample, "
                         "as the paper fits them on train+validation): an upper bound of their skill")
    r = np.where(fit_mask, src.obs, np.nan)
    for name, f in q10.fit_family(ts, sw, r).items():
        src.series[name] = np.asarray(f.predict(ts, sw), dtype="float64")
        if isinstance(f, q10.ClmFit):
            src.notes.append(f"{name}: k = {f.k:.4f} umol m-2 s-1 (sand {f.sand} %, clay {f.clay} %)")
        else:
            src.notes.append(f"{name}: params {json.dumps({k: round(float(v), 4) for k, v in f.params.items()})} "
                             f"(swc in {f.swc_units})")


# ----------------------------------------------------------------------------------------------
# metrics
def periods_of(time: np.ndarray, extra: Sequence[tuple[str, str, str]] = ()) -> dict[str, np.ndarray]:
    """Boolean masks: 'all', each calendar month 'YYYY-MM', and user periods (name, start, end]."""
    idx = pd.DatetimeIndex(time - np.timedelta64(1, "ns"))  # a step ending at 00:00 belongs to the day before
    out = {"all": np.ones(len(time), bool)}
    months = idx.strftime("%Y-%m")
    for m in sorted(set(months)):
        if (months == m).sum() >= 2:  # not the lone step ending at 00:00 on the 1st
            out[m] = np.asarray(months == m)
    for name, a, b in extra:
        out[name] = (time > np.datetime64(pd.Timestamp(a), "ns")) & (time <= np.datetime64(pd.Timestamp(b), "ns"))
    return out


def _metrics(obs: np.ndarray, sim: np.ndarray) -> dict:
    ok = np.isfinite(obs) & np.isfinite(sim)
    if ok.sum() < 2:
        return {"n": int(ok.sum())}
    return all_metrics(obs[ok], sim[ok])


def compare(src: Sources, *, min_valid: float = DEFAULT_MIN_VALID,
            periods: Sequence[tuple[str, str, str]] = ()) -> dict:
    """Metrics per resolution, series and period for one column; also the aligned data for figures."""
    res: dict = {"column": src.column, "resolutions": {}}
    native = {k: v for k, v in src.series.items()}
    res["resolutions"]["native"] = {
        "step_seconds": src.step_s,
        "series": {k: {p: _metrics(src.obs[m], v[m]) for p, m in periods_of(src.time, periods).items()}
                   for k, v in native.items()},
        "n_obs_valid": int(np.isfinite(src.obs).sum()),
    }
    if src.clm:
        # the common axis: the (first) CLM series' own records
        ct, _, ci = next(iter(src.clm.values()))
        keep = (ct > src.time[0]) & (ct - (ci * 1e9).astype("timedelta64[ns]") < src.time[-1])
        ct, ci = ct[keep], ci[keep]
        obs_ok = np.isfinite(src.obs)
        o_agg, frac = aggregate(src.time, src.obs, src.step_s, ct, ci, min_valid)
        series = {}
        for k, v in native.items():  # the same fine steps as the observations
            series[k] = aggregate(src.time, np.where(obs_ok, v, np.nan), src.step_s, ct, ci, min_valid)[0]
        for k, (t, v, _) in src.clm.items():
            series[k] = v[keep]
        common_step = float(np.median(ci))
        res["resolutions"]["common"] = {
            "step_seconds": common_step, "min_valid_fraction": min_valid,
            "n_records": int(len(ct)), "n_records_valid": int(np.isfinite(o_agg).sum()),
            "mean_valid_fraction": float(np.mean(frac)) if len(frac) else float("nan"),
            "series": {k: {p: _metrics(o_agg[m], v[m]) for p, m in periods_of(ct, periods).items()}
                       for k, v in series.items()},
        }
        res["_common"] = (ct, o_agg, series, frac)
    return res


# ----------------------------------------------------------------------------------------------
# figures
def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _safe(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in s)


def rain_events(time: np.ndarray, precip: np.ndarray, step_s: float, *, min_mm: float = 2.0,
                separation_days: float = 5.0, n: int = 4) -> list[np.datetime64]:
    """Start times of the largest rain events: daily totals >= min_mm [mm], at least
    `separation_days` apart, largest first (at most n), returned in time order."""
    s = pd.Series(np.nan_to_num(precip), index=pd.DatetimeIndex(time - np.timedelta64(1, "ns")))
    daily = s.resample("1D").sum()
    daily = daily[daily >= min_mm].sort_values(ascending=False)
    picked: list[pd.Timestamp] = []
    for day in daily.index:
        if all(abs((day - p) / pd.Timedelta(days=1)) >= separation_days for p in picked):
            picked.append(day)
        if len(picked) == n:
            break
    out = []
    for day in sorted(picked):  # the END stamp of the first rainy step of that day
        wet = s[day:day + pd.Timedelta(days=1)]
        out.append(wet[wet > 0].index[0].to_datetime64().astype("datetime64[ns]") + np.timedelta64(1, "ns"))
    return out


def all_figures(src: Sources, common, fig_dir: Path) -> dict[str, str]:
    """Scatter, time series with rain, rain-event zooms (Fig. 6) and diel hysteresis loops.

    Returns {figure kind: file name inside fig_dir}.
    """
    plt = _plt()
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
        events = rain_events(src.time, src.drivers["precip"], src.step_s)
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
            ts = np.bincount(bins, weights=src.drivers["tsoil"][ok], minlength=24) / np.maximum(np.bincount(bins, minlength=24), 1)
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


# ----------------------------------------------------------------------------------------------
# command
def validate(obs: str, runs: Sequence[str], out_dir: str, *, clm_paths: Sequence[str] = (),
             q10: bool = False, fit_period: tuple[str, str] | None = None, min_valid: float = DEFAULT_MIN_VALID,
             periods: Sequence[tuple[str, str, str]] = (), clm_calendar: str | None = None,
             clm_column: int = 0, columns: Sequence[str] | None = None, figures: bool = True) -> dict:
    """Run the whole comparison and write DIR/metrics.json, DIR/report.md and DIR/figures/*.png.

    Returns the metrics dictionary written to metrics.json.
    """
    from .report import write_report

    if not runs and not q10 and not clm_paths:
        raise ValueError("nothing to compare: give --model-run, --q10 and/or --clm")
    if not 0.0 < min_valid <= 1.0:
        raise ValueError(f"--min-valid {min_valid}: expected a fraction in (0, 1]")
    srcs = load_sources(obs, runs, clm_paths, q10=q10, fit_period=fit_period, clm_calendar=clm_calendar,
                        clm_column=clm_column, columns=columns)
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    result = {"obs": os.fspath(obs), "model_runs": list(map(os.fspath, runs)),
              "clm": list(map(os.fspath, clm_paths)), "min_valid_fraction": min_valid, "columns": {}}
    figs: dict = {}
    for src in srcs:
        r = compare(src, min_valid=min_valid, periods=periods)
        common = r.pop("_common", None)
        r["notes"] = src.notes
        result["columns"][src.column] = r
        if figures:
            figs[src.column] = all_figures(src, common, out / "figures")
    with open(out / "metrics.json", "w") as fh:  # strict JSON: undefined metrics are null
        json.dump(_finite_or_none(result), fh, indent=1, default=_json_default, allow_nan=False)
    write_report(out / "report.md", result, figs)
    return result


def _finite_or_none(x):
    if isinstance(x, dict):
        return {k: _finite_or_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_none(v) for v in x]
    if isinstance(x, (float, np.floating)) and not np.isfinite(x):
        return None
    return x


def _json_default(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    raise TypeError(f"not JSON serialisable: {type(x)}")


def _period(s: str) -> tuple[str, str, str]:
    try:
        name, rng = s.split("=", 1)
        a, b = rng.split("/", 1)
        return name, a, b
    except ValueError:
        raise argparse.ArgumentTypeError(f"--period {s!r}: expected NAME=START/END") from None


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--obs", required=True, help="observations (site CSV or canonical NetCDF with rsoil)")
    parser.add_argument("--model-run", nargs="*", default=[], help="rsoil-couple predict output(s)")
    parser.add_argument("--clm", nargs="*", default=[], help="CLM history file(s) with SR and/or HR")
    parser.add_argument("--q10", action="store_true", help="add the Q10 family and the CLM-structure baseline")
    parser.add_argument("--fit-period", default=None, help="fit the baselines on START/END only (default: all)")
    parser.add_argument("--period", action="append", type=_period, default=[],
                        help="extra period NAME=START/END for the metrics (repeatable)")
    parser.add_argument("--min-valid", type=float, default=DEFAULT_MIN_VALID,
                        help="minimum fraction of valid fine steps per aggregate (default 0.75)")
    parser.add_argument("--clm-calendar", default=None, help="override the calendar CLM files declare")
    parser.add_argument("--clm-column", type=int, default=0, help="CLM column compared with the site")
    parser.add_argument("--column", action="append", default=None, help="observed column id(s) (default all)")
    parser.add_argument("--out", required=True, help="output folder")


def run(args: argparse.Namespace) -> int:
    fit = tuple(args.fit_period.split("/", 1)) if args.fit_period else None
    if fit is not None and len(fit) != 2:
        raise ValueError(f"--fit-period {args.fit_period!r}: expected START/END")
    res = validate(args.obs, args.model_run, args.out, clm_paths=args.clm, q10=args.q10, fit_period=fit,
                   min_valid=args.min_valid, periods=args.period, clm_calendar=args.clm_calendar,
                   clm_column=args.clm_column, columns=args.column)
    for cid, r in res["columns"].items():
        for reso, rr in r["resolutions"].items():
            print(f"{cid} [{reso}, step {rr['step_seconds']:g} s]")
            for name, per in rr["series"].items():
                m = per["all"]
                if "nse" in m:
                    print(f"  {name:16s} n={m['n']:6d} RMSE={m['rmse']:.3f} NSE={m['nse']:.3f} "
                          f"KGE={m['kge']:.3f} CC={m['cc']:.3f} bias={m['bias']:+.3f}")
                else:
                    print(f"  {name:16s} n={m['n']} (too few valid pairs)")
    print(f"wrote {Path(args.out) / 'metrics.json'}, {Path(args.out) / 'report.md'}, {Path(args.out) / 'figures'}")
    return 0
