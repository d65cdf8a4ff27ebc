"""Streaming models in `rsoil-couple experiment` (training/stream_experiment.py): the CI-sized Table 1 grid."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rsoil_couple.config import TrainSection, case_config, load_experiment_config
from rsoil_couple.training.experiment import aggregate, best_check
from rsoil_couple.training.stream_run import batch_chunks

REPO = Path(__file__).resolve().parents[2]
QUICK = REPO / "configs" / "paper_us_hn1_stream_quick.toml"
FULL = REPO / "configs" / "paper_us_hn1_stream.toml"


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_full_config_maps_the_grid_to_streaming_variants():
    ecfg = load_experiment_config(FULL)
    e = ecfg.experiment
    assert len(e.past_hours) == 6 and e.seeds == [0, 1, 2] and e.scenarios == ["extrapolation", "interpolation"]
    lstm = case_config(ecfg, "kg_stream_lstm", "extrapolation", 12, 1)
    dense = case_config(ecfg, "kg_stream_dense", "interpolation", 168, 0)
    tsoil = case_config(ecfg, "kg_stream_tsoil", "extrapolation", 36, 2)
    assert (lstm.model.kind, lstm.model.hidden, lstm.train.chunk_hours) == ("kg_stream", 16, 12.0)
    assert (dense.model.hidden, dense.train.chunk_hours, dense.split.scenario) == (0, 168.0, "interpolation")
    assert tsoil.data.past_vars == ["tsoil"] and lstm.data.past_vars == ["tsoil", "swc", "precip"]
    assert lstm.data.future_vars == [] and lstm.run.seed == 1


def test_batches_hold_about_the_same_steps_at_every_truncation_length():
    steps = [batch_chunks(TrainSection(chunk_hours=h)) * h for h in (12, 24, 36, 48, 84, 168)]
    assert batch_chunks(TrainSection()) == 8                     # the default: 8 chunks of 48 h
    assert min(steps) >= 0.85 * 384 and max(steps) <= 1.1 * 384, steps


@pytest.mark.parametrize("edit, message", [
    ('models = ["kg_stream_lstm", "lstm"]', "mixes window and streaming"),
    ('models = ["nope"]', "unknown model 'nope'"),
])
def test_experiment_refuses_mixed_or_unknown_models(tmp_path, edit, message):
    text = QUICK.read_text().replace('models = ["kg_stream_lstm", "kg_stream_dense"]', edit)
    p = tmp_path / "e.toml"
    p.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_experiment_config(p)


def test_streaming_experiment_refuses_a_search(tmp_path):
    p = tmp_path / "e.toml"
    p.write_text(QUICK.read_text() + '\n[models.kg_stream_lstm.search]\nlr = [0.001, 0.003]\n')
    with pytest.raises(ValueError, match=r"search.hidden / search.lr for streaming models \['kg_stream_lstm'\]"):
        load_experiment_config(p)


def test_variant_data_table_takes_only_past_vars(tmp_path):
    p = tmp_path / "e.toml"
    p.write_text(QUICK.read_text() + '\n[models.kg_stream_dense.data]\npast_hours = 12\n')
    with pytest.raises(ValueError, match=r"models.kg_stream_dense.data\] may only set past_vars"):
        load_experiment_config(p)


def test_quick_streaming_experiment(repo_root, tmp_path, monkeypatch):
    """The CI-sized grid: every case and baseline on the same test rows, metrics.json/summary/figures
    written by the window experiment's writers, and both variants beat every baseline on NSE and CC."""
    from rsoil_couple.cli import main
    monkeypatch.chdir(repo_root)
    out = tmp_path / "quick"
    assert main(["experiment", str(QUICK), "--out", str(out)]) == 0
    res = json.loads((out / "metrics.json").read_text())
    cases = res["cases"]
    deep = [c for c in cases if c["kind"] == "deep"]
    assert len(deep) == 2 * 2 * 2 * 3 and res["config"]["streaming"]
    assert {(c["model"], c["chunk_hours"]) for c in deep} == {(m, h) for m in ("kg_stream_lstm", "kg_stream_dense")
                                                              for h in (12.0, 48.0)}
    for sc in ("extrapolation", "interpolation"):
        for seed in (0, 1, 2):                              # every model and baseline on the same rows
            ns = {c["test"]["n"] for c in cases if c["scenario"] == sc and c["seed"] == seed}
            assert len(ns) == 1 and ns.pop() > 400, (sc, seed)
    assert all(c["range"]["n_negative"] == 0 and np.isfinite(c["test"]["nse"]) for c in deep)
    base = {c["model"] for c in cases if c["kind"] == "baseline"}
    assert base == {"q10", "q10_swc", "logistic_power", "clm", "paper_q10_swc"}
    for sc in ("extrapolation", "interpolation"):
        chk = best_check(aggregate(cases), sc)
        assert chk["beats_nse"] and chk["beats_cc"], chk
    assert "truncation length" in (out / "summary.md").read_text()
    for f in ("fig4_metrics_vs_past_length.png", "fig3_timeseries_extrapolation.png",
              "fig5_scatter_interpolation.png"):
        assert (out / f).stat().st_size > 5000, f
