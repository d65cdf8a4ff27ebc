"""benchmarks/window_vs_stream.py (issue 12 item 5 on benchmark d), CI-sized: one site, one member, one epoch."""
from __future__ import annotations

import json

import numpy as np


def test_window_vs_stream_quick_on_d(shared_data, run_benchmark_script, tmp_path):
    p = run_benchmark_script("window_vs_stream.py", "--sites", "US-Wkg", "--members", "1", "--epochs", "1",
                             "--common-rows", "--out", tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads((tmp_path / "window_own_split.json").read_text())
    r = res["sites"]["US-Wkg"]
    # the window model ran on the last 30 % of US-Wkg (COSORE, gappy, no rain record) and gave finite scores
    assert r["window_n"] > 1000 and np.isfinite(r["window_nse"]) and np.isfinite(r["window_cc"])
    assert r["window_past_vars"] == ["tsoil", "swc"]
    assert res["stream_matches_or_beats_window"]["US-Wkg"] == (r["stream_nse"] >= r["window_nse"])
    # the window model with a persistence forecast of its future soil temperature, as a land model runs it
    assert np.isfinite(r["window_persistence_nse"]) and r["window_ablation"]["persistence"]["n"] > 1000
    # (rows whose persistence forecast is missing, a gap the day before, are not scored)
    assert r["window_ablation"]["persistence"]["n"] <= r["window_ablation"]["true"]["n"] <= r["window_n"]
    # --common-rows: the streaming model trained here too, both scored on the rows both score (the window
    # model's need complete 48 h windows: at gappy US-Wkg far fewer than the streaming model's)
    assert 1000 < r["common_n"] <= min(r["window_n"], r["stream_n_rerun"]) and r["common_n"] < r["stream_n_rerun"]
    assert np.isfinite(r["window_nse_common"]) and np.isfinite(r["stream_nse_common"])
    assert res["stream_matches_or_beats_window_common_rows"]["US-Wkg"] == (r["stream_nse_common"] >= r["window_nse_common"])
    assert (tmp_path / "window_own_split.png").stat().st_size > 5000
    # monthly means on the common rows: every common row in one month, months in time order, all four
    # series there (observed, window, streaming, its base alone); the window member's learned Q10 recorded
    months = r["by_month_common"]
    assert sum(m["n"] for m in months) == r["common_n"]
    assert [(m["year"], m["month"]) for m in months] == sorted((m["year"], m["month"]) for m in months)
    for key in ("obs", "window", "stream", "stream_base_alone"):
        assert all(np.isfinite(m[key]) and m[key] > 0 for m in months), key
    assert len(r["window_member_q10"]) == 1 and 1.0 <= r["window_member_q10"][0] <= 4.0
    assert (tmp_path / "window_own_split_by_month.png").stat().st_size > 5000


def test_the_window_model_of_a_gets_the_benchmarks_own_test_window(repo_root, benchmark_module):
    """(a): the window model is scored on the streaming benchmark's window, not on a split of its own."""
    wvs = benchmark_module("window_vs_stream.py")
    from rsoil_couple.training.stream_bench import load_benchmark

    b = load_benchmark(repo_root / "configs" / "benchmarks" / "a_us_hn1_extrapolation.toml")
    split = wvs.window_split(b, b.sites[0], None)
    assert (split.scenario, split.test_start, split.test_end) == ("extrapolation", "2019-08-20", "2019-09-14")
    c = load_benchmark(repo_root / "configs" / "benchmarks" / "c_leave_one_site_out.toml")
    try:
        wvs.window_split(c, c.sites[0], None)
    except SystemExit as exc:
        assert "no window counterpart" in str(exc)
    else:
        raise AssertionError("(c) has no window counterpart and must say so")


def test_the_window_model_of_d_tests_from_the_benchmarks_share(repo_root, benchmark_module):
    """(d) at another training share (``--train-fraction``): the window model's test starts on the day of the
    row at that share, as the streaming runner's temporal split does; other kinds refuse the option."""
    import dataclasses
    from types import SimpleNamespace

    wvs = benchmark_module("window_vs_stream.py")
    from rsoil_couple.training.stream_bench import load_benchmark

    site = SimpleNamespace(time=np.arange("2020-01-01", "2020-11-06", dtype="datetime64[h]"))   # 310 days
    d = load_benchmark(repo_root / "configs" / "benchmarks" / "d_own_site_split.toml")
    for frac, start in ((0.7, "2020-08-05"), (0.6, "2020-07-05"), (0.8, "2020-09-05")):
        b = dataclasses.replace(d, options={**d.options, "train_fraction": frac})
        split = wvs.window_split(b, "x", site)
        assert (split.test_start, split.test_end) == (start, "2020-11-06"), frac
    try:
        wvs.main(["--bench", str(repo_root / "configs" / "benchmarks" / "b_cross_season.toml"),
                  "--train-fraction", "0.6", "--common-rows", "--out", "unused"])
    except SystemExit as exc:
        assert "--train-fraction applies to (d)" in str(exc)
    else:
        raise AssertionError("--train-fraction on (b) must be refused")


def test_window_vs_stream_at_another_share(shared_data, run_benchmark_script, repo_root, tmp_path):
    """--train-fraction: both models at (d)'s share 0.6; the streaming numbers are this run's, not the stored
    run's at 0.7."""
    p = run_benchmark_script("window_vs_stream.py", "--sites", "SCI-Embudo", "--members", "1", "--epochs", "1",
                             "--common-rows", "--window-val", "last", "--train-fraction", "0.6", "--out", tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads((tmp_path / "window_own_split.json").read_text())
    r = res["sites"]["SCI-Embudo"]
    assert res["train_fraction"] == 0.6 and res["window_validation"] == "last"
    assert r["stream_nse"] == r["stream_nse_rerun"] and r["stream_n"] == r["stream_n_rerun"]
    # a test share of 40 % instead of the stored run's 30 %: more rows scored
    stored = json.loads((repo_root / "docs" / "benchmarks" / "d_own_site_split" / "benchmark.json").read_text())
    assert r["stream_n"] > stored["sites"]["SCI-Embudo"]["n"]
    assert r["window_n"] > 0 and np.isfinite(r["window_nse"]) and 0 < r["common_n"] <= r["window_n"]


def test_summary_over_runs_counts_each_site_and_split(benchmark_module, tmp_path):
    """benchmarks/window_vs_stream_summary.py: every run's sites side by side, counted per run and over all,
    unscored window sites left out, the median of the paired differences; JSON and figure written."""
    wvss = benchmark_module("window_vs_stream_summary.py")
    run1 = {"sites": {"A": {"stream_nse": 0.7, "window_nse": 0.5, "common_n": 10, "stream_nse_common": 0.6,
                            "window_nse_common": 0.65},
                      "B": {"stream_nse": -2.0, "window_nse": -1.5},
                      "C": {"stream_nse": 0.2, "window_nse": float("nan"), "window_error": "no complete window"}}}
    run2 = {"sites": {"A": {"stream_nse": 0.3, "window_nse": 0.3}}}
    paths = []
    for k, run in enumerate((run1, run2)):
        (tmp_path / f"r{k}.json").write_text(json.dumps(run))
        paths.append(f"run {k}={tmp_path / f'r{k}.json'}")
    assert wvss.main([*paths, "--out", str(tmp_path / "out")]) == 0
    res = json.loads((tmp_path / "out" / "window_vs_stream_summary.json").read_text())
    assert [(r["run"], r["site"]) for r in res["rows"]] == [("run 0", "A"), ("run 0", "B"), ("run 1", "A")]
    t = res["per_run"]["run 0"]["own_rows"]
    assert (t["n"], t["n_stream_ge_window"], t["window_ahead"]) == (2, 1, ["run 0: B"])
    assert abs(t["median_difference"] - (-0.15)) < 1e-12    # the median of +0.2 and -0.5
    assert res["per_run"]["run 0"]["common_rows"]["window_ahead"] == ["run 0: A"]
    assert res["per_run"]["run 1"]["common_rows"] == {"n": 0, "n_stream_ge_window": 0, "median_difference": None,
                                                      "window_ahead": []}
    a = res["all_runs"]["own_rows"]
    assert (a["n"], a["n_stream_ge_window"]) == (3, 2) and abs(a["median_difference"] - 0.0) < 1e-12  # ties count
    assert (tmp_path / "out" / "window_vs_stream_summary.png").stat().st_size > 5000
    assert np.allclose(wvss.bounded([-30.0, 0.0, 1.0]), [-30 / 32, 0.0, 1.0])
