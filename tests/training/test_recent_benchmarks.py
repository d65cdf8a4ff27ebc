"""benchmarks/bench_recent_cost.py and benchmarks/recent_sweep.py (kg_stream's delay line), CI-sized."""
from __future__ import annotations

import json


def test_the_core_cost_of_a_delay_line_quick(run_benchmark_script, tmp_path):
    out = tmp_path / "cost.json"
    p = run_benchmark_script("bench_recent_cost.py", "--steps", "20", "--out", out)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(out.read_text())
    # 17 feature slots, then 3 floats per step of the line (30-min steps: 12 and 48 steps)
    assert r["state_floats_per_column"] == {"0": 17, "6": 17 + 36, "24": 17 + 144}
    assert all(len(v) == 5 and min(v) > 0 for v in r["column_steps_per_s_runs"].values())
    assert r["ratio_to_no_line"]["0"] == 1.0


def test_the_sweep_table_is_read_from_the_runs(repo_root, run_benchmark_script, tmp_path):
    p = run_benchmark_script("recent_sweep.py", "--out", tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads((tmp_path / "recent_sweep.json").read_text())
    d6 = json.loads((repo_root / "docs" / "benchmarks" / "d_own_site_split_recent6" / "benchmark.json").read_text())
    assert r["d_nse"]["6"]["Haibei"] == d6["sites"]["Haibei"]["nse"]
    assert r["d_beats_best_q10"]["6"] == d6["summary"]["n_beats"]
    assert set(r["a_ensemble_nse"]) == {"0", "6", "12", "24"}
    assert (tmp_path / "recent_sweep.png").stat().st_size > 5000
