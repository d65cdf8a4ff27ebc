"""Fit only a model's site scale on a short record of a new site: `rsoil-couple calibrate`.

Respiration = site scale x a response to drivers learned across sites (DESIGN.md "Site scale vs shared
response"). At a new observation site the response is kept and the scale alone is fitted:

1. the model runs over the whole record through the C++ core, as `rsoil-couple predict` does (policy
   ``supplied``, the predict block size), so the calibration period starts with a full window;
2. rows of the calibration period (``--start/--end``, or the first ``--first-fraction`` of the record)
   whose status is ACTIVE or EXTRAPOLATING and whose observed Rsoil is finite are kept;
3. the factor is the least-squares scale through the origin, ``k = sum(obs * pred) / sum(pred^2)``;
4. a new model file gets the module's ``site_scale`` buffer ``previous * k`` (float32), a new
   ``model_id``, and the metadata record ``site_scale`` with method ``"calibrated"`` (the training record
   is kept); the new file is run through the core again, and NSE / CC before and after are reported on
   the calibration rows and on the rest of the record. See docs/predict.md, "Calibrating the site scale".
"""
from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from .. import metrics
from ..models.stream_options import MODULATION_WEIGHTS
from ..pretrained import resolve
from ..variables import STATUS_NAMES
from .inputs import DEFAULT_BATCH_ROWS, check_compatible, detect_kind, model_variables

__all__ = ["DEFAULT_FIRST_FRACTION", "MIN_ROWS", "calibrate", "fit_factor", "period_mask"]

#: Fewest usable rows a calibration accepts by default (one day of 30-min steps).
MIN_ROWS = 48
#: Share of the record calibrated on when neither --start nor --end is given.
DEFAULT_FIRST_FRACTION = 0.3
#: Statuses whose value is the network's (the others are Q10 fallbacks or spin-up).
USABLE_STATUSES = (STATUS_NAMES.index("ACTIVE"), STATUS_NAMES.index("EXTRAPOLATING"))


def fit_factor(obs: np.ndarray, pred: np.ndarray, min_rows: int = MIN_ROWS, where: str = "") -> float:
    """Least-squares scale through the origin, ``k = sum(obs * pred) / sum(pred^2)``.

    Parameters
    ----------
    obs, pred : numpy.ndarray
        Observed and predicted Rsoil on the calibration rows, same shape [µmol m-2 s-1].
    min_rows : int
        Fewest rows accepted.
    where : str
        Prefix of the error messages (the data file and period).

    Returns
    -------
    float
        k [-], finite and > 0.

    Raises
    ------
    ValueError
        Fewer than ``min_rows`` rows, a prediction of 0 on every row, or a factor that is not a
        positive finite number (observations anti-correlated with the model).
    """
    o, p = np.asarray(obs, dtype=np.float64).ravel(), np.asarray(pred, dtype=np.float64).ravel()
    if o.size < min_rows:
        raise ValueError(f"{where}{o.size} usable rows (observed Rsoil finite, status ACTIVE or EXTRAPOLATING); "
                         f"at least {min_rows} are needed (--min-rows): give a longer calibration period")
    if float(np.sum(p * p)) == 0.0:
        raise ValueError(f"{where}the model predicts 0 on all {o.size} calibration rows; no scale can be fitted")
    k = metrics.origin_scale(o, p)
    if not (math.isfinite(k) and k > 0.0):
        raise ValueError(f"{where}the fitted factor is {k!r} (sum(obs*pred)/sum(pred^2) on {o.size} rows); a site "
                         "scale must be positive: are the observations Rsoil in umol m-2 s-1?")
    return k


def period_mask(time: xr.DataArray, start: str | None = None, end: str | None = None,
                first_fraction: float | None = None) -> np.ndarray:
    """The rows of the calibration period, a bool array over ``time``.

    Parameters
    ----------
    time : xarray.DataArray
        The record's time coordinate (the END of each step).
    start, end : str, optional
        ISO dates or times, inclusive (``"2019-06"`` is all of June; either may be left open).
    first_fraction : float, optional
        In (0, 1]: the first ``round(first_fraction * len(time))`` steps. Not with ``start``/``end``;
        `DEFAULT_FIRST_FRACTION` when none of the three is given.

    Returns
    -------
    numpy.ndarray
        bool ``[time]``.
    """
    n = time.sizes["time"]
    mask = np.zeros(n, dtype=bool)
    if start is not None or end is not None:
        if first_fraction is not None:
            raise ValueError("give --start/--end or --first-fraction, not both")
        sl = time.to_index().slice_indexer(start, end)
        mask[sl] = True
        return mask
    f = DEFAULT_FIRST_FRACTION if first_fraction is None else float(first_fraction)
    if not 0.0 < f <= 1.0:
        raise ValueError(f"--first-fraction: {f} is not in (0, 1]")
    mask[:int(round(f * n))] = True
    return mask


def _iso(t) -> str:
    return t.isoformat() if hasattr(t, "isoformat") else str(np.datetime_as_string(np.datetime64(t, "s")))


def _scores(obs: np.ndarray, pred: np.ndarray) -> dict:
    """n, NSE, CC, RMSE, bias (NaN -> None, for JSON) of ``pred`` against ``obs``."""
    out: dict = {"n": int(obs.size)}
    for name in ("nse", "cc", "rmse", "bias"):
        v = getattr(metrics, name)(obs, pred) if obs.size >= 2 else float("nan")
        out[name] = v if math.isfinite(v) else None
    return out


def _run(model_path: str, drivers: xr.Dataset, threads: int) -> xr.Dataset:
    """The core over the record, as `rsoil-couple predict` runs a block (policy supplied, padded calls)."""
    from ..core.emulate import emulate

    return emulate(model_path, drivers, policy="supplied", num_threads=threads, chunk_size=DEFAULT_BATCH_ROWS)


def calibrate(model: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike, *,
              start: str | None = None, end: str | None = None, first_fraction: float | None = None,
              min_rows: int = MIN_ROWS, report: str | os.PathLike | None = None, threads: int = 1,
              fit_modulation: bool = False) -> dict:
    """Fit the site scale of ``model`` on the record ``data`` and write the calibrated model to ``out``.

    Parameters
    ----------
    model : str or os.PathLike
        Model file, or a pretrained model's name; its module must have a ``site_scale`` buffer.
    data : str or os.PathLike
        Site record with drivers and observed ``rsoil`` (anything `rsoil_couple.data.read_site` reads:
        a site CSV, a canonical NetCDF), at the model's step and depth.
    out : str or os.PathLike
        The calibrated model file to write (not the input model).
    start, end, first_fraction
        The calibration period (`period_mask`); the rest of the record is reported as held out.
    min_rows : int
        Fewest usable calibration rows accepted.
    report : str or os.PathLike, optional
        JSON report to write; default ``out`` with suffix ``.calibration.json``.
    threads : int
        torch threads of the core (0: torch's default).
    fit_modulation : bool
        Also choose the share λ of the network's modulation (the module's ``modulation_weight`` buffers).

    Returns
    -------
    dict
        The report: factor, previous and new site scale, the period, n, and NSE / CC / RMSE / bias before
        and after on the calibration rows and on the rest of the record (``None`` when it has no rows).

    Raises
    ------
    ValueError
        A model without a ``site_scale`` buffer (naming the file), data without ``rsoil``, at another
        step or depth, too few usable rows, ``out`` equal to the model file; see `fit_factor`.
    """
    from ..data import read_site
    from ..modelfile.export import export_model, load_model

    model_path = os.fspath(resolve(model))
    module, meta = load_model(model_path)
    if not isinstance(getattr(module, "site_scale", None), torch.Tensor):
        raise ValueError(f"{model_path}: the module has no site_scale buffer; only a model whose output is "
                         "multiplied by a site scale (a float32 0-d buffer `site_scale`) can be calibrated")
    out = Path(out)
    if out.resolve() == Path(model_path).resolve():
        raise ValueError(f"--out {out}: is the input model file; write the calibrated model to a new file")
    data = os.fspath(data)
    if detect_kind([data]) == "clm":
        raise ValueError(f"{data}: a CLM history file has no observed Rsoil; give a site record")
    ds = read_site(data)
    if "rsoil" not in ds.data_vars:
        raise ValueError(f"{data}: no observed Rsoil (variable 'rsoil' [umol m-2 s-1]) to calibrate on")
    check_compatible(ds, meta, data, model_path)
    period = period_mask(ds["time"], start, end, first_fraction)
    if not period.any():
        raise ValueError(f"{data}: the calibration period {start or '...'} to {end or '...'} holds no time step "
                         f"of the record ({_iso(ds['time'].values[0])} to {_iso(ds['time'].values[-1])})")
    times = ds["time"].values[period]
    t0, t1 = _iso(times[0]), _iso(times[-1])
    where = f"{data} ({t0} to {t1}): "

    obs = np.asarray(ds["rsoil"].transpose("time", "column").values, dtype=np.float64)
    drivers = ds[[v for v in model_variables(meta) if v in ds.data_vars]]
    before = _run(model_path, drivers, threads)
    pred0 = np.asarray(before["rsoil"].transpose("time", "column").values)
    usable = np.isin(before["status"].transpose("time", "column").values, USABLE_STATUSES) \
        & np.isfinite(obs) & np.isfinite(pred0)
    cal, rest = usable & period[:, None], usable & ~period[:, None]
    k = fit_factor(obs[cal], pred0[cal], min_rows, where)
    lam, tried = None, None
    if fit_modulation:
        lam, k, tried = _fit_modulation(module, meta, model_path, drivers, threads, obs, cal, min_rows, where,
                                        Path(out).with_suffix(".lambda.pt"))

    previous = float(module.site_scale.item())
    new = float(np.float32(previous * k))
    if not (math.isfinite(new) and new > 0.0):
        raise ValueError(f"{where}the new site scale {previous!r} * {k!r} is not a positive float32")
    with torch.no_grad():
        module.site_scale.fill_(new)
    sites = [str(c) for c in ds["column"].values] if "column" in ds.coords else [str(ds.attrs.get("site", data))]
    new_meta = {k_: v for k_, v in meta.items() if k_ not in ("model_id", "torch_version", "rsoil_couple_version")}
    new_meta["site_scale"] = {
        "value": new, "method": "calibrated", "sites": sites,
        "calibration": {"data": Path(data).name, "start": t0, "end": t1, "n_obs": int(cal.sum()),
                        "factor": k, "previous": previous,
                        **({"modulation_weight": lam, "modulation_tried": tried} if fit_modulation else {})}}
    written = export_model(module, new_meta, out)

    after = _run(os.fspath(out), drivers, threads)
    pred1 = np.asarray(after["rsoil"].transpose("time", "column").values)
    res = {
        "model": model_path, "model_id_before": meta["model_id"], "out": os.fspath(out),
        "model_id": written["model_id"], "data": data, "sites": sites,
        "period": {"start": t0, "end": t1, "steps": int(period.sum())},
        "factor": k, "previous_site_scale": previous, "site_scale": new,
        **({"modulation_weight": lam, "modulation_tried": tried} if fit_modulation else {}),
        "calibration": {"before": _scores(obs[cal], pred0[cal]), "after": _scores(obs[cal], pred1[cal])},
        "rest": ({"before": _scores(obs[rest], pred0[rest]), "after": _scores(obs[rest], pred1[rest])}
                 if rest.any() else None),
    }
    report = Path(report) if report is not None else out.with_suffix(".calibration.json")
    report.write_text(json.dumps(res, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    res["report"] = os.fspath(report)
    return res


def _modulation_buffers(module, model_path: str) -> list:
    bufs = [b for n, b in module.named_buffers() if n.split(".")[-1] == "modulation_weight"]
    if not bufs:
        raise ValueError(f"{model_path}: --fit-modulation needs a model with modulation_weight buffers "
                         "(kg_stream files trained by this version); this file has none")
    return bufs


def _fit_modulation(module, meta: dict, model_path: str, drivers: xr.Dataset, threads: int, obs: np.ndarray,
                    cal: np.ndarray, min_rows: int, where: str, scratch: Path) -> tuple[float, float, list]:
    """Choose λ (and its factor) on the calibration rows; leaves ``module``'s buffers at the chosen λ."""
    from ..modelfile.export import export_model
    bufs = _modulation_buffers(module, model_path)
    tmp_meta = {k_: v for k_, v in meta.items() if k_ not in ("model_id", "torch_version", "rsoil_couple_version")}
    tried, pairs = [], []
    try:
        for lam in MODULATION_WEIGHTS:
            with torch.no_grad():
                for b in bufs:
                    b.fill_(lam)
            export_model(module, tmp_meta, scratch)
            pred = np.asarray(_run(os.fspath(scratch), drivers, threads)["rsoil"].transpose("time", "column").values)
            ok = cal & np.isfinite(pred)
            k = fit_factor(obs[ok], pred[ok], min_rows, where)     # (its checks: rows, a positive factor)
            pairs.append((obs[ok], pred[ok]))
            tried.append({"modulation_weight": lam, "factor": k,
                          "sse": float(np.sum((obs[ok] - k * pred[ok]) ** 2)), "n": int(ok.sum())})
    finally:
        scratch.unlink(missing_ok=True)
    best = tried[metrics.best_scaled(pairs)[0]]         # the smallest SSE; the smaller λ on ties
    with torch.no_grad():
        for b in bufs:
            b.fill_(best["modulation_weight"])
    return best["modulation_weight"], best["factor"], tried


# ----------------------------------------------------------------------------------------------
# command line
def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``rsoil-couple calibrate`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command's parser, filled here with ``--model``, ``--data``, ``--out``, ``--start``, ``--end``,
        ``--first-fraction``, ``--min-rows``, ``--report`` and ``--threads``.
    """
    parser.add_argument("--model", required=True,
                        help="model file with a site_scale buffer, or a pretrained model's name")
    parser.add_argument("--data", required=True, help="site record with drivers and observed rsoil (CSV or NetCDF)")
    parser.add_argument("--out", required=True, help="calibrated model file to write")
    parser.add_argument("--start", default=None, help="first day/time of the calibration period (ISO, inclusive)")
    parser.add_argument("--end", default=None, help="last day/time of the calibration period (ISO, inclusive)")
    parser.add_argument("--first-fraction", type=float, default=None,
                        help=f"calibrate on this first share of the record (default {DEFAULT_FIRST_FRACTION} "
                             "when neither --start nor --end is given)")
    parser.add_argument("--min-rows", type=int, default=MIN_ROWS,
                        help=f"fewest usable calibration rows accepted (default {MIN_ROWS})")
    parser.add_argument("--report", default=None, help="JSON report to write (default: OUT.calibration.json)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0: torch's default)")
    parser.add_argument("--fit-modulation", action="store_true",
                        help="also choose the share of the network's modulation (0 = the physical base alone) "
                             "on the calibration rows (kg_stream files with modulation_weight buffers)")


def run(args: argparse.Namespace) -> int:
    """Run ``rsoil-couple calibrate``: print the factor and the scores, write the model and the JSON report.

    Parameters
    ----------
    args : argparse.Namespace
        Options parsed by `configure_parser`.

    Returns
    -------
    int
        Exit status 0.
    """
    res = calibrate(args.model, args.data, args.out, start=args.start, end=args.end,
                    first_fraction=args.first_fraction, min_rows=args.min_rows, report=args.report,
                    threads=args.threads, fit_modulation=args.fit_modulation)

    def line(label: str, s: dict | None) -> str:
        if s is None:
            return f"  {label}: no rows"
        f = {k: " -> ".join("n/a" if s[w][k] is None else f"{s[w][k]:.3f}" for w in ("before", "after"))
             for k in ("nse", "cc")}
        return f"  {label} ({s['after']['n']} rows): NSE {f['nse']}, CC {f['cc']}"

    p = res["period"]
    print(f"calibrated {res['model']} on {res['data']} ({p['start']} to {p['end']}): factor {res['factor']:.6g}, "
          f"site scale {res['previous_site_scale']:.6g} -> {res['site_scale']:.6g}"
          + (f", network share {res['modulation_weight']:g}" if "modulation_weight" in res else ""))
    print(line("calibration rows", res["calibration"]))
    print(line("rest of the record", res["rest"]))
    print(f"wrote {res['out']} (model_id {res['model_id']}) and {res['report']}")
    print(json.dumps({k: res[k] for k in ("factor", "site_scale", "model_id")}))
    return 0
