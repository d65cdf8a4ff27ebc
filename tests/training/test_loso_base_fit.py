"""benchmarks/loso_base_fit.py (issue 11 c diagnostic): the base alone, leave one site out, on the shared data."""
from __future__ import annotations

import json

import numpy as np


def test_loso_base_fit_scores_every_left_out_site(shared_data, run_benchmark_script, tmp_path):
    p = run_benchmark_script("loso_base_fit.py", "--out", tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads((tmp_path / "loso_base_fit.json").read_text())
    assert len(res["sites"]) == 8
    for name, r in res["sites"].items():
        for form in ("absolute", "relative"):
            assert np.isfinite(r[form]["nse"]) and -1.0 <= r[form]["cc_uncalibrated"] <= 1.0, name
            assert 30.0 <= r[form]["e0_K"] <= 800.0 and 0.0 <= r[form]["moisture_exponent"] <= 4.0
        assert 0.0 < r["theta_ref_relative"] < 1.0
    wins = sum(bool(r["absolute"]["nse"] > r["q10_best_nse"]) for r in res["sites"].values())
    assert res["n_beats_calibrated_q10"]["absolute"] == wins
    assert (tmp_path / "loso_base_fit.png").stat().st_size > 5000
