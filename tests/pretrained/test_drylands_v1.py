"""The shipped drylands-v1: loads by name, streams in the core as in Python, and its card is current."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rsoil_couple.core.coupler import Coupler
from rsoil_couple.modelfile.card import model_card
from rsoil_couple.modelfile.export import load_model
from rsoil_couple.pretrained import available

CARD = Path(__file__).resolve().parents[2] / "docs" / "model_card_drylands-v1.md"


def test_drylands_v1_is_shipped_and_describes_itself():
    assert "drylands-v1" in available()
    module, meta = load_model("drylands-v1")
    assert meta["model_kind"] == "kg_stream" and meta["ensemble"]["members"] >= 3
    assert len(meta["training"]["sites"]) == 8
    assert meta["site_scale"]["method"] == "training_median"
    assert meta["streaming"]["state_size"] == int(module.state_size)
    for key in ("e0_K", "q10", "moisture_exponent", "anomaly_share"):
        assert meta["training"]["physics"][key]["sd"] >= 0.0


def test_the_card_is_generated_from_the_shipped_file():
    _, meta = load_model("drylands-v1")
    assert CARD.read_text() == model_card(meta, "drylands-v1"), \
        "docs/model_card_drylands-v1.md is stale: python -m rsoil_couple.modelfile.card drylands-v1 > it"


def test_core_streams_drylands_v1_as_python_does():
    module, meta = load_model("drylands-v1")
    ncol, steps = 3, 500
    c = Coupler("drylands-v1", ncol=ncol)
    rng = np.random.default_rng(0)
    state = module.initial_state(ncol)
    worst = 0.0
    for k in range(steps):
        t = 15.0 + 6.0 * np.sin(2 * np.pi * k / 48) + rng.normal(0, 0.3, ncol)
        w = np.full(ncol, 0.12) + 0.02 * np.arange(ncol)
        r = c.step(tsoil=t, swc=w, precip=np.zeros(ncol))
        with torch.no_grad():
            out, state = module.step(state, torch.tensor(np.stack([t, w], 1), dtype=torch.float32))
        if k >= c.spinup_steps:
            assert (r.status <= 1).all()
            worst = max(worst, float(np.max(np.abs(r.rsoil - out.numpy().astype(np.float64)))))
    assert worst == 0.0 and np.isfinite(r.rsoil).all() and (r.rsoil > 0).all()
