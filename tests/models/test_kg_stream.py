"""kg_stream: the streaming contract (initial_state / step / run / forward), hold-on-missing, the envelope."""
from __future__ import annotations

import math

import pytest
import torch

from rsoil_couple.models import MODELS, KGStream, StreamEnsemble
from rsoil_couple.models.kg_stream import NFS

VARS = ["tsoil", "swc", "precip"]


def _drivers(n: int, T: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = 15 + 10 * torch.rand(n, T, 1, generator=g)
    w = 0.05 + 0.2 * torch.rand(n, T, 1, generator=g)
    p = (torch.rand(n, T, 1, generator=g) > 0.9).float() * 2.0
    return torch.cat([t, w, p], 2)


def _trained_like(hidden: int, **options) -> KGStream:
    torch.manual_seed(0)
    m = KGStream(VARS, [], 48, 0, 1800, hidden=hidden, **options)
    feats, _ = m.feature_sequence(_drivers(2, 200)[:, :, [0, 1, 2]], 1800)
    m.set_feature_normalization(feats.reshape(-1, feats.shape[-1]))
    with torch.no_grad():   # a non-trivial modulation
        for p in m.head.parameters():
            p.normal_(0, 0.3)
    return m.eval()


@pytest.mark.parametrize("hidden", [0, 8])
def test_run_is_repeated_step_and_forward_is_its_last_row(hidden):
    sm = torch.jit.script(_trained_like(hidden))
    x = _drivers(5, 60)
    out, st = sm.run(sm.initial_state(5), x)
    s = sm.initial_state(5)
    outs = []
    for k in range(60):
        r, s = sm.step(s, x[:, k])
        outs.append(r)
    assert torch.equal(out, torch.stack(outs, 1)) and torch.equal(st, s)
    assert torch.equal(sm(x, torch.zeros(5, 0, 0)), out[:, -1])
    assert st.shape == (5, NFS + 2 * hidden) and sm.state_size == st.shape[1]
    assert bool((out > 0).all()) and bool(torch.isfinite(out).all())


def test_columns_are_independent_of_the_batch():
    sm = torch.jit.script(_trained_like(8))
    x = _drivers(6, 30)
    full, _ = sm.run(sm.initial_state(6), x)
    part, _ = sm.run(sm.initial_state(2), x[2:4])
    # columns never mix; the GEMM's blocking may change the last bit with the batch size
    assert torch.allclose(full[2:4], part, rtol=1e-6, atol=0)


def test_a_missing_driver_is_held_and_counted():
    m = _trained_like(0)
    s = m.initial_state(1)
    _, s = m.step(s, torch.tensor([[20.0, 0.15, 0.0]]))
    _, s2 = m.step(s, torch.tensor([[21.0, float("nan"), 0.0]]))
    assert float(s2[0, 1]) == pytest.approx(0.15)        # last valid swc kept
    assert float(s2[0, 16]) == 1.0                        # one step with a held driver
    assert float(s2[0, 0]) == 21.0 and bool(torch.isfinite(s2).all())


def test_moving_averages_are_defined_in_hours():
    """The same constant-then-step input gives the same level after 24 h at a 30-min and a 60-min step."""
    m = _trained_like(0)
    vals = []
    for step_s in (1800, 3600):
        n = 48 * 3600 // step_s
        x = torch.tensor([10.0, 0.1, 0.0]).repeat(1, n, 1)
        x[0, n // 2:, 0] = 20.0
        feats, base_in = m.feature_sequence(x, step_s)
        vals.append(float(base_in[0, -1, 0]))              # T24 after 24 h at 20 degC
    assert vals[0] == pytest.approx(vals[1], rel=1e-5)
    assert vals[0] == pytest.approx(20.0 - 10.0 * math.exp(-1.0), rel=1e-4)


def test_far_outside_the_envelope_the_physics_decides():
    m = _trained_like(0)
    hot = torch.tensor([[60.0, 0.15, 0.0]])
    s = m.initial_state(1)
    for _ in range(5):
        r, s = m.step(s, hot)
    _, feats, base_in = m.advance(m.initial_state(1)[:, :NFS], hot, m.alpha, m.dt_h)
    assert float(m.trust(feats).detach()) < 1e-6
    assert float(r.detach()) == pytest.approx(float(m.base(base_in).detach()), rel=1e-4)


def test_the_ensemble_is_the_member_mean_with_states_side_by_side():
    a, b = _trained_like(0), _trained_like(8)
    with torch.no_grad():
        b.site_scale.fill_(2.0)
    e = torch.jit.script(StreamEnsemble([a, b]).eval())
    x = _drivers(3, 20)
    out, st = e.run(e.initial_state(3), x)
    oa, sa = a.run(a.initial_state(3), x)
    ob, sb = b.run(b.initial_state(3), x)
    assert torch.allclose(out, (oa + ob) / 2, rtol=1e-6)
    assert torch.equal(st, torch.cat([sa, sb], 1))
    assert e.streaming_meta()["state_size"] == a.state_size + b.state_size


def test_registered_and_refuses_a_future_window():
    assert MODELS["kg_stream"] is KGStream and KGStream.streaming
    with pytest.raises(ValueError, match="future_vars must be"):
        KGStream(VARS, ["tsoil"], 48, 4, 1800)


def _damm(k10: float = 1.0, ek: float = 1.0, c: float = 2.0) -> KGStream:
    m = KGStream(VARS, [], 48, 0, 1800, hidden=0, moisture_form="damm")
    with torch.no_grad():
        m.k_raw.fill_(math.log(k10))
        m.ek_raw.fill_(math.log(math.expm1(ek)))      # softplus(ek_raw) = ek
        m.c_raw.fill_(math.log(c / (m.c_max - c)))     # c_max sigmoid(c_raw) = c
        m.theta_range.copy_(torch.tensor([0.05, 0.30]))
    return m


def _base(m: KGStream, t: float, theta: float) -> float:
    with torch.no_grad():
        return float(m.base(torch.tensor([t, 0.0, theta])))


def test_damm_base_is_one_at_the_reference_and_damps_the_temperature_response_of_dry_soil():
    m = _damm()
    assert _base(m, 10.0, 0.1) == pytest.approx(1.0, rel=1e-6)   # site_scale keeps its meaning
    wet = _base(m, 25.0, 0.25) / _base(m, 5.0, 0.25)
    dry = _base(m, 25.0, 0.05) / _base(m, 5.0, 0.05)
    with torch.no_grad():
        lt = math.exp(float(m.log_temperature_response(torch.tensor(25.0)) - m.log_temperature_response(torch.tensor(5.0))))
    # substrate-limited (dry) soil: apparent sensitivity -> Vmax's / K's (K x e^2 from 5 to 25 degC here);
    # wetter soil: closer to Vmax's
    assert lt / math.exp(2.0) < dry < lt / math.exp(1.0) < wet < lt


def test_damm_extrapolates_toward_dry_soil_and_holds_the_wettest_training_soil():
    m = _damm()
    assert _base(m, 15.0, 0.02) < _base(m, 15.0, 0.05)           # drier than training: still falls
    assert _base(m, 15.0, 0.02) > 0.0
    assert _base(m, 15.0, 0.45) == pytest.approx(_base(m, 15.0, 0.30), rel=1e-6)   # wetter: held
    sm = torch.jit.script(m.eval())
    x = _drivers(3, 40)
    out, _ = sm.run(sm.initial_state(3), x)
    ref, _ = m.run(m.initial_state(3), x)
    assert torch.equal(out, ref) and bool((out > 0).all())
    assert "half_saturation_10C" in m.physics() and m.physics()["half_saturation_10C"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="moisture_form"):
        KGStream(VARS, [], 48, 0, 1800, moisture_form="linear")


def test_sees_level_from_the_config_puts_the_temperature_level_among_the_network_inputs(tmp_path):
    from pathlib import Path

    from rsoil_couple.config.loading import load_run_config

    text = (Path(__file__).parents[2] / "configs" / "drylands_v2.toml").read_text()
    (tmp_path / "run.toml").write_text(text.replace("[model]\n", "[model]\nsees_level = true\n", 1))
    cfg = load_run_config(tmp_path / "run.toml").model
    seen = KGStream.from_config(cfg, VARS, [], 48, 0, 1800)
    blind = KGStream.from_config(type(cfg)(kind="kg_stream", hidden=0), VARS, [], 48, 0, 1800)
    assert cfg.sees_level and 2 in seen.feat_idx and 2 not in blind.feat_idx   # 2: t_level (FEATURES)
    assert seen.n_feat == blind.n_feat + 1


def test_envelope_clamp_keeps_the_modulation_whole_far_outside_the_envelope():
    fade, clamp = _trained_like(0), _trained_like(0, envelope="clamp")
    hot = torch.tensor([[60.0, 0.15, 0.0]])
    fs, feats, base_in = fade.advance(fade.initial_state(1)[:, :NFS], hot, fade.alpha, fade.dt_h)
    with torch.no_grad():
        s, _, _ = clamp.modulation_logit(clamp.norm_features(feats).unsqueeze(1), torch.zeros(1, 0), torch.zeros(1, 0))
        assert float(fade.trust(feats)) < 1e-6 and float(clamp.trust(feats)) == 1.0
        expect = clamp.base(base_in) * torch.exp(clamp.log_bound * torch.tanh(s[:, 0]))
        assert abs(float(s)) > 0.05    # a modulation that shows
        r_clamp, _ = torch.jit.script(clamp.eval()).step(clamp.initial_state(1), hot)
        r_fade, _ = fade.step(fade.initial_state(1), hot)
        base = fade.base(base_in)
    assert float(r_clamp) == pytest.approx(float(expect), rel=1e-6)
    assert float(r_fade) == pytest.approx(float(base), rel=1e-4)
    assert float(r_clamp) != pytest.approx(float(r_fade), rel=1e-3)
    with pytest.raises(ValueError, match="model.envelope"):
        KGStream(VARS, [], 48, 0, 1800, envelope="none")


def test_moisture_form_none_leaves_soil_water_to_the_network(tmp_path):
    from pathlib import Path

    from rsoil_couple.config.loading import load_run_config

    text = (Path(__file__).parents[2] / "configs" / "drylands_v2.toml").read_text()
    text = text.replace('moisture_form = "damm"', 'moisture_form = "none"')
    (tmp_path / "run.toml").write_text(text.replace("[model]\n", '[model]\nenvelope = "clamp"\n', 1))
    cfg = load_run_config(tmp_path / "run.toml").model
    assert (cfg.moisture_form, cfg.envelope) == ("none", "clamp")
    m = KGStream.from_config(cfg, VARS, [], 48, 0, 1800)
    assert not m.fade and _base(m, 15.0, 0.02) == _base(m, 15.0, 0.30) == pytest.approx(_base(m, 15.0, 0.1))
    assert _base(m, 20.0, 0.1) > _base(m, 10.0, 0.1)
    assert "moisture_exponent" not in m.physics() and "swc" in m.past_var_names
    assert 3 in m.feat_idx    # SWC is still a network input (FEATURES[3])


def test_learn_q10_false_keeps_the_temperature_response_through_training():
    from rsoil_couple.config import ModelConfig

    cfg = ModelConfig(kind="kg_stream", hidden=0, temperature_form="q10", q10_init=2.0, learn_q10=False)
    m = KGStream.from_config(cfg, VARS, [], 48, 0, 1800)
    lt = KGStream.from_config(ModelConfig(kind="kg_stream", hidden=0, learn_q10=False), VARS, [], 48, 0, 1800)
    assert m.physics()["q10"] == pytest.approx(2.0) and lt.physics()["e0_K"] == pytest.approx(308.56, rel=1e-5)
    assert not m.q10_raw.requires_grad and not lt.e0_raw.requires_grad and m.c_raw.requires_grad
    x = _drivers(2, 300)
    feats, base_in = m.feature_sequence(x, 1800)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=0.1)
    for _ in range(5):   # a loss that would pull Q10 far from 2 if it could move
        opt.zero_grad()
        ((m.base(base_in) - 5.0 * (base_in[..., 0] / 10.0) ** 4) ** 2).mean().backward()
        opt.step()
    with torch.no_grad():
        assert float(m.q10()) == pytest.approx(2.0) and float(m.moisture_exponent()) != pytest.approx(3.0 / (1 + math.e))
