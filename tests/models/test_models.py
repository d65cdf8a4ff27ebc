"""rsoil_couple.models: shapes, scripting, the backward future branch, kg_lstm's guarantees."""
from __future__ import annotations

import math

import pytest
import torch

from rsoil_couple.config import ModelConfig
from rsoil_couple.models import KGLSTM, MODELS, PastFutureLSTM, get_model

PV, FV = ["tsoil", "swc", "precip"], ["tsoil"]


def _rows(n=500, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = 20 + 15 * torch.rand(n, generator=g)
    w = 0.05 + 0.1 * torch.rand(n, generator=g)
    p = torch.where(torch.rand(n, generator=g) < 0.05, 3 * torch.rand(n, generator=g), torch.zeros(n))
    return torch.stack([t, w, p], 1)


def _windows(b, ps, fs, seed=1, t_shift=0.0):
    rows = _rows(b * (ps + fs), seed).reshape(b, ps + fs, 3)
    rows[:, :, 0] += t_shift
    return rows[:, :ps], rows[:, ps:, :1]


def _model(kind, ps=12, fs=6, hidden=8):
    fv = [] if kind == "unilstm" else FV
    m = get_model(ModelConfig(kind=kind, hidden=hidden), PV, fv, ps, fs if fv else 0, 1800)
    rows = _rows()
    m.set_normalization(rows, rows[:, :1] if fv else None, 0.2 + rows[:, 1])
    return m.eval()


#: window kinds (streaming kinds have their own contract: tests/models/test_kg_stream.py)
WINDOW_KINDS = sorted(k for k, c in MODELS.items() if not c.streaming)


@pytest.mark.parametrize("kind", WINDOW_KINDS)
def test_forward_shape_dtype_and_script(kind):
    m = _model(kind)
    past, fut = _windows(4, 12, 6)
    if kind == "unilstm":
        fut = torch.zeros(4, 0, 0)
    y = m(past, fut)
    assert y.shape == (4,) and y.dtype == torch.float32 and torch.isfinite(y).all()
    s = torch.jit.script(m)
    assert torch.equal(s(past, fut), y)


def test_factory_rejects_impossible_configurations():
    with pytest.raises(ValueError, match="model.kind = 'gru'"):
        get_model(ModelConfig(kind="gru"), PV, FV, 4, 2, 1800)
    with pytest.raises(ValueError, match="'lstm' needs future_vars"):
        get_model(ModelConfig(kind="lstm"), PV, [], 4, 0, 1800)
    with pytest.raises(ValueError, match="'unilstm' takes no future_vars"):
        get_model(ModelConfig(kind="unilstm"), PV, FV, 4, 2, 1800)
    with pytest.raises(ValueError, match="needs 'tsoil'"):
        get_model(ModelConfig(kind="kg_lstm"), ["swc"], [], 4, 0, 1800)
    with pytest.raises(ValueError, match="future_steps"):
        get_model(ModelConfig(kind="mlp"), PV, FV, 4, 0, 1800)


def test_normalisation_lives_in_the_module():
    m = _model("mlp")
    assert torch.allclose(m.past_mean[0], _rows()[:, 0].mean())
    assert bool(m.past_log[2]) and not bool(m.past_log[0])        # rain is log1p-transformed
    sd = torch.jit.script(m).state_dict()
    assert "past_mean" in sd and "y_std" in sd


def test_future_branch_reads_the_future_backward():
    m: PastFutureLSTM = _model("lstm")
    past, fut = _windows(3, 12, 6)
    with torch.no_grad():
        hp = m.past_lstm(m.norm_past(past))[1][0][-1]
        fwd = m.future_lstm(m.norm_future(fut))[1][0][-1]
        bwd = m.future_lstm(torch.flip(m.norm_future(fut), [1]))[1][0][-1]
        y_bwd = m.head(torch.cat([hp, bwd], 1)).squeeze(1) * m.y_std + m.y_mean
        y_fwd = m.head(torch.cat([hp, fwd], 1)).squeeze(1) * m.y_std + m.y_mean
        y = m(past, fut)
    assert torch.allclose(y, y_bwd)
    assert not torch.allclose(y, y_fwd)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kg_lstm_positive_bounded_and_monotone_outside_envelope(seed):
    torch.manual_seed(seed)
    m: KGLSTM = _model("kg_lstm", ps=48, fs=12, hidden=16)
    with torch.no_grad():                       # a random, strongly non-trivial network
        for p in m.head.parameters():
            p.mul_(5.0)
    past, fut = _windows(6, 48, 12, seed=seed + 10)
    shifts = torch.arange(-60.0, 36.0, 3.0)      # tsoil from about -40 to 70 degC
    preds = []
    with torch.no_grad():
        for s in shifts:
            p2, f2 = past.clone(), fut.clone()
            p2[:, :, 0] += s
            f2[:, :, 0] += s
            preds.append(m(p2, f2))
    y = torch.stack(preds)                        # [shift, batch]
    assert torch.isfinite(y).all() and (y > 0).all()
    # bounded modulation around the Q10 base
    t_level = past[:, -48:, 0].mean(1)
    for k, s in enumerate(shifts):
        ratio = y[k] / m.base(t_level + s)
        assert (ratio <= 20.0 * 1.0001).all() and (ratio >= 1 / 20.0 * 0.9999).all()
    # below the envelope the network input is clamped: only the Q10 base changes -> monotone
    tmin, tmax = float(m.past_min[0]), float(m.past_max[0])
    lo_all = (past[:, :, 0].max(1).values.unsqueeze(0) + shifts.unsqueeze(1)) < tmin     # whole window below
    hi_all = (past[:, :, 0].min(1).values.unsqueeze(0) + shifts.unsqueeze(1)) > tmax
    for mask in (lo_all, hi_all):
        for b in range(y.shape[1]):
            ks = torch.nonzero(mask[:, b]).flatten()
            if len(ks) > 1:
                d = torch.diff(y[ks, b])
                assert (d > 0).all(), (b, d)
                q = float(m.q10().detach())
                assert torch.allclose(y[ks[1:], b] / y[ks[:-1], b], torch.tensor(q ** 0.3), rtol=1e-4)
    assert lo_all.any() and hi_all.any()


def test_kg_lstm_q10_parameterisation():
    m = get_model(ModelConfig(kind="kg_lstm", q10_init=2.5, learn_q10=False), PV, [], 8, 0, 3600)
    assert math.isclose(float(m.q10()), 2.5, rel_tol=1e-6)
    assert "q10_raw" not in dict(m.named_parameters())
    with pytest.raises(ValueError, match="q10_min < q10_init < q10_max"):
        get_model(ModelConfig(kind="kg_lstm", q10_init=0.8), PV, [], 8, 0, 3600)
    with pytest.raises(ValueError, match="modulation_max"):
        get_model(ModelConfig(kind="kg_lstm", modulation_max=1.0), PV, [], 8, 0, 3600)


@pytest.mark.parametrize("future", [True, False])
def test_template_is_a_working_model_to_copy(future):
    """models/template.py stays valid: scripts, learns the training mean, and follows the window contract."""
    from rsoil_couple.models.template import TemplateGRU
    fv = FV if future else []
    m = TemplateGRU.from_config(ModelConfig(kind="lstm", hidden=8), PV, fv, 12, 6 if future else 0, 1800)
    rows = _rows()
    m.set_normalization(rows, rows[:, :1] if future else None, 0.2 + rows[:, 1])
    m.eval()
    past, fut = _windows(4, 12, 6)
    fut = fut if future else torch.empty(4, 0, 0)
    scripted = torch.jit.script(m)
    y = scripted(past, fut)
    assert y.shape == (4,) and y.dtype == torch.float32
    assert torch.equal(y, m(past, fut))
    assert TemplateGRU.kind not in MODELS   # a template, not a registered model


def test_registry_is_the_only_list_of_kinds():
    from rsoil_couple.models import REGISTERED, USES_FUTURE
    assert list(MODELS) == [cls.kind for cls in REGISTERED] and len(set(MODELS)) == len(REGISTERED)
    assert USES_FUTURE == {"lstm": True, "unilstm": False, "mlp": True, "kg_lstm": True, "kg_stream": False}
