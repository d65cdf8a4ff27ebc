"""StreamEnsemble's shared feature state: advancing it once gives every member's step bit for bit, the state
layout is unchanged, members that advance differently are not shared, and `around` wraps a file's members.
"""
from __future__ import annotations

import pytest
import torch

from rsoil_couple.models import KGStream, StreamEnsemble
from rsoil_couple.models.stream_ensemble import same_feature_recurrence

VARS = ["tsoil", "swc", "precip"]


def _drivers(n: int, T: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = 15 + 20 * torch.rand(n, T, 1, generator=g)
    w = 0.02 + 0.4 * torch.rand(n, T, 1, generator=g)
    p = (torch.rand(n, T, 1, generator=g) > 0.9).float() * 3.0 * torch.rand(n, T, 1, generator=g)
    x = torch.cat([t, w, p], 2)
    x[torch.rand(x.shape, generator=g) < 0.05] = float("nan")   # held drivers
    return x


def _member(hidden: int, seed: int) -> KGStream:
    torch.manual_seed(seed)
    m = KGStream(VARS, [], 48, 0, 1800, hidden=hidden)
    g = torch.Generator().manual_seed(100 + seed)
    train = 15 + 10 * torch.rand(2, 200, 3, generator=g) * torch.tensor([1.0, 0.02, 0.1])
    feats, _ = m.feature_sequence(train, 1800)
    m.set_feature_normalization(feats.reshape(-1, 12))
    with torch.no_grad():  # members that differ: their own head (and LSTM) weights and scale
        for p in m.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
        m.site_scale.fill_(0.5 + seed)
    return m.eval()


@pytest.mark.parametrize("hiddens", [(0, 0, 0), (0, 8)])
def test_shared_features_equal_every_member_advancing_bit_for_bit(hiddens):
    members = [_member(h, k) for k, h in enumerate(hiddens)]
    assert same_feature_recurrence(members)
    shared = torch.jit.script(StreamEnsemble(members).eval())
    alone = torch.jit.script(StreamEnsemble(members, shared_features=False).eval())
    assert shared.shared_features and not alone.shared_features
    x = _drivers(7, 120)
    with torch.no_grad():
        a, sa = alone.run(alone.initial_state(7), x)
        b, sb = shared.run(shared.initial_state(7), x)
        assert torch.equal(a, b) and torch.equal(sa, sb)
        # from a carried state (restart), and the members' spread
        a2, sa2 = alone.run(sa, x[:, :30])
        b2, sb2 = shared.run(sa, x[:, :30])
        assert torch.equal(a2, b2) and torch.equal(sa2, sb2)
        assert torch.equal(alone.members_step(sa, x[:, 0])[0], shared.members_step(sa, x[:, 0])[0])
    # the layout: each member's own state, side by side (member k alone gives its slots)
    i = 0
    for m in members:
        _, sm = m.run(m.initial_state(7), x)
        assert torch.equal(sb[:, i:i + m.state_size], sm)
        i += m.state_size
    assert i == sb.shape[1] == shared.streaming_meta()["state_size"]


def test_members_that_advance_differently_are_not_shared():
    a, b = _member(0, 0), _member(0, 1)
    b.set_step(3600)  # other moving-average weights
    assert not same_feature_recurrence([a, b])
    assert not StreamEnsemble([a, b]).shared_features
    with pytest.raises(ValueError, match="do not advance the same feature state"):
        StreamEnsemble([a, b], shared_features=True)


def test_around_wraps_a_scripted_file_without_the_shared_step(tmp_path):
    members = [_member(0, k) for k in range(3)]
    old = StreamEnsemble(members, shared_features=False).eval()
    with torch.no_grad():
        old.site_scale.fill_(1.7)
    path = tmp_path / "ens.pt"
    torch.jit.save(torch.jit.script(old), str(path))
    loaded = torch.jit.load(str(path))
    fast = torch.jit.script(StreamEnsemble.around(loaded))
    assert fast.shared_features and float(fast.site_scale) == pytest.approx(1.7)
    x = _drivers(5, 80, seed=3)
    with torch.no_grad():
        a, sa = loaded.run(loaded.initial_state(5), x)
        b, sb = fast.run(fast.initial_state(5), x)
    assert torch.equal(a, b) and torch.equal(sa, sb)
