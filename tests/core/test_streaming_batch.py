"""One step() call on all columns (docs/core.md "Streaming models", ``Coupler.streaming_single_call``).

With ``chunk_size > 0`` and more columns than a chunk, the core runs a streaming model's step ONCE per
time step on all columns, padded to a multiple of ``chunk_size`` rows, when its load probe found that
bit-identical to one call per chunk. Whichever way it runs, a column's Rsoil and state must be bit for
bit those of the column alone (1 MPI rank == N ranks); checked here past the spin-up, on the test
LSTM and on the shipped models, at the chunk boundaries.
"""
from __future__ import annotations

import struct

import numpy as np
import pytest

from rsoil_couple import Coupler

NCOL, CHUNK = 150, 64
SAMPLE = (0, 63, 64, 100, 127, 128, 149)   # chunk edges and the padded last chunk


def _drivers(meta: dict, ntime: int) -> dict[str, np.ndarray]:
    """Drivers [time, NCOL] in the inner 60 % of the envelope, a different diel phase per column, rain pulses."""
    env = meta["envelope"]
    rng = np.random.default_rng(7)
    phase = 2 * np.pi * (np.arange(ntime)[:, None] / 48 + np.arange(NCOL)[None, :] / NCOL)
    out = {}
    for v, shape in (("tsoil", np.sin(phase)), ("swc", np.cos(phase / 5))):
        lo, hi = env[v]["min"], env[v]["max"]
        out[v] = lo + (hi - lo) * (0.5 + 0.3 * shape) + rng.uniform(-0.01, 0.01, (ntime, NCOL)) * (hi - lo)
    rain = env["precip"]["max"] if "precip" in env else 10.0   # a model without precip ignores it
    out["precip"] = np.where(rng.random((ntime, NCOL)) < 0.03, 0.3 * rain, 0.0)
    return out


def _run(path, cols, x, ntime):
    c = Coupler(path, len(cols), "supplied", chunk_size=CHUNK, num_threads=1)
    r = np.array([c.step(x["tsoil"][t, cols], x["swc"][t, cols], x["precip"][t, cols]).rsoil for t in range(ntime)])
    blob = c.get_state()
    size = c.streaming_state_size
    off = 112 + 8 * 8 + 4 * len(cols)   # layout 3: header, counts, mask, then the f32 state
    assert struct.unpack_from("=I", blob, 8)[0] == 3
    return c, r, np.frombuffer(blob[off:off + 4 * len(cols) * size], dtype=np.float32).reshape(len(cols), size)


@pytest.mark.parametrize("which", ["test_lstm", "drylands-v1", "drylands-v2"])
def test_a_column_among_150_equals_the_column_alone(which, stream_model):
    path = stream_model[0] if which == "test_lstm" else which
    probe = Coupler(path, 1, "supplied")
    meta = probe.meta
    ntime = meta["streaming"]["spinup_steps"] + 12
    x = _drivers(meta, ntime)
    c, r_all, s_all = _run(path, np.arange(NCOL), x, ntime)
    if which != "test_lstm":   # hidden = 0: elementwise features and a dense head
        assert c.streaming_single_call, (f"{which}: the load probe found one call on {NCOL} columns not bit-identical "
                                         f"to calls of {CHUNK} on this machine (kernels chosen by shape)")
    assert np.isfinite(r_all[-12:]).all()
    for j in SAMPLE:
        alone, r1, s1 = _run(path, np.array([j]), x, ntime)
        assert not alone.streaming_single_call    # one column: the per-chunk path, padded to CHUNK rows
        np.testing.assert_array_equal(r1[:, 0], r_all[:, j], err_msg=f"{which}: column {j}")
        np.testing.assert_array_equal(s1[0], s_all[j], err_msg=f"{which}: column {j} state")
