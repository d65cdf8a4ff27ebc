"""rsoil_couple.experiment: metrics.json contract, summary tables, the quick US-Hn1 experiment (CI)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rsoil_couple.training.experiment import aggregate, best_check, summary_markdown


def _case(model, kind, seed, nse, cc, scenario="extrapolation", ph=12.0):
    return {"model": model, "kind": kind, "scenario": scenario, "past_hours": ph, "future_hours": 24.0,
            "seed": seed, "test": {"mse": 1 - nse, "nse": nse, "cc": cc, "kge": nse, "n": 10},
            "range": {"min": 0.1, "max": 2.0, "n_negative": 0, "n_nonfinite": 0}}


def test_aggregate_mean_spread_and_best_check():
    cases = [_case("lstm", "deep", s, v, 0.7) for s, v in enumerate([0.3, 0.5, 0.7])]
    cases += [_case("q10", "baseline", s, 0.05, 0.3) for s in range(3)]
    rows = aggregate(cases)
    lstm = next(r for r in rows if r["model"] == "lstm")
    assert lstm["n_seeds"] == 3 and lstm["nse"][0] == pytest.approx(0.5)
    assert lstm["nse"][1] == pytest.approx(np.std([0.3, 0.5, 0.7], ddof=1))
    chk = best_check(rows, "extrapolation")
    assert chk["best"]["model"] == "lstm" and chk["beats_nse"] and chk["beats_cc"]
    cases.append(_case("clm", "baseline", 0, 0.6, 0.9))
    chk = best_check(aggregate(cases), "extrapolation")
    assert not chk["beats_nse"] and not chk["beats_cc"]
    md = summary_markdown({"cases": cases, "config": {"sites": ["X"], "seeds": [0, 1, 2],
                                                      "scenarios": ["extrapolation"]}})
    assert "| lstm | 12 | 3 | 10 |" in md and "beats every baseline on NSE: NO" in md


def test_experiment_cli_rejects_bad_config(tmp_path, capsys):
    from rsoil_couple.cli import main
    p = tmp_path / "e.toml"
    p.write_text('[experiment]\nmodels = ["lstm"]\nscenarios = ["interpolation"]\npast_hours = [12]\n'
                 'seeds = [0]\nbogus = 1\n[data]\nsites = [{ path = "x.csv" }]\n')
    assert main(["experiment", str(p), "--out", str(tmp_path / "o")]) == 2
    assert "experiment.bogus" in capsys.readouterr().err


def test_quick_us_hn1_experiment(shared_data, repo_root, tmp_path, monkeypatch):
    """The CI-sized Table 1: metrics.json contract, figures, >= 3 seeds, and the science bar on the
    extrapolation window (best deep model beats every Q10 / CLM-structure baseline on NSE and CC)."""
    from rsoil_couple.cli import main
    monkeypatch.chdir(repo_root)                   # configs name ../shared/data relative to the root
    out = tmp_path / "quick"
    assert main(["experiment", "configs/paper_us_hn1_quick.toml", "--out", str(out)]) == 0
    res = json.loads((out / "metrics.json").read_text())
    cases = res["cases"]
    for c in cases:
        assert {"model", "scenario", "past_hours", "future_hours", "seed", "test"} <= set(c)
        assert set(c["test"]) == {"mse", "nse", "cc", "kge", "n"} and c["test"]["n"] > 0
        assert c["scenario"] in ("interpolation", "extrapolation")
        assert all(np.isfinite(v) for v in c["test"].values())
    deep = [c for c in cases if c["kind"] == "deep"]
    for m in ("lstm", "unilstm", "mlp", "kg_lstm"):
        seeds = {c["seed"] for c in deep if c["model"] == m and c["scenario"] == "extrapolation"}
        assert len(seeds) >= 3
    assert {c["model"] for c in cases if c["kind"] == "baseline"} >= {"q10", "q10_swc", "logistic_power", "clm"}
    assert all("ablation" in c for c in deep if c["future_hours"] > 0)
    chk = best_check(aggregate(cases), "extrapolation")
    assert chk["beats_nse"] and chk["beats_cc"], chk
    for f in ("fig2a_mutual_information.png", "fig3_timeseries_extrapolation.png",
              "fig4_metrics_vs_past_length.png", "fig5_scatter_extrapolation.png",
              "fig6_rain_events_extrapolation.png", "hysteresis_loops_extrapolation.png", "summary.md"):
        assert (out / f).stat().st_size > 1000, f
    assert set(res["mi"]) >= {"tsoil", "swc", "precip"}
    assert res["runtime_s"] < 600


def test_rain_events_and_hysteresis_loops(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rsoil_couple.data.events import rain_events
    from rsoil_couple.training.figures import hysteresis_loops
    t = np.arange("2019-06-01", "2019-06-11", np.timedelta64(30, "m"), dtype="datetime64[ns]")
    p = np.zeros(len(t))
    p[100:104] = 2.0                   # 8 mm
    p[110] = 0.3                        # same event (within 48 h)
    p[300] = 1.0                        # a second, smaller one
    ev = rain_events(t, p, min_mm=0.2, separation_days=2.0, n=3)
    assert ev == [t[100], t[300]]
    ts = 25 + 5 * np.sin(np.arange(len(t)) * 2 * np.pi / 48)
    fig, ax = plt.subplots()
    hysteresis_loops(ax, t, ts, {"observed": 0.3 + 0.01 * ts}, ev[1])
    assert len(ax.lines) == 4          # before/after loop + start markers
    fig.savefig(tmp_path / "h.png")
    plt.close(fig)
