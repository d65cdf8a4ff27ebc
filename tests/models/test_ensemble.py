"""rsoil_couple.models.Ensemble: scripting, the mean of the members exactly, the spread method."""
from __future__ import annotations

import pytest
import torch

from rsoil_couple.config import ModelConfig
from rsoil_couple.models import MODELS, Ensemble, get_model

PV, FV = ["tsoil", "swc", "precip"], ["tsoil"]


def _rows(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = 20 + 15 * torch.rand(n, generator=g)
    w = 0.05 + 0.1 * torch.rand(n, generator=g)
    p = torch.where(torch.rand(n, generator=g) < 0.05, 3 * torch.rand(n, generator=g), torch.zeros(n))
    return torch.stack([t, w, p], 1)


def _members(kind, n=3, ps=12, fs=6):
    fv = [] if kind == "unilstm" else FV
    out = []
    for k in range(n):
        torch.manual_seed(k)
        m = get_model(ModelConfig(kind=kind, hidden=4), PV, fv, ps, fs if fv else 0, 1800)
        rows = _rows()
        m.set_normalization(rows, rows[:, :1] if fv else None, 0.2 + rows[:, 1])
        out.append(m.eval())
    return out


def _windows(kind, b=5, ps=12, fs=6):
    rows = _rows(b * (ps + fs), seed=1).reshape(b, ps + fs, 3)
    fut = torch.zeros(b, 0, 0) if kind == "unilstm" else rows[:, ps:, :1]
    return rows[:, :ps], fut


@pytest.mark.parametrize("kind", sorted(k for k, c in MODELS.items() if not c.streaming))  # StreamEnsemble: test_kg_stream.py
def test_ensemble_is_the_mean_of_its_members_exactly_and_scripts(kind):
    members = _members(kind)
    ens = Ensemble(members).eval()
    past, fut = _windows(kind)
    with torch.no_grad():
        each = torch.stack([m(past, fut) for m in members])
        ref = each.mean(0)
        assert torch.equal(ens(past, fut), ref)
        s = torch.jit.script(ens)
        assert torch.equal(s(past, fut), ref)
        spread = s.members_forward(past, fut)
    assert spread.shape == (3, 5) and torch.equal(spread, each)
    assert torch.equal(spread.mean(0), s(past, fut))
    # the attributes the core and load_model check are the members'
    m0 = members[0]
    for name in ("past_var_names", "future_var_names", "past_steps", "future_steps", "n_past", "n_future"):
        assert getattr(s, name) == getattr(m0, name), name
    assert s.n_members == 3 and ens.member_kind == kind


def test_one_member_is_that_member():
    (m,) = _members("kg_lstm", n=1)
    past, fut = _windows("kg_lstm")
    with torch.no_grad():
        assert torch.equal(Ensemble([m])(past, fut), m(past, fut))


def test_ensemble_refuses_members_of_other_inputs_or_windows():
    a = _members("kg_lstm", n=1)[0]
    b = _members("kg_lstm", n=1, ps=8)[0]
    with pytest.raises(ValueError, match="member 1 reads other inputs or windows"):
        Ensemble([a, b])
    c = _members("unilstm", n=1)[0]
    with pytest.raises(ValueError, match="member 1 reads other inputs"):
        Ensemble([a, c])
    with pytest.raises(ValueError, match="at least one member"):
        Ensemble([])
    with pytest.raises(RuntimeError, match="normalise the members"):
        Ensemble([a]).set_normalization(_rows(), None, _rows()[:, 1])


def test_site_scale_multiplies_every_member_and_the_mean():
    """DESIGN.md "Site scale vs shared response": the buffer (1 when built) scales members_forward and
    forward alike, so forward stays exactly members_forward(...).mean(0)."""
    members = _members("kg_lstm")
    ens = Ensemble(members).eval()
    assert ens.site_scale.dtype == torch.float32 and ens.site_scale.dim() == 0 and float(ens.site_scale) == 1.0
    past, fut = _windows("kg_lstm")
    with torch.no_grad():
        each = torch.stack([m(past, fut) for m in members])
        ens.site_scale.fill_(1.75)
        s = torch.jit.script(ens)
        spread = s.members_forward(past, fut)
        assert torch.equal(spread, 1.75 * each)
        assert torch.equal(s(past, fut), spread.mean(0))
        torch.testing.assert_close(s(past, fut), 1.75 * each.mean(0))
