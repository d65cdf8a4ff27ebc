"""Leave one site out with the physical base ALONE, fitted by least squares (a diagnostic for issue 11 c).

Does a shared base of soil temperature and SWC transfer to a left-out site better when fitted to
convergence on its own than the base inside the trained kg_stream ensemble (``physics_only_nse`` of
``configs/benchmarks/c_leave_one_site_out*.toml``)? And does SWC as RELATIVE saturation (θ over the
site's 95th percentile of θ in its first 30 %, a driver statistic a land model has from soil texture)
transfer better than absolute θ / 0.1 m3 m-3?

The base: ``s_site · exp(E0 (1/(10 − T0) − 1/(T_b − T0))) · S/(k + S) · (1 + k)``, ``S = (θ/θ_ref)^c``,
``T_b = T24 + w (T − T24)`` (T24 the 24 h moving average, T0 = −46.02 °C): shared E0, w, c, k and one
scale per training site; residuals divided by each site's mean and the square root of its rows (every
site counts equally); scipy ``least_squares``. At the left-out site: CC uncalibrated (every row after
the first week), NSE on the last 70 % with only the scale fitted on the first 30 % (the protocol of
benchmark c), beside the benchmark's numbers (``--bench-json``).

    PYTHONPATH=. python3 benchmarks/loso_base_fit.py --out DIR      # ~20 s on the 8 shared sites

Writes DIR/loso_base_fit.json and DIR/loso_base_fit.png.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from rsoil_couple.metrics import cc, nse, origin_scale
from rsoil_couple.training.figures import pyplot
from rsoil_couple.training.stream_bench import read_sites
from rsoil_couple.training.stream_figures import nse_bars

ROOT = Path(__file__).resolve().parents[1]
KEYS = ["US-Hn1_2019", "US-Bi1", "US-Wkg", "US-SRM", "ES-Agu", "Haibei", "SMER", "SCI-Embudo"]
T0 = -46.02


def ema(x: np.ndarray, a: float) -> np.ndarray:
    """Moving average with weight ``a`` per step, holding over NaN (as the model's feature state)."""
    out = np.empty_like(x)
    m = np.nan
    for i, v in enumerate(x):
        if np.isfinite(v):
            m = v if not np.isfinite(m) else m + a * (v - m)
        out[i] = m
    return out


def site_arrays(key: str, s) -> dict:
    spd = 86400.0 / s.step_seconds
    t = s.drivers["tsoil"].astype(float)
    w = ema(s.drivers["swc"].astype(float), 1.0)           # SWC held over gaps
    y = s.target.astype(float)
    t24 = ema(t, 1.0 - np.exp(-1.0 / spd))
    n = len(y)
    idx = np.arange(n)
    ok = np.isfinite(y) & np.isfinite(t24) & np.isfinite(w) & np.isfinite(t) & (idx > 7 * spd)
    return {"name": s.name, "T": t, "T24": t24, "W": w, "y": y, "ok": ok, "first": ok & (idx < 0.3 * n),
            "rest": ok & (idx >= 0.3 * n), "ymean": float(np.nanmean(y[ok])),
            "wref": float(np.nanpercentile(s.drivers["swc"][: int(0.3 * n)], 95))}


def shape(p: np.ndarray, s: dict, relative: bool) -> np.ndarray:
    e0, w, c, k = p[0], 1.0 / (1.0 + np.exp(-p[1])), p[2], np.exp(p[3])
    tb = s["T24"] + w * (s["T"] - s["T24"])
    f = np.exp(e0 * (1.0 / (10.0 - T0) - 1.0 / (np.maximum(tb, T0 + 6.0) - T0)))
    sub = np.exp(c * np.log(np.clip(s["W"], 0.001, 1.0) / (s["wref"] if relative else 0.1)))
    return f * sub / (k + sub) * (1.0 + k)


def fit(train: list[dict], relative: bool) -> np.ndarray:
    def res(p):
        return np.concatenate([(np.exp(p[4 + j]) * shape(p, s, relative)[s["ok"]] - s["y"][s["ok"]])
                               / s["ymean"] / np.sqrt(s["ok"].sum()) for j, s in enumerate(train)])
    ns = len(train)
    return least_squares(res, np.r_[300.0, 0.0, 1.0, np.log(0.5), np.zeros(ns)],
                         bounds=(np.r_[30.0, -6.0, 0.0, -6.0, np.full(ns, -8.0)],
                                 np.r_[800.0, 6.0, 4.0, 4.0, np.full(ns, 5.0)]), max_nfev=300).x


def protocol(s: dict, pred: np.ndarray) -> dict:
    """Benchmark (c)'s scoring of a prediction at site ``s``: the scale fitted on the first 30 %, NSE on the
    last 70 %; CC uncalibrated (every row after the first week)."""
    k = origin_scale(s["y"][s["first"]], pred[s["first"]])
    return {"cc_uncalibrated": cc(s["y"][s["ok"]], pred[s["ok"]]), "nse": nse(s["y"][s["rest"]], k * pred[s["rest"]])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench-json", default=str(ROOT / "docs" / "benchmarks" / "c_leave_one_site_out" / "benchmark.json"))
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    bench = json.loads(Path(args.bench_json).read_text())["sites"]
    sites = [site_arrays(k, s) for k, s in zip(KEYS, read_sites(KEYS))]
    rows = {}
    for i, left in enumerate(sites):
        train = [s for j, s in enumerate(sites) if j != i]
        r = {}
        for form, relative in (("absolute", False), ("relative", True)):
            p = fit(train, relative)
            r[form] = {**protocol(left, shape(p, left, relative)), "e0_K": float(p[0]),
                       "anomaly_share": float(1 / (1 + np.exp(-p[1]))), "moisture_exponent": float(p[2]),
                       "half_saturation_k": float(np.exp(p[3]))}
        b = bench.get(left["name"], {})
        r.update(theta_ref_relative=left["wref"], bench_nse=b.get("nse"), bench_base_alone_nse=b.get("physics_only_nse"),
                 bench_cc_uncalibrated=b.get("cc_uncalibrated"), q10_best_nse=b.get("q10", {}).get("best_nse"))
        rows[left["name"]] = r
        a = r["absolute"]
        print(f"{left['name']:12s} base fit, absolute θ: NSE {a['nse']:7.3f} CC {a['cc_uncalibrated']:6.3f}"
              f" | relative θ: NSE {r['relative']['nse']:7.3f} CC {r['relative']['cc_uncalibrated']:6.3f}"
              f" | benchmark kg_stream {r['bench_nse']:.3f}, its base {r['bench_base_alone_nse']:.3f}"
              f" | Q10 {r['q10_best_nse']:.3f}", flush=True)
    wins = {f: sum(bool(r[f]["nse"] > r["q10_best_nse"]) for r in rows.values()) for f in ("absolute", "relative")}
    result = {"benchmark": "loso_base_fit", "bench_json": Path(args.bench_json).name, "sites": rows,
              "n_beats_calibrated_q10": wins, "runtime_s": round(time.perf_counter() - t_all, 1)}
    (out / "loso_base_fit.json").write_text(json.dumps(result, indent=1))
    plt = pyplot()
    names = list(rows)
    fig, ax = plt.subplots(figsize=(11, 3.6))
    nse_bars(ax, names, [("kg_stream ensemble (benchmark c)", [rows[n]["bench_nse"] for n in names]),
                         ("its base alone", [rows[n]["bench_base_alone_nse"] for n in names]),
                         ("base fitted alone, absolute θ", [rows[n]["absolute"]["nse"] for n in names]),
                         ("base fitted alone, relative θ", [rows[n]["relative"]["nse"] for n in names]),
                         ("Q10 family, fitted at the site", [rows[n]["q10_best_nse"] for n in names])])
    ax.set_ylabel("NSE, left-out site's last 70 %")
    ax.set_title("leave one site out: the physical base fitted alone vs the trained ensemble")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(out / "loso_base_fit.png", dpi=90)
    plt.close(fig)
    print(f"beats the site-calibrated Q10 family: absolute θ {wins['absolute']}/8, relative θ {wins['relative']}/8; "
          f"wrote {out}/loso_base_fit.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
