"""Every shipped pretrained model (drylands-v1, drylands-v2): loads by name, streams in the core as in
Python, its card is current, and the config that trained it is in configs/."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rsoil_couple.core.coupler import Coupler
from rsoil_couple.modelfile.card import model_card
from rsoil_couple.modelfile.export import load_model
from rsoil_couple.pretrained import PACKAGE_DIR, available

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.stem for p in PACKAGE_DIR.glob("*.pt"))


def test_the_dryland_models_are_shipped():
    assert {"drylands-v1", "drylands-v2"} <= set(SHIPPED) <= set(available())


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_model_describes_itself(name):
    module, meta = load_model(name)
    assert (ROOT / "configs" / f"{name.replace('-', '_')}.toml").is_file()
    assert meta["model_kind"] == "kg_stream" and meta["ensemble"]["members"] >= 3
    assert len(meta["training"]["sites"]) == 8
    assert meta["site_scale"]["method"] == "training_median"
    assert meta["streaming"]["state_size"] == int(module.state_size)
    for key in ("e0_K", "q10", "moisture_exponent", "anomaly_share"):
        assert meta["training"]["physics"][key]["sd"] >= 0.0


@pytest.mark.parametrize("name", SHIPPED)
def test_the_card_is_generated_from_the_shipped_file(name):
    _, meta = load_model(name)
    card = ROOT / "docs" / f"model_card_{name}.md"
    assert card.read_text() == model_card(meta, name), \
        f"{card.name} is stale: python -m rsoil_couple.modelfile.card {name} > docs/{card.name}"


@pytest.mark.parametrize("name", SHIPPED)
def test_core_streams_a_shipped_model_as_python_does(name):
    module, meta = load_model(name)
    ncol, steps = 3, 500
    c = Coupler(name, ncol=ncol)
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


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_models_rows_are_independent_so_decompositions_agree(name):
    """The load probe (rows reversed, bit for bit) finds the shipped file's values independent of a column's
    row in a call: with chunk_size > 0 its columns give the same values on 1 or N MPI ranks."""
    c = Coupler(name, ncol=100, chunk_size=64)
    assert c.streaming_rows_independent and c.streaming_single_call
