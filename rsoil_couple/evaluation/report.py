"""Write the Markdown report of `rsoil-couple validate` from its metrics dictionary."""
from __future__ import annotations

from pathlib import Path

METRICS = ("n", "mse", "rmse", "nse", "kge", "cc", "bias")


def _fmt(v) -> str:
    if isinstance(v, int):
        return str(v)
    try:
        return f"{float(v):.3f}"
    except (TypeError, ValueError):
        return "–"


def metrics_table(series: dict, period: str = "all") -> list[str]:
    """Markdown table: one row per series, columns `METRICS`, for one period."""
    lines = ["| series | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    for name, per in series.items():
        m = per.get(period, {})
        lines.append(f"| {name} | " + " | ".join(_fmt(m.get(k)) if k in m else "–" for k in METRICS) + " |")
    return lines


def period_table(series: dict, metric: str = "nse") -> list[str]:
    """Markdown table of one metric: series x period."""
    periods = [p for p in next(iter(series.values())).keys()] if series else []
    lines = ["| series | " + " | ".join(periods) + " |", "|---" * (len(periods) + 1) + "|"]
    for name, per in series.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(per[p].get(metric)) if metric in per[p] else "–"
                                                 for p in periods) + " |")
    return lines


def write_report(path: str | Path, result: dict, figures: dict) -> Path:
    """Write `result` (the metrics.json dictionary) and links to `figures` ({column: {kind: file}})."""
    path = Path(path)
    out = ["# Soil respiration: observations vs model runs, Q10 baselines and CLM", "",
           f"- observations: `{result['obs']}`"]
    out += [f"- model run: `{r}`" for r in result["model_runs"]]
    out += [f"- CLM history: `{c}`" for c in result["clm"]]
    out += ["", "Metrics: MSE and RMSE [µmol m-2 s-1]², [µmol m-2 s-1]; NSE = 1 − Σ(sim−obs)²/Σ(obs−mean obs)²; "
            "KGE (Gupta et al. 2009); CC Pearson correlation; bias = mean(sim − obs) [µmol m-2 s-1]. "
            "'native' compares at the observations' step; 'common' on the CLM output's time axis, where each "
            "fine series is averaged over each CLM interval using only the steps with a valid observation, "
            f"and an aggregate counts only with at least {result['min_valid_fraction']:.0%} valid steps.", ""]
    for cid, r in result["columns"].items():
        out += [f"## Column {cid}", ""]
        for note in r.get("notes", []):
            out.append(f"- {note}")
        out.append("")
        for reso, rr in r["resolutions"].items():
            extra = ""
            if reso == "common":
                extra = (f", {rr['n_records_valid']} of {rr['n_records']} records valid, mean valid "
                         f"fraction {rr['mean_valid_fraction']:.2f}")
            out += [f"### {reso} step ({rr['step_seconds']:g} s{extra})", "", "Whole period:", ""]
            out += metrics_table(rr["series"])
            out += ["", "NSE per period:", ""] + period_table(rr["series"], "nse")
            out += ["", "CC per period:", ""] + period_table(rr["series"], "cc") + [""]
        for kind, f in figures.get(cid, {}).items():
            out += [f"![{kind}](figures/{f})", ""]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path
