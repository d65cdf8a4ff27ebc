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
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .figures import all_figures
from .sources import DEFAULT_MIN_VALID, Sources, _metrics, aggregate, load_sources


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
# command
def validate(obs: str, runs: Sequence[str], out_dir: str, *, clm_paths: Sequence[str] = (),
             q10: bool = False, fit_period: tuple[str, str] | None = None, min_valid: float = DEFAULT_MIN_VALID,
             periods: Sequence[tuple[str, str, str]] = (), clm_calendar: str | None = None,
             clm_column: int = 0, columns: Sequence[str] | None = None, figures: bool = True) -> dict:
    """Run the whole comparison and write DIR/metrics.json, DIR/report.md and DIR/figures/*.png.

    Returns the metrics dictionary written to metrics.json.
    """
    from ..evaluation.report import write_report

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
    """Add the options of ``rsoil-couple validate`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command's parser, filled here with ``--obs``, ``--model-run``, ``--clm``, ``--q10``,
        ``--fit-period``, ``--period``, ``--min-valid``, ``--clm-calendar``, ``--clm-column``, ``--column`` and ``--out``..
    """
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
    """Run ``rsoil-couple validate``: compare model runs, Q10 baselines and CLM output with observations.

    Calls `validate`, which writes metrics.json, report.md and figures/ to ``args.out``, and prints per column,
    resolution and series the number of pairs, RMSE and bias [umol m-2 s-1], NSE, KGE and CC.

    Parameters
    ----------
    args : argparse.Namespace
        Options parsed by `configure_parser`.

    Returns
    -------
    int
        Exit status 0.

    Raises
    ------
    ValueError
        If ``--fit-period`` is not START/END, or for the bad inputs `validate` refuses.
    """
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
