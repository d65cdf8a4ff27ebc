"""rsoil_couple.train: windows in hours, gap skipping, splits without leakage, determinism, CLI."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from rsoil_couple.config import (
    DataSection,
    ModelConfig,
    RunConfig,
    RunSection,
    SearchSection,
    SiteConfig,
    SplitSection,
    TrainSection,
)
from rsoil_couple.training.fit import forecast_future, search_and_fit
from rsoil_couple.training.records import SiteArrays, hours_to_steps
from rsoil_couple.training.run import synthetic_sites, train_run
from rsoil_couple.training.splits import make_split
from rsoil_couple.training.windows import WindowSet


def _site(n=400, step=1800, name="A", seed=0, start="2019-06-01"):
    rng = np.random.default_rng(seed)
    t = pd.date_range(start, periods=n, freq=f"{step}s").values
    h = np.arange(n) * step / 3600
    ts = 25 + 5 * np.sin(2 * np.pi * h / 24)
    sw = 0.05 + 0.01 * rng.random(n)
    p = np.where(rng.random(n) < 0.03, 1.0, 0.0)
    y = 0.3 + 0.02 * ts + rng.normal(0, 0.01, n)
    return SiteArrays(name, t, step, {"tsoil": ts, "swc": sw, "precip": p}, y, source=f"{name}.csv")


PV, FV = ["tsoil", "swc", "precip"], ["tsoil"]


def test_hours_to_steps():
    assert hours_to_steps(24, 1800, "k") == 48 and hours_to_steps(24, 7200, "k") == 12
    with pytest.raises(ValueError, match="data.past_hours = 1.5 h is not a multiple .*3600 s"):
        hours_to_steps(1.5, 3600, "data.past_hours")


def test_windows_skip_gaps_and_never_contain_nan():
    s = _site()
    s.drivers["swc"][100] = np.nan
    s.target[200] = np.nan
    s.drivers["tsoil"][300] = np.nan
    ws = WindowSet([s], PV, FV, 6, 3)         # 12 past steps, 6 future steps
    c = ws.counts["A"]
    assert c["candidates"] == 399
    # swc gap at 100 kills targets 100..111; tsoil gap at 300 kills past 300..311 and future 294..299
    assert c["skipped_gap"] == 12 + 12 + 6
    assert c["skipped_edge"] == 11 + 6
    assert c["valid"] == c["candidates"] - c["skipped_gap"] - c["skipped_edge"]
    past, fut, y = ws.batch(ws.valid)
    assert past.shape == (len(ws.valid), 12, 3) and fut.shape == (len(ws.valid), 6, 1)
    assert torch.isfinite(past).all() and torch.isfinite(fut).all() and torch.isfinite(y).all()
    # the last past row is time t, the future starts at t+1
    t0 = ws.valid[0]
    assert past[0, -1, 0] == pytest.approx(s.drivers["tsoil"][t0 - ws.site.tolist().index(0)], abs=1e-5)


def test_normalisation_ignores_gaps_read_only_as_some_windows_future():
    """A SWC gap just after a valid window's target is covered by that window's future rows only (the
    future reads soil temperature): the statistics skip it, so the model's outputs stay finite
    (they were all NaN at gappy sites such as COSORE's before)."""
    from rsoil_couple.training.fit import build_model, predict
    s = _site()
    s.drivers["swc"][150:156] = np.nan
    ws = WindowSet([s], PV, FV, 6, 3)
    covered = ws.covered_rows(ws.valid)
    assert (covered & ~np.isfinite(ws.X).all(1)).any()     # the case: a NaN past driver in a covered row
    cfg = RunConfig(data=DataSection(sites=[SiteConfig(path="A.csv")], past_vars=PV, future_vars=FV,
                                     past_hours=6.0, future_hours=3.0), model=ModelConfig(kind="kg_lstm", hidden=4))
    m = build_model(cfg, ws, ws.valid)
    assert torch.isfinite(m.past_mean).all() and torch.isfinite(m.past_std).all()
    assert np.isfinite(predict(m, ws, ws.valid)).all()


def test_no_window_crosses_sites_and_steps_must_match():
    a, b = _site(100, name="A"), _site(100, name="B", seed=1)
    ws = WindowSet([a, b], PV, FV, 3, 1)
    assert ws.counts["A"]["valid"] == ws.counts["B"]["valid"] == 100 - 5 - 2
    past, fut, _ = ws.batch(ws.valid)
    sid = ws.site[ws.valid]
    assert ((ws.site[ws.valid[:, None] + np.arange(-5, 3)] == sid[:, None])).all()
    with pytest.raises(ValueError, match="share one step"):
        WindowSet([a, _site(100, step=3600, name="C")], PV, FV, 3, 1)


def test_bad_windows_and_drivers_name_file_and_field():
    s = _site(40)
    with pytest.raises(ValueError, match=r"A.csv: no usable sample: data.past_hours \+ data.future_hours = 48 h"):
        WindowSet([s], PV, FV, 24, 24)       # 48 h of windows on a 20 h record
    s.drivers["swc"][:] = np.nan
    with pytest.raises(ValueError, match="A.csv: driver 'swc' is missing everywhere"):
        WindowSet([s], PV, FV, 2, 1)
    del s.drivers["swc"]
    with pytest.raises(ValueError, match="A.csv: no 'swc' driver"):
        WindowSet([s], PV, FV, 2, 1)


def test_splits_interpolation_extrapolation_months_without_leakage():
    s = _site(24 * 2 * 30)                     # 30 days, June 2019
    ws = WindowSet([s], PV, FV, 12, 6)
    sp = make_split(ws, SplitSection(scenario="interpolation"), 0)
    n = len(ws.valid)
    assert abs(len(sp.train) - 0.8 * n) <= 1 and abs(len(sp.test) - 0.1 * n) <= 1
    assert len(set(sp.train) | set(sp.val) | set(sp.test)) == n
    assert np.array_equal(make_split(ws, SplitSection(scenario="interpolation"), 0).test, sp.test)
    ex = make_split(ws, SplitSection(scenario="extrapolation", test_start="2019-06-20", test_end="2019-06-24"), 1)
    tt = ws.time[ex.test]
    assert tt.min() >= np.datetime64("2019-06-20") and tt.max() < np.datetime64("2019-06-25")
    test_rows = (ws.time >= np.datetime64("2019-06-20")) & (ws.time < np.datetime64("2019-06-25"))
    tv = np.concatenate([ex.train, ex.val])
    assert not ws.covered_rows(tv)[test_rows].any()        # no training window reads the test period
    assert ex.excluded_overlap == (24 - 1) + 12 and len(set(ex.train) & set(ex.val)) == 0
    with pytest.raises(ValueError, match="empty split"):
        make_split(ws, SplitSection(scenario="extrapolation", test_start="2020-01-01", test_end="2020-01-02"), 0)


def test_validation_at_the_end_is_each_sites_last_share_before_the_test():
    """split.val_at_end (window kinds): the last val_fraction in time of each site's non-test samples."""
    a, b = _site(24 * 2 * 30), _site(24 * 2 * 30, name="B")
    ws = WindowSet([a, b], PV, FV, 12, 6)
    sc = SplitSection(scenario="extrapolation", test_start="2019-06-25", test_end="2019-06-30", val_fraction=0.2,
                      val_at_end=True)
    sp = make_split(ws, sc, 0)
    assert np.array_equal(make_split(ws, sc, 5).val, sp.val)   # no draw: the seed does not matter
    for i in (0, 1):
        tr, va = sp.train[ws.site[sp.train] == i], sp.val[ws.site[sp.val] == i]
        assert tr.max() < va.min() and abs(len(va) - 0.2 * (len(tr) + len(va))) <= 1
        assert ws.time[va].max() < np.datetime64("2019-06-25")
    assert len(set(sp.train) & set(sp.val)) == 0 and len(set(sp.test) & set(sp.val)) == 0


def test_months_split_test_colder_than_training():
    hot, cold = _site(24 * 2 * 20, start="2019-06-01"), _site(24 * 2 * 20, start="2019-11-01", name="B")
    cold.drivers["tsoil"] -= 8                    # 12..22 degC against 20..30 in June
    ws = WindowSet([hot, cold], PV, FV, 6, 3)
    sp = make_split(ws, SplitSection(scenario="months", train_months=[6], test_months=[11],
                                     test_below_train_min="tsoil"), 0)
    assert ws.X[sp.test, 0].max() < ws.X[np.concatenate([sp.train, sp.val]), 0].min()
    assert sp.excluded_other > 0 and "test restricted" in sp.note


def _cfg(kind="lstm", **train):
    fh = 0.0 if kind == "unilstm" else 6.0
    return RunConfig(data=DataSection(sites=[SiteConfig(path="synthetic")], past_hours=6.0, future_hours=fh,
                                      future_vars=["tsoil"] if fh else []),
                     run=RunSection(seed=5), model=ModelConfig(kind=kind, hidden=8),
                     train=TrainSection(**{"epochs": 2, "max_train_samples": 300, "max_eval_samples": 100,
                                           "progress": False, **train}))


def test_training_is_deterministic_and_seed_dependent():
    sites = synthetic_sites(days=10, seed=1)
    a = train_run(_cfg(), sites)
    b = train_run(_cfg(), sites)
    assert np.array_equal(a.test_pred, b.test_pred) and a.meta["envelope"] == b.meta["envelope"]
    c = train_run(dataclasses.replace(_cfg(), run=RunSection(seed=6)), sites)
    assert not np.array_equal(a.test_pred[:50], c.test_pred[:50])


def test_early_stopping_and_search_pick_by_validation():
    sites = synthetic_sites(days=10, seed=2)
    cfg = _cfg("mlp", epochs=50, patience=2)
    cfg = dataclasses.replace(cfg, search=SearchSection(hidden=[4, 8], lr=[1e-9, 3e-3]))
    from rsoil_couple.training.splits import make_split as ms
    from rsoil_couple.training.windows import WindowSet as W
    ws = W(sites, cfg.data.past_vars, cfg.data.future_vars, 6, 6)
    model, info = search_and_fit(cfg, ws, ms(ws, cfg.split, 5))
    assert len(info["trials"]) == 4
    best = min(info["trials"], key=lambda t: t["val_loss"])
    assert info["chosen"] == best and best["lr"] == 3e-3
    frozen = [t for t in info["trials"] if t["lr"] == 1e-9]
    assert all(t["epochs_run"] < 50 for t in frozen)     # nothing improves -> early stop


def test_persistence_forecast_is_exact_for_a_periodic_signal():
    s = _site(24 * 2 * 6)
    ws = WindowSet([s], PV, FV, 24, 24)
    idx = ws.valid[ws.valid > ws.valid[0] + 48]
    true = ws.batch(idx)[1]
    assert torch.allclose(forecast_future(ws, idx, "persistence"), true, atol=1e-4)
    flat = forecast_future(ws, idx, "flat")
    assert torch.allclose(flat, ws.batch(idx)[0][:, -1:, :1].expand_as(flat))


def test_train_cli_on_real_us_hn1(shared_data, tmp_path, repo_root):
    from rsoil_couple.cli import main
    from rsoil_couple.modelfile.export import load_model
    cfg = tmp_path / "run.toml"
    cfg.write_text(f"""
[run]
seed = 0
[data]
sites = [{{ path = "{(shared_data / 'US-Hn1' / 'US-Hn1_2019_30min.csv').as_posix()}", name = "US-Hn1" }}]
past_hours = 12
future_hours = 24
[split]
scenario = "extrapolation"
test_start = "2019-08-20"
test_end = "2019-09-14"
[model]
kind = "kg_lstm"
hidden = 8
[train]
epochs = 2
max_train_samples = 600
max_eval_samples = 200
progress = false
""")
    out = tmp_path / "m.pt"
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    module, meta = load_model(out)
    assert meta["training"]["sites"] == ["US-Hn1"] and meta["past_steps"] == 24
    assert meta["training"]["periods"][0][1] < "2019-08-20"
    assert 20.0 < meta["envelope"]["tsoil"]["min"] < meta["envelope"]["tsoil"]["max"] < 37.0
    assert meta["test_metrics"]["n"] > 1000
    bad = tmp_path / "bad.toml"
    bad.write_text(cfg.read_text().replace("past_hours = 12", "past_hours = 0.75"))
    assert main(["train", str(bad), "--out", str(out)]) == 2
