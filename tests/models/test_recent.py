"""kg_stream's delay line of recent drivers (``model.recent_hours``, rsoil_couple.models.recent)."""
from __future__ import annotations

import math

import pytest
import torch

from rsoil_couple.models import KGStream
from rsoil_couple.models.kg_stream import NFS
from rsoil_couple.models.recent import RECENT_LAYOUT_NAME, recent_sequence, recent_steps_for

VARS = ["tsoil", "swc", "precip"]


def _ramp_drivers(n: int, T: int) -> torch.Tensor:
    """Drivers ``[n, T, 3]`` that differ at every step and column: tsoil 15 + t + n_col/10 degC, swc
    0.1 + 0.01 t, rain 2 mm every third step."""
    t = torch.arange(T, dtype=torch.float32).expand(n, T)
    col = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    return torch.stack([15 + t + col / 10, 0.1 + 0.01 * t, 2.0 * (t % 3 == 0)], 2)


def test_the_line_holds_the_last_k_steps_oldest_first_and_the_state_layout_says_so():
    m = KGStream(VARS, [], 48, 0, 1800, hidden=4, recent_hours=2.0)
    assert m.recent_steps == 4 and m.state_size == NFS + 12 + 8
    layout = m.streaming_meta()["state_layout"]
    assert sum(e["size"] for e in layout) == m.state_size
    assert [e["name"] for e in layout][-3:] == [RECENT_LAYOUT_NAME, "lstm_h", "lstm_c"]
    sm = torch.jit.script(m)
    x = _ramp_drivers(3, 10)
    x[1, 8, 1] = float("nan")                     # a missing SWC is held in the line, as in the features
    _, st = sm.run(sm.initial_state(3), x)
    line = st[:, NFS:NFS + 12].reshape(3, 4, 3)
    held = x.clone()
    held[1, 8, 1] = x[1, 7, 1]
    torch.testing.assert_close(line[:, :, 0], held[:, 6:10, 0], rtol=0, atol=0)
    torch.testing.assert_close(line[:, :, 1], held[:, 6:10, 1], rtol=0, atol=0)
    torch.testing.assert_close(line[:, :, 2], torch.log1p(held[:, 6:10, 2]), rtol=0, atol=0)


def test_the_lstm_reads_the_kept_features_and_the_head_also_the_line():
    m = KGStream(VARS, [], 48, 0, 3600, hidden=8, recent_hours=6.0)
    assert m.recent_steps == 6 and m.n_lstm_feat == 11 and m.n_feat == 11 + 18
    assert m.lstm[0].input_size == 11 and m.head[0].in_features == 11 + 18 + 8
    # the envelope (fade) is measured on the kept features and the level only, not on 18 copies of them
    assert len(m.env_idx) == 12 and max(m.env_idx) < 12


def test_the_sequence_features_are_the_departures_from_the_present():
    vals = torch.tensor([[10.0, 0.1, 0.0], [12.0, 0.2, 1.0], [14.0, 0.3, 0.5], [16.0, 0.4, 0.0]], dtype=torch.float64)
    t24 = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    f = recent_sequence(vals, t24, vals[:, 1], 2)            # lags 2, 1 of each block
    # row 3: T(1) - T24(3), T(2) - T24(3); SWC(1) - SWC(3), SWC(2) - SWC(3); rain(1), rain(2)
    torch.testing.assert_close(f[3], torch.tensor([8.0, 10.0, -0.2, -0.1, 1.0, 0.5], dtype=torch.float64))
    # row 0: the line starts at zeros
    torch.testing.assert_close(f[0], torch.tensor([-1.0, -1.0, -0.1, -0.1, 0.0, 0.0], dtype=torch.float64))


def test_bad_hours_and_another_step_are_refused_by_name():
    with pytest.raises(ValueError, match="model.recent_hours"):
        KGStream(VARS, [], 48, 0, 1800, hidden=0, recent_hours=-1.0)
    with pytest.raises(ValueError, match="model.recent_hours"):
        recent_steps_for(math.nan, 1800)
    m = KGStream(VARS, [], 48, 0, 1800, hidden=0, recent_hours=24.0)
    assert m.recent_steps == 48
    with pytest.raises(ValueError, match="model.recent_hours = 24.*48 steps of 1800 s"):
        m.set_step(3600)
    assert recent_steps_for(0.5, 7200) == 1 and recent_steps_for(0.0, 1800) == 0
