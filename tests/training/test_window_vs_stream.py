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


def test_the_window_model_of_a_gets_the_benchmarks_own_test_window(repo_root):
    """(a): the window model is scored on the streaming benchmark's window, not on a split of its own."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("wvs", repo_root / "benchmarks" / "window_vs_stream.py")
    wvs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wvs)
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
