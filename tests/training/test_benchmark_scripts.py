"""CI-sized runs of benchmarks/own_split_sensitivity.py and benchmarks/season_pool.py on the shared data."""
from __future__ import annotations

import json

import numpy as np


def test_own_split_sensitivity_quick(shared_data, run_benchmark_script, tmp_path):
    bench = tmp_path / "d_quick.toml"
    bench.write_text("""[benchmark]
kind = "own_split"
sites = ["US-Hn1_2019"]
past_vars = ["tsoil", "swc", "precip"]
members = 1
[model]
kind = "kg_stream"
hidden = 0
[train]
epochs = 2
""")
    p = run_benchmark_script("own_split_sensitivity.py", "--benches", bench, "--fractions", 0.6, 0.8, "--out", tmp_path / "o")
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads((tmp_path / "o" / "own_split_sensitivity.json").read_text())
    runs = res["runs"]["d_quick"]
    assert set(runs) == {"0.6", "0.8"}
    a, b = runs["0.6"]["sites"]["US-Hn1"], runs["0.8"]["sites"]["US-Hn1"]
    assert np.isfinite([a["nse"], b["nse"], a["q10_nse"], b["q10_nse"]]).all()
    assert a["q10_nse"] != b["q10_nse"]                       # the share moved the split: another Q10 fit, other rows
    assert runs["0.6"]["n_beats_q10"] == int(a["nse"] > a["q10_nse"])
    assert (tmp_path / "o" / "own_split_sensitivity.png").stat().st_size > 10_000
    bench.write_text(bench.read_text().replace('kind = "own_split"', 'kind = "extrapolation"', 1))
    bad = run_benchmark_script("own_split_sensitivity.py", "--benches", bench, "--out", tmp_path / "bad")
    assert bad.returncode != 0 and "compares own_split" in bad.stderr


def test_season_pool_quick(shared_data, run_benchmark_script, tmp_path):
    bench = tmp_path / "b_quick.toml"
    bench.write_text("""[benchmark]
kind = "cross_season"
sites = ["US-Wkg"]
past_vars = ["tsoil", "swc"]
members = 1
months = { "US-Wkg" = { train = [4, 5, 6, 7, 8, 9, 10], test = [12, 1, 2] } }
[model]
kind = "kg_stream"
hidden = 0
""")
    p = run_benchmark_script("season_pool.py", "--bench", bench, "--out", tmp_path / "o")
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads((tmp_path / "o" / "season_pool.json").read_text())
    fits = res["sites"]["US-Wkg"]["fits"]
    assert [f["tau_days"] for f in fits] == [None, 7.0, 15.0, 30.0, 60.0]
    assert fits[0]["beta"] < 1e-8 and all(f["beta"] >= 0 for f in fits)
    # the pool adds a parameter to the same least squares: it cannot fit the training months worse
    assert all(f["nse_train"] >= fits[0]["nse_train"] - 1e-6 for f in fits[1:])
    assert res["sites"]["US-Wkg"]["n_winter"] > 1000 and (tmp_path / "o" / "season_pool.png").stat().st_size > 10_000
