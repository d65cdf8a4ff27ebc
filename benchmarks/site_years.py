"""Year by year at one site: are the test years of benchmark (d) outside what the training years showed?

Benchmark (d) trains on a site's first 70 % of rows and tests on the rest. Where a multi-year site is
missed (Haibei), this shows, from the observations alone, how the test years' growing seasons
(May-August, or ``--months``) differ from the training years': their soil temperature and SWC against
the training range, and observed Rsoil at the same drivers (rows binned by 2 degC x 0.05 m3 m-3; the
ratio test / train of the bin means, weighted by the test rows, over bins with >= 48 rows on each side).
A Q10 (``q10`` form) fitted on the training rows is drawn over the daily means, to show what a
temperature response learned there expects of warmer summers.

    PYTHONPATH=. python3 benchmarks/site_years.py --site Haibei --out DIR     # a few seconds

Writes DIR/site_years_<site>.json and DIR/site_years_<site>.png.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from rsoil_couple.baselines.q10 import fit
from rsoil_couple.data import read_site
from rsoil_couple.data.sites import site_path
from rsoil_couple.training.figures import pyplot


def site_frame(key: str, train_fraction: float) -> pd.DataFrame:
    """The site's rows (tsoil, swc, rsoil) with ``part`` = train (the first `train_fraction`) or test."""
    ds = read_site(site_path(key))
    if "column" in ds.dims:
        ds = ds.isel(column=0)
    df = ds[["tsoil", "swc", "rsoil"]].to_dataframe()[["tsoil", "swc", "rsoil"]]
    cut = int(train_fraction * len(df))
    df["part"] = np.where(np.arange(len(df)) < cut, "train", "test")
    return df


def year_table(df: pd.DataFrame, months: list[int]) -> list[dict]:
    """Per year: growing-season means, observed rows, and which part the year's rows are in."""
    g = df[df.index.month.isin(months)]
    rows = []
    for year, d in g.groupby(g.index.year):
        ok = d.dropna(subset=["rsoil"])
        rows.append({"year": int(year), "part": "/".join(sorted(set(d["part"]), reverse=True)),
                     "tsoil_mean": float(d["tsoil"].mean()), "tsoil_p95": float(d["tsoil"].quantile(0.95)),
                     "swc_mean": float(d["swc"].mean()), "rsoil_mean": float(ok["rsoil"].mean()),
                     "rsoil_rows": int(len(ok))})
    return rows


def same_driver_ratio(df: pd.DataFrame, months: list[int], min_rows: int = 48) -> dict:
    """Observed Rsoil of test rows over train rows in the same (2 degC, 0.05 m3 m-3) bin."""
    g = df[df.index.month.isin(months)].dropna()
    key = [(g["tsoil"] // 2) * 2, (g["swc"] // 0.05) * 0.05, g["part"]]
    t = g.groupby(key)["rsoil"].agg(["mean", "count"]).unstack("part")
    t = t[(t[("count", "train")] >= min_rows) & (t[("count", "test")] >= min_rows)]
    w = t[("count", "test")]
    ratio = t[("mean", "test")] / t[("mean", "train")]
    return {"bins": int(len(t)), "test_rows_in_bins": int(w.sum()),
            "test_over_train": float((ratio * w).sum() / w.sum()) if len(t) else float("nan")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", default="Haibei", help="registered site key (rsoil_couple.data.sites)")
    ap.add_argument("--train-fraction", type=float, default=0.7)
    ap.add_argument("--months", type=int, nargs="+", default=[5, 6, 7, 8], help="the growing season's months")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df = site_frame(args.site, args.train_fraction)
    season = df[df.index.month.isin(args.months)]
    tr = df[(df["part"] == "train")].dropna()
    q10 = fit("q10", tr["tsoil"].to_numpy(), None, tr["rsoil"].to_numpy(), fitted_on=f"{args.site} train rows")
    res = {"site": args.site, "train_fraction": args.train_fraction, "months": args.months,
           "test_starts": str(df.index[df["part"] == "test"][0]),
           "years": year_table(df, args.months), "same_drivers": same_driver_ratio(df, args.months),
           "season_range": {p: {v: [float(x) for x in season.loc[season["part"] == p, v].quantile([0.05, 0.5, 0.95])]
                                for v in ("tsoil", "swc")} for p in ("train", "test")},
           "training_max": {v: float(df.loc[df["part"] == "train", v].max()) for v in ("tsoil", "swc")},
           "q10_on_train_rows": {k: float(v) for k, v in q10.params.items()}}
    day = season.dropna().resample("1D").mean(numeric_only=True).dropna()
    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 4.8))
    test_years = {y["year"] for y in res["years"] if "test" in y["part"]}
    cmap = plt.get_cmap("viridis", len(res["years"]))
    for i, y in enumerate(res["years"]):
        d = day[day.index.year == y["year"]]
        ax.plot(d["tsoil"], d["rsoil"], "^" if y["year"] in test_years else "o", ms=4, color=cmap(i),
                mfc="none" if y["year"] in test_years else cmap(i), label=f"{y['year']} ({y['part']})")
    tt = np.linspace(day["tsoil"].min(), day["tsoil"].max(), 100)
    ax.plot(tt, q10.predict(tt), "k--", lw=1.2, label=f"q10 fitted on the train rows (Q10 {q10.params['b']:.2f})")
    ax.axvline(res["training_max"]["tsoil"], color="grey", lw=0.8, ls=":", label="train rows' max Tsoil")
    ax.set_xlabel("daily mean Tsoil [degC]")
    ax.set_ylabel("daily mean Rsoil [umol m-2 s-1]")
    ax.set_title(f"{args.site}, months {args.months}: daily means by year", fontsize=10)
    ax.legend(fontsize=7)
    years = [y["year"] for y in res["years"]]
    x = np.arange(len(years))
    bx.bar(x - 0.2, [y["tsoil_mean"] for y in res["years"]], 0.4, color="tab:red", label="Tsoil mean [degC]")
    b2 = bx.twinx()
    b2.bar(x + 0.2, [y["rsoil_mean"] for y in res["years"]], 0.4, color="tab:green", label="Rsoil mean")
    bx.set_xticks(x, [f"{y}\n{'test' if y in test_years else 'train'}" for y in years])
    bx.set_ylabel("Tsoil [degC]", color="tab:red")
    b2.set_ylabel("Rsoil [umol m-2 s-1]", color="tab:green")
    sd = res["same_drivers"]
    bx.set_title(f"growing-season means; observed Rsoil test/train at the same drivers: "
                 f"x{sd['test_over_train']:.2f} ({sd['bins']} bins)", fontsize=9)
    fig.tight_layout()
    png = out / f"site_years_{args.site}.png"
    fig.savefig(png, dpi=110)
    res["figure"] = png.name
    (out / f"site_years_{args.site}.json").write_text(json.dumps(res, indent=1))
    for y in res["years"]:
        print(f"{y['year']} {y['part']:10s} Tsoil {y['tsoil_mean']:6.2f} (p95 {y['tsoil_p95']:5.2f}) SWC "
              f"{y['swc_mean']:.3f} Rsoil {y['rsoil_mean']:.2f} ({y['rsoil_rows']} rows)")
    print(f"same drivers, test/train: x{sd['test_over_train']:.3f} over {sd['bins']} bins; wrote {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
