"""Lagged mutual information between soil respiration and its drivers (Jiang et al. 2022, Fig. 2A).

For each driver D and lag tau (whole steps from -`max_lag_hours` to +`max_lag_hours`):

    MI(tau) = I(Rsoil_t ; D_{t+tau}) = H(Rsoil) + H(D) - H(Rsoil, D)      [bits]

estimated by fixed binning: `bins` equal-width bins per dimension spanning each variable's whole
valid range in the record (the same edges at every lag), plug-in probabilities, log base 2.
SIGN CONVENTION: positive tau pairs Rsoil now with the driver tau hours LATER (the future driver).
This is the convention of the paper's Fig. 2A and findings ("Tsoil's information peaks at a
positive lag of about +2 h: the FUTURE soil temperature tells more"), even though PAPER.md writes
the formula as D_{t-tau}. Precipitation: only steps with non-zero rain enter (zeros would swamp
the rare events), so its MI rests on few pairs; ``mi_shuffled`` (the MI of the same pairs with
the driver shuffled, mean of `n_shuffle` shuffles) shows how much of any value is small-sample
bias.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import xarray as xr
from tqdm import tqdm

__all__ = ["lagged_mi", "mutual_information", "plot_mi", "configure_parser", "run",
           "DEFAULT_DRIVERS"]

#: Drivers considered when the Dataset has them (tair/rg are optional reader outputs).
DEFAULT_DRIVERS = ("tsoil", "swc", "precip", "rg", "ppfd", "tair")
_LABELS = {"tsoil": "Tsoil", "swc": "SWC", "precip": "Precip (non-zero)", "rg": "Rg",
           "ppfd": "PAR", "tair": "Tair"}


def _edges(x: np.ndarray, bins: int) -> np.ndarray:
    lo, hi = float(np.min(x)), float(np.max(x))
    if hi <= lo:
        hi = lo + 1.0
    return np.linspace(lo, hi, bins + 1)


def _codes(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index 0..bins-1 (the maximum falls into the last bin)."""
    return np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)


def _entropy(counts: np.ndarray) -> float:
    c = counts[counts > 0].astype(np.float64)
    p = c / c.sum()
    return float(-np.sum(p * np.log2(p)))


def _mi_codes(a: np.ndarray, b: np.ndarray, bins: int) -> float:
    joint = np.bincount(a * bins + b, minlength=bins * bins)
    return (_entropy(np.bincount(a, minlength=bins)) + _entropy(np.bincount(b, minlength=bins))
            - _entropy(joint))


def mutual_information(x, y, bins: int = 50, edges_x=None, edges_y=None) -> float:
    """I(X; Y) [bits] by fixed binning; NaN pairs dropped.

    Parameters
    ----------
    x, y : array
        Paired samples (same length).
    bins : int
        Bins per dimension.
    edges_x, edges_y : array
        Bin edges (default: `bins` equal bins over each sample's range).
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y have different lengths {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        raise ValueError("fewer than 2 valid pairs")
    x, y = x[ok], y[ok]
    ex = _edges(x, bins) if edges_x is None else np.asarray(edges_x)
    ey = _edges(y, bins) if edges_y is None else np.asarray(edges_y)
    return _mi_codes(_codes(x, ex), _codes(y, ey), bins)


def lagged_mi(ds: xr.Dataset, drivers=None, max_lag_hours: float = 24.0, bins: int = 50,
              n_shuffle: int = 5, seed: int = 0, progress: bool = True) -> dict:
    """Lagged MI between ``rsoil`` and each driver of a canonical Dataset.

    Parameters
    ----------
    ds : Dataset
        Canonical (rsoil required); several columns are pooled (lags within columns).
    drivers : list of str
        Default: those of `DEFAULT_DRIVERS` present in `ds`.
    max_lag_hours : float
        Largest |lag|. [h]
    bins : int
        Bins per dimension (the paper: 50).
    n_shuffle : int
        Shuffles for the ``mi_shuffled`` bias reference (0: skip).
    seed : int
        Seed of the shuffles.

    Returns
    -------
    dict  ``{"lags_hours": [...], "convention": ..., "drivers": {name: {"mi": [...], "n": [...],
    "peak_lag_hours", "peak_mi", "mi_shuffled"}}, ...}``; MI in bits.
    """
    if "rsoil" not in ds.data_vars:
        raise ValueError(f"{ds.attrs.get('source', 'dataset')}: no 'rsoil' variable; mutual "
                         "information needs observed soil respiration")
    if drivers is None:
        drivers = [d for d in DEFAULT_DRIVERS if d in ds.data_vars]
    for d in drivers:
        if d not in ds.data_vars:
            raise ValueError(f"{ds.attrs.get('source', 'dataset')}: driver '{d}' not in the "
                             f"dataset (variables: {sorted(ds.data_vars)})")
    step_s = int(ds.attrs["step_seconds"])
    max_k = int(round(max_lag_hours * 3600.0 / step_s))
    lags = np.arange(-max_k, max_k + 1)
    r = ds["rsoil"].transpose("time", "column").values
    rv = r[np.isfinite(r)]
    er = _edges(rv, bins)
    rng = np.random.default_rng(seed)
    out = {"site": str(ds.attrs.get("site", "")), "source": str(ds.attrs.get("source", "")),
           "synthetic": str(ds.attrs.get("synthetic", "no")), "step_seconds": step_s,
           "bins": bins, "units": "bits",
           "convention": "MI(tau) = I(Rsoil_t; D_{t+tau}); positive tau = driver in the FUTURE "
                         "of Rsoil (paper Fig. 2A)",
           "lags_hours": [float(k * step_s / 3600.0) for k in lags], "drivers": {}}
    nt = r.shape[0]
    total = len(drivers) * len(lags)
    bar = tqdm(total=total, desc="lagged MI", unit="lag", disable=not progress, leave=False)
    for name in drivers:
        d = ds[name].transpose("time", "column").values
        valid_d = np.isfinite(d) & ((d != 0) if name == "precip" else True)
        if not valid_d.any():
            raise ValueError(f"{out['source']}: driver '{name}' has no valid "
                             f"{'non-zero ' if name == 'precip' else ''}values")
        ed = _edges(d[valid_d], bins)
        mi, ns, shuffled = [], [], []
        for k in lags:
            # pair r[t] with d[t + k]
            if k >= 0:
                rr, dd, vv = r[:nt - k], d[k:], valid_d[k:]
            else:
                rr, dd, vv = r[-k:], d[:nt + k], valid_d[:nt + k]
            ok = np.isfinite(rr) & vv
            n = int(ok.sum())
            ns.append(n)
            if n < 2:
                mi.append(float("nan"))
            else:
                a, b = _codes(rr[ok], er), _codes(dd[ok], ed)
                mi.append(_mi_codes(a, b, bins))
                if k == 0 and n_shuffle:
                    shuffled = [_mi_codes(a, rng.permutation(b), bins) for _ in range(n_shuffle)]
            bar.update(1)
        mi_arr = np.asarray(mi)
        i = int(np.nanargmax(mi_arr))
        out["drivers"][name] = {
            "mi": [float(v) for v in mi_arr], "n": ns,
            "peak_lag_hours": float(lags[i] * step_s / 3600.0), "peak_mi": float(mi_arr[i]),
            "mi_at_zero": float(mi_arr[max_k]),
            "mi_shuffled": float(np.mean(shuffled)) if shuffled else float("nan"),
            "n_values": int(valid_d.sum()),
        }
    bar.close()
    return out


def plot_mi(result: dict, path: str | Path) -> Path:
    """Figure like the paper's Fig. 2A: MI against lag for each driver, peaks marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.2), constrained_layout=True)
    lags = np.asarray(result["lags_hours"])
    for name, r in result["drivers"].items():
        (line,) = ax.plot(lags, r["mi"], label=f"{_LABELS.get(name, name)} "
                          f"(peak {r['peak_lag_hours']:+.1f} h)")
        ax.plot([r["peak_lag_hours"]], [r["peak_mi"]], "o", color=line.get_color())
        if np.isfinite(r["mi_shuffled"]):
            ax.axhline(r["mi_shuffled"], color=line.get_color(), lw=0.8, ls=":")
    ax.axvline(0.0, color="0.5", lw=0.8, ls="--")
    ax.set_xlabel("lag τ [h]  (MI of Rsoil(t) with driver(t+τ); τ > 0: future driver)")
    ax.set_ylabel(f"mutual information [{result['units']}]\n(dotted: same pairs shuffled)")
    title = f"{result['site']}: lagged mutual information with Rsoil ({result['bins']} bins)"
    if result.get("synthetic") == "yes":
        title = "SYNTHETIC DATA — " + title
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="best")
    path = Path(path)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``rsoil-couple mi`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command's parser, filled here with ``--data`` (site file or registered site name), ``--out``
        (output folder), ``--bins`` (bins per dimension), ``--max-lag-hours`` (largest lag [h]) and ``--drivers``..
    """
    parser.add_argument("--data", required=True,
                        help="observation file (any format rsoil_couple.data.read_site reads) or "
                             "a registered site name, e.g. US-Hn1_2019")
    parser.add_argument("--out", required=True, help="output folder (mi.json, mi.png)")
    parser.add_argument("--bins", type=int, default=50, help="bins per dimension (default 50)")
    parser.add_argument("--max-lag-hours", type=float, default=24.0,
                        help="largest |lag| in hours (default 24)")
    parser.add_argument("--drivers", nargs="+", default=None,
                        help=f"drivers (default: those of {' '.join(DEFAULT_DRIVERS)} present)")


def run(args: argparse.Namespace) -> int:
    """Run ``rsoil-couple mi``: lagged mutual information between Rsoil and each driver (Fig. 2A).

    Reads the site, computes `lagged_mi`, writes ``mi.json`` and ``mi.png`` to ``args.out`` and prints each
    driver's peak MI [bits] with its lag [h], the MI at lag 0 and the shuffled reference.

    Parameters
    ----------
    args : argparse.Namespace
        Options parsed by `configure_parser`.

    Returns
    -------
    int
        Exit status 0; unreadable or invalid input raises (``ValueError``, ``OSError``).
    """
    from ..data import read_site

    ds = read_site(args.data)
    result = lagged_mi(ds, drivers=args.drivers, max_lag_hours=args.max_lag_hours,
                       bins=args.bins)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "mi.json").write_text(json.dumps(result, indent=1) + "\n")
    plot_mi(result, out / "mi.png")
    for name, r in result["drivers"].items():
        print(f"{name:7s} peak MI {r['peak_mi']:.3f} bits at {r['peak_lag_hours']:+.1f} h "
              f"(at 0 h: {r['mi_at_zero']:.3f}; shuffled: {r['mi_shuffled']:.3f}; "
              f"{r['n_values']} values)")
    print(f"wrote {out / 'mi.json'} and {out / 'mi.png'}")
    return 0
