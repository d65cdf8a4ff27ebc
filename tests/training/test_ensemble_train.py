"""train.members = N: N seeds in ONE model file that the core runs unchanged; members = 1 is today's model."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from rsoil_couple.config import _run_config
from rsoil_couple.modelfile.export import load_model, validate_meta
from rsoil_couple.training.example import example_model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ens")
    one = example_model(d / "one.pt", kind="kg_lstm")
    three = example_model(d / "three.pt", kind="kg_lstm", members=3)
    return {"one": (d / "one.pt", one), "three": (d / "three.pt", three)}


def test_members_1_is_todays_model(files, tmp_path):
    path, meta = files["one"]
    assert "ensemble" not in meta
    again = example_model(tmp_path / "again.pt", kind="kg_lstm", members=1)
    assert again["model_id"] == meta["model_id"] and again["test_metrics"] == meta["test_metrics"]
    module, _ = load_model(path)
    assert not hasattr(module, "members_forward")


def test_members_3_metadata_records_every_member_and_the_spread(files):
    _, one = files["one"]
    _, meta = files["three"]
    ens = meta["ensemble"]
    assert ens["members"] == 3 and ens["seeds"] == [0, 1, 2] and ens["combine"] == "mean"
    assert len(ens["member_test_metrics"]) == 3 and len(ens["kg_q10"]) == 3
    # member 0 is the model of members = 1 (same seed, same search); the others differ
    assert ens["member_test_metrics"][0] == one["test_metrics"]
    assert ens["kg_q10"][0] == one["training"]["kg_q10"]
    assert ens["member_test_metrics"][1] != ens["member_test_metrics"][0]
    assert meta["training"]["kg_q10"] == pytest.approx(np.mean(ens["kg_q10"]), rel=1e-12)
    # same data and split for all: the same fallback, envelope, counts; file metrics are the mean's
    for key in ("fallback_q10", "envelope", "physical_range"):
        assert meta[key] == one[key], key
    assert meta["training"]["n_train"] == one["training"]["n_train"]
    assert meta["test_metrics"]["n"] == one["test_metrics"]["n"]
    assert meta["test_metrics"] not in ens["member_test_metrics"]
    sp = ens["spread"]
    nses = [m["nse"] for m in ens["member_test_metrics"]]
    assert sp["nse"]["min"] == min(nses) and sp["nse"]["max"] == max(nses)
    assert 0 < sp["test_mean_sd"] <= sp["test_max_sd"]
    validate_meta(meta)


def test_schema_checks_the_ensemble_record(files):
    from rsoil_couple.errors import MetaError
    _, meta = files["three"]
    bad = {**meta, "ensemble": {**meta["ensemble"], "members": 1}}
    with pytest.raises(MetaError, match="ensemble.members"):
        validate_meta(bad)
    bad = {**meta, "ensemble": {k: v for k, v in meta["ensemble"].items() if k != "seeds"}}
    with pytest.raises(MetaError, match="ensemble.seeds: required field is missing"):
        validate_meta(bad)


def test_export_load_round_trip_is_the_mean_of_the_members(files):
    path, meta = files["three"]
    module, meta2 = load_model(path)
    assert meta2 == meta
    P, F = meta["past_steps"], meta["future_steps"]
    env = meta["envelope"]
    g = torch.Generator().manual_seed(3)
    lo = torch.tensor([env[v["name"]]["min"] for v in meta["past_vars"]])
    hi = torch.tensor([env[v["name"]]["max"] for v in meta["past_vars"]])
    past = lo + (hi - lo) * torch.rand(6, P, len(lo), generator=g)
    fut = past[:, -F:, :1].flip(1).contiguous()
    with torch.no_grad():
        each = module.members_forward(past, fut)
        assert each.shape == (3, 6)
        assert torch.equal(module(past, fut), each.mean(0))
        assert torch.equal(each[1], getattr(module.members, "1")(past, fut))   # member 1 alone


def test_the_core_runs_the_ensemble_unchanged(files):
    """rsoil_couple.Coupler (the C++ core) on the ensemble file = the Python mean of its members."""
    from rsoil_couple import Coupler
    from rsoil_couple.core import coupler as cp
    path, meta = files["three"]
    module, _ = load_model(path)
    P, F, ncol = meta["past_steps"], meta["future_steps"], 5
    env = meta["envelope"]
    t = np.arange(P + 2 + F)[:, None]
    c = np.arange(ncol)[None, :]
    mid = {v: (0.5 * (env[v]["min"] + env[v]["max"]), 0.5 * (env[v]["max"] - env[v]["min"])) for v in env}
    x = {"tsoil": mid["tsoil"][0] + 0.5 * mid["tsoil"][1] * np.sin(2 * np.pi * (t / 48 + c / ncol)),
         "swc": mid["swc"][0] + 0.4 * mid["swc"][1] * np.cos(2 * np.pi * (t / 200 + c / ncol)),
         "precip": np.where((t + c) % 17 == 0, 0.5 * env["precip"]["max"], 0.0) * np.ones((1, ncol))}
    from rsoil_couple.core.capi import CapiCoupler
    core = Coupler(str(path), ncol, "supplied")
    capi = CapiCoupler(str(path), ncol, "supplied")   # the C ABI the Fortran shim calls, in its units
    dt = float(meta["step_seconds"])
    for step in range(P + 2):
        got = core.step(x["tsoil"][step], x["swc"][step], x["precip"][step],
                        future_tsoil=x["tsoil"][step + 1:step + 1 + F].T)
        via_c = capi.step(x["tsoil"][step] + 273.15, x["swc"][step], x["precip"][step] / dt,
                          future_tsoil_k=np.ascontiguousarray(x["tsoil"][step + 1:step + 1 + F].T) + 273.15)
        np.testing.assert_allclose(via_c.rsoil, got.rsoil, rtol=1e-6)
        np.testing.assert_array_equal(via_c.status, got.status)
    last = P + 1
    past = np.stack([x[v["name"]][last - P + 1:last + 1].T for v in meta["past_vars"]], -1)
    fut = x["tsoil"][last + 1:last + 1 + F].T[:, :, None]
    with torch.no_grad():
        each = module.members_forward(torch.from_numpy(past).float(), torch.from_numpy(fut.copy()).float())
    ref = each.double().mean(0).numpy()
    assert np.all(got.status <= cp.EXTRAPOLATING)
    assert np.max(np.abs(got.rsoil - ref) / np.abs(ref)) <= 1e-6
    assert np.ptp(each.numpy(), axis=0).max() > 0   # the members do differ


def test_members_key_is_checked():
    base = {"data": {"sites": [{"path": "x.csv"}]}}
    assert _run_config(base).train.members == 1
    assert _run_config({**base, "train": {"members": 3}}).train.members == 3
    for bad in (0, 65, 2.5):
        with pytest.raises(ValueError, match="train.members"):
            _run_config({**base, "train": {"members": bad}})


def test_train_cli_prints_member_and_ensemble_metrics(monkeypatch, tmp_path, capsys):
    from rsoil_couple.training import run as R
    cfg = tmp_path / "ens.toml"
    cfg.write_text("""
[run]
seed = 4
[data]
sites = [{ path = "synthetic" }]
past_hours = 12
future_hours = 6
[split]
scenario = "interpolation"
[model]
kind = "lstm"
hidden = 4
[train]
epochs = 2
lr = 0.003
max_train_samples = 600
max_eval_samples = 200
progress = false
members = 3
""")
    monkeypatch.setattr(R, "load_data", lambda data: R.synthetic_sites(1800, days=20, seed=0))
    assert R.run(argparse.Namespace(config=str(cfg), out=str(tmp_path / "m.pt"))) == 0
    out = capsys.readouterr().out
    for k, seed in enumerate((4, 5, 6)):
        assert f"member {k} (seed {seed}): mse " in out
    assert "spread over members: nse" in out and "test (ensemble mean of 3): mse" in out
    _, meta = load_model(tmp_path / "m.pt")
    assert meta["model_kind"] == "lstm" and meta["ensemble"]["seeds"] == [4, 5, 6]
    assert "kg_q10" not in meta["ensemble"]
