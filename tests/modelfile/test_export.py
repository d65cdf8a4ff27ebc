"""rsoil_couple.export: model file round trip, metadata validation, example_model."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from rsoil_couple.modelfile.export import (
    MetaError,
    export_model,
    load_model,
    validate_meta,
)


@pytest.fixture(scope="module")
def lstm_file(model_24h):
    return model_24h


def _inputs(meta, batch=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    def block(vars_, steps):
        if steps == 0:
            return torch.zeros(batch, 0, 0)
        cols = []
        for v in vars_:
            e = meta["envelope"][v["name"]]
            cols.append(e["min"] + (e["max"] - e["min"]) * torch.rand(batch, steps, generator=g))
        return torch.stack(cols, 2)
    return block(meta["past_vars"], meta["past_steps"]), block(meta["future_vars"], meta["future_steps"])


def test_example_model_meta_is_complete_and_honest(lstm_file):
    path, meta = lstm_file
    module, meta2 = load_model(path)
    assert meta2 == meta
    assert meta["model_kind"] == "lstm" and meta["past_steps"] == 48 and meta["future_steps"] == 48
    assert meta["training"]["synthetic"] is True
    assert meta["torch_version"] == torch.__version__ and len(meta["model_id"]) == 16
    assert meta["fallback_q10"]["form"] == "q10_swc" and meta["fallback_q10"]["params"]["b"] > 0
    for v in ("tsoil", "swc", "precip"):
        assert meta["envelope"][v]["min"] < meta["envelope"][v]["max"]
    assert 0 < meta["test_metrics"]["n"] and np.isfinite(meta["test_metrics"]["nse"])


@pytest.mark.parametrize("kind", ["lstm", "unilstm", "mlp", "kg_lstm"])
def test_export_load_predict_reproduces(tmp_path, kind):
    from rsoil_couple.config import (
        DataSection,
        ModelConfig,
        RunConfig,
        RunSection,
        SiteConfig,
        TrainSection,
    )
    from rsoil_couple.training.run import synthetic_sites, train_run
    fh = 0.0 if kind == "unilstm" else 12.0
    cfg = RunConfig(data=DataSection(sites=[SiteConfig(path="synthetic")], past_hours=12.0, future_hours=fh,
                                     future_vars=["tsoil"] if fh else []),
                    run=RunSection(seed=3), model=ModelConfig(kind=kind, hidden=8),
                    train=TrainSection(epochs=1, max_train_samples=300, max_eval_samples=100, progress=False))
    res = train_run(cfg, synthetic_sites(days=12, seed=3))
    meta = export_model(res.model, res.meta, tmp_path / f"{kind}.pt")
    module, meta2 = load_model(tmp_path / f"{kind}.pt")
    past, fut = _inputs(meta)
    with torch.no_grad():
        before = res.model(past, fut)
        after = module(past, fut)
    assert after.shape == (5,) and after.dtype == torch.float32
    assert torch.max(torch.abs(before - after)).item() <= 1e-6
    assert meta2["model_id"] == meta["model_id"]


def test_validate_meta_names_the_field(lstm_file):
    _, meta = lstm_file
    validate_meta(copy.deepcopy(meta))
    cases = [
        (lambda m: m.pop("envelope"), "envelope"),
        (lambda m: m.update(schema_version=3), "schema_version"),
        (lambda m: m.update(past_steps=7), "past_steps"),
        (lambda m: m["past_vars"][0].update(units="K"), "past_vars[0].units"),
        (lambda m: m["envelope"]["swc"].update(min=2.0), "envelope.swc"),
        (lambda m: m["fallback_q10"]["params"].pop("c"), "fallback_q10.params.c"),
        (lambda m: m.update(model_kind="not an identifier"), "model_kind"),
        (lambda m: m.update(future_vars=[]), "future_"),
        (lambda m: m["output"].update(units="gC m-2 s-1"), "output"),
    ]
    for mutate, field in cases:
        m = copy.deepcopy(meta)
        mutate(m)
        with pytest.raises(MetaError, match=field.replace("[", r"\[").replace("]", r"\]")):
            validate_meta(m)


def test_load_model_errors_name_the_file(tmp_path, lstm_file):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_model(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_text("not a model")
    with pytest.raises(ValueError, match="bad.pt"):
        load_model(bad)
    # a valid TorchScript file with broken metadata
    path, meta = lstm_file
    module, _ = load_model(path)
    m = dict(meta)
    m.pop("fallback_q10")
    broken = tmp_path / "broken.pt"
    torch.jit.save(module, str(broken), _extra_files={"rsoil_meta.json": json.dumps(m)})
    with pytest.raises(MetaError, match="broken.pt.*fallback_q10"):
        load_model(broken)
    plain = tmp_path / "plain.pt"
    torch.jit.save(module, str(plain))
    with pytest.raises(ValueError, match="rsoil_meta.json is missing"):
        load_model(plain)


def test_model_id_does_not_depend_on_the_python_hash_seed(tmp_path):
    """The same trained weights exported by processes with different PYTHONHASHSEED give the same file code
    and model_id (torch emits nn.Linear's / nn.LSTM's constants in a set's order; export sorts it)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, torch; torch.manual_seed(0)\n"
            "from rsoil_couple.modelfile.export import script\n"
            "m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))\n"
            "lstm = torch.nn.LSTM(3, 5, batch_first=True)\n"
            "for mod, name in ((m, 'mlp'), (lstm, 'lstm')):\n"
            "    script(mod).save(sys.argv[1] + name + '.pt')\n")
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for seed in ("1", "2", "3"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / f"s{seed}_")], check=True,
                       env={**env, "PYTHONHASHSEED": seed})
    from rsoil_couple.modelfile.identity import model_identity
    for name in ("mlp", "lstm"):
        ids = {model_identity(tmp_path / f"s{seed}_{name}.pt") for seed in ("1", "2", "3")}
        assert len(ids) == 1, f"{name}: {ids}"
    # without the sorted order the code differs between hash seeds (the test would catch a regression)
    plain = code.replace("script(mod)", "torch.jit.script(mod)")
    for seed in ("1", "2"):
        subprocess.run([sys.executable, "-c", plain, str(tmp_path / f"p{seed}_")], check=True,
                       env={**env, "PYTHONHASHSEED": seed})
    assert model_identity(tmp_path / "p1_lstm.pt") != model_identity(tmp_path / "p2_lstm.pt")
