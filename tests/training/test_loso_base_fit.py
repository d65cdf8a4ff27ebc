"""benchmarks/loso_base_fit.py (issue 11 c diagnostic): the base alone, leave one site out, on the shared data."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def test_loso_base_fit_scores_every_left_out_site(shared_data, repo_root, tmp_path):
    import rsoil_couple  # the subprocess imports the same package as this test (installed or source tree)
    pkg_parent = str(Path(rsoil_couple.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([pkg_parent, os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, str(repo_root / "benchmarks" / "loso_base_fit.py"), "--out", str(tmp_path)],
                       env=env, capture_output=True, text=True, timeout=600)
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
