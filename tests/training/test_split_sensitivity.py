"""benchmarks/split_sensitivity.py (benchmark a with its test start moved), CI-sized: two starts, one member."""
from __future__ import annotations

import json

import numpy as np


def test_split_sensitivity_quick(shared_data, run_benchmark_script, tmp_path):
    p = run_benchmark_script("split_sensitivity.py", "--first", "2019-08-19", "--last", "2019-08-20", "--variants",
                             "one_se", "none+refit", "--members", "1", "--out", tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads((tmp_path / "split_sensitivity.json").read_text())
    runs = {(r["variant"], r["test_start"]): r for r in res["runs"]}
    assert set(runs) == {(v, s) for v in ("one_se", "none+refit") for s in ("2019-08-19", "2019-08-20")}
    # every run is scored on the same rows, whatever its split
    assert len({r["n_scored"] for r in runs.values()}) == 1 and res["runs"][0]["n_scored"] > 500
    for r in runs.values():
        assert np.isfinite(r["nse"]) and np.isfinite(r["base_alone_nse"]) and len(r["member_lambda"]) == 1
        # validation is the tenth of the record before the test start, and ends the day before it
        assert r["validation"]["to"][:10] < r["test_start"] and r["validation"]["rows"] > 100
    # "none" keeps the whole network
    assert all(r["member_lambda"] == [1.0] for (v, _), r in runs.items() if v == "none+refit")
    # moving the start by a day moves the validation days by a day
    assert runs[("one_se", "2019-08-19")]["validation"]["from"] < runs[("one_se", "2019-08-20")]["validation"]["from"]
    assert (tmp_path / "split_sensitivity.png").stat().st_size > 10_000
    # refused: a last start inside the scored rows
    bad = run_benchmark_script("split_sensitivity.py", "--last", "2019-08-30", "--out", tmp_path / "bad", timeout=120)
    assert bad.returncode != 0 and "is after --score-from" in bad.stderr
    # --merge: earlier runs side by side without training; runs of another experiment are refused
    other = json.loads((tmp_path / "split_sensitivity.json").read_text())
    other.update(variants=["none+slide+refit"], runs=[dict(r, variant="none+slide+refit") for r in other["runs"]
                                                       if r["variant"] == "none+refit"])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "split_sensitivity.json").write_text(json.dumps(other))
    m = run_benchmark_script("split_sensitivity.py", "--merge", tmp_path / "split_sensitivity.json",
                             tmp_path / "b" / "split_sensitivity.json", "--out", tmp_path / "m", timeout=120)
    assert m.returncode == 0, m.stderr[-2000:]
    merged = json.loads((tmp_path / "m" / "split_sensitivity.json").read_text())
    assert merged["variants"] == ["one_se", "none+refit", "none+slide+refit"] and len(merged["runs"]) == 6
    assert merged["summary"]["none+slide+refit"]["nse_median"] == merged["summary"]["none+refit"]["nse_median"]
    other["score_from"] = "2019-08-26"
    (tmp_path / "b" / "split_sensitivity.json").write_text(json.dumps(other))
    m = run_benchmark_script("split_sensitivity.py", "--merge", tmp_path / "split_sensitivity.json",
                             tmp_path / "b" / "split_sensitivity.json", "--out", tmp_path / "m2", timeout=120)
    assert m.returncode != 0 and "differs" in m.stderr and "score_from" in m.stderr
