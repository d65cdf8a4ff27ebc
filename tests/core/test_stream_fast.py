"""rsoil_couple.core.stream_fast: a streaming file's module prepared for offline runs gives the file's own
numbers bit for bit (an ensemble exported without the shared step: shared features + frozen; the shipped
ones, which have it: frozen; chunked heads at a fixed row count; the test model: frozen), and a
preparation that would change a value is not used.
"""
from __future__ import annotations

import pytest
import torch

from rsoil_couple.core import stream_fast
from rsoil_couple.modelfile.export import load_model
from rsoil_couple.pretrained import resolve


def _same(a, b, x) -> bool:
    with torch.inference_mode():
        ya, sa = a.run(a.initial_state(x.shape[0]), x)
        yb, sb = b.run(b.initial_state(x.shape[0]), x)
    return torch.equal(ya, yb) and torch.equal(sa, sb)


@pytest.fixture(scope="module")
def unshared_file(tmp_path_factory):
    """drylands-v1 as it was shipped before stop 18: the same members and scale, but an ensemble step that
    advances every member's own feature state (`StreamEnsemble` with ``shared_features=False``)."""
    from rsoil_couple.modelfile.export import export_model
    from rsoil_couple.models.stream_ensemble import StreamEnsemble

    module, meta = load_model(resolve("drylands-v1"))
    path = tmp_path_factory.mktemp("unshared") / "drylands-v1-unshared.pt"
    ens = StreamEnsemble.around(module, meta["streaming"], shared_features=False)
    export_model(ens, {k: v for k, v in meta.items() if k != "model_id"}, path)
    return path


@pytest.mark.parametrize("name", ["drylands-v1", "drylands-v2"])
def test_the_shipped_ensemble_has_the_shared_step_and_is_frozen_bit_identical(name):
    path = resolve(name)
    module, meta = load_model(path)
    fast, applied = stream_fast.prepared_module(path, module, meta, probe_steps=60)
    assert bool(module.shared_features) and applied == ["frozen"]   # exported with the shared step
    # another record than the probe: longer than the spin-up, other seed and rows
    x = stream_fast.probe_drivers(meta, 40, int(meta["streaming"]["spinup_steps"]) + 50, seed=7)
    assert _same(module, fast, x)
    assert stream_fast.prepared_module(path, module, meta)[0] is fast   # cached per process


def test_a_file_without_the_shared_step_gets_it_at_load_and_equals_the_shipped_one(unshared_file):
    """The shared step changes no value: a file exported without it (as drylands-v1 was until stop 18) gets
    it at load, and gives the shipped drylands-v1's numbers bit for bit (1 and 1,024 rows, past the spin-up)."""
    module, meta = load_model(unshared_file)
    assert not bool(module.shared_features)
    fast, applied = stream_fast.prepared_module(unshared_file, module, meta, probe_steps=60)
    assert applied == ["shared_features", "frozen"]
    shipped, _ = load_model(resolve("drylands-v1"))
    steps = int(meta["streaming"]["spinup_steps"]) + 40
    for rows in (1, 1024):
        x = stream_fast.probe_drivers(meta, rows, steps, seed=rows)
        assert _same(module, fast, x) and _same(module, shipped, x)
        with torch.inference_mode():
            sa, sb = module.initial_state(rows), shipped.initial_state(rows)
            for k in range(steps):
                ya, sa = module.step(sa, x[:, k])
                yb, sb = shipped.step(sb, x[:, k])
                assert torch.equal(ya, yb) and torch.equal(sa, sb)


def test_the_test_model_is_frozen_and_bit_identical(stream_model):
    path, _ = stream_model
    module, meta = load_model(path)
    fast, applied = stream_fast.prepared_module(path, module, meta)
    assert applied == ["frozen"]
    assert _same(module, fast, stream_fast.probe_drivers(meta, 16, 80, seed=3))


def test_a_preparation_that_changes_values_is_not_used(stream_model, monkeypatch, tmp_path):
    path = tmp_path / "copy.pt"
    path.write_bytes(stream_model[0].read_bytes())
    module, meta = load_model(path)

    class Off(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        @torch.jit.export
        def initial_state(self, ncol: int) -> torch.Tensor:
            return self.inner.initial_state(ncol)

        @torch.jit.export
        def run(self, state: torch.Tensor, drivers: torch.Tensor):
            y, s = self.inner.run(state, drivers)
            return y * (1.0 + 1e-6), s

    monkeypatch.setattr(stream_fast, "_prepare", lambda m, meta, rows=0: (torch.jit.script(Off(m)), ["frozen"]))
    with pytest.warns(RuntimeWarning, match="run as it is"):
        fast, applied = stream_fast.prepared_module(path, module, meta)
    assert fast is module and applied == []


def test_slabs_threads_and_float32_give_the_whole_record_run(stream_model):
    """StreamingRun works in slabs of time_chunk steps (spin-up and a [time, column] mask crossing them) and
    runs blocks of columns in threads: the same values as one slab in one thread; float32 = float64 rounded."""
    import numpy as np

    from rsoil_couple.core.streaming import StreamingRun

    path, meta = stream_model
    rng = np.random.default_rng(4)
    T, ncol = 90, 11
    drivers = {"tsoil": 15 + 8 * rng.standard_normal((T, ncol)), "swc": 0.05 + 0.3 * rng.random((T, ncol)),
               "precip": np.where(rng.random((T, ncol)) < 0.1, 2.0, 0.0)}
    drivers["tsoil"][rng.random((T, ncol)) < 0.05] = np.nan
    drivers["swc"][3, 2] = 2.0    # impossible
    mask = rng.random((T, ncol)) > 0.1
    ref = StreamingRun(path, batch_rows=4, time_chunk=0)(drivers, mask)
    got = StreamingRun(path, batch_rows=4, time_chunk=7, run_threads=3)(drivers, mask)
    f32 = StreamingRun(path, batch_rows=4, time_chunk=4)(drivers, mask, dtype=np.float32)
    assert int(meta["streaming"]["spinup_steps"]) > 7       # the spin-up crosses a slab boundary
    for k in ("rsoil", "rsoil_gc", "resp_scalar", "status"):
        np.testing.assert_array_equal(got[k], ref[k])
        assert f32[k].dtype == (np.int8 if k == "status" else np.float32)
        np.testing.assert_array_equal(f32[k], ref[k].astype(f32[k].dtype))


def test_streaming_run_of_an_unshared_file_prepared_or_not_is_the_same(unshared_file):
    import numpy as np

    from rsoil_couple.core.streaming import StreamingRun

    rng = np.random.default_rng(11)
    T, ncol = 400, 10
    drivers = {"tsoil": 12 + 10 * rng.standard_normal((T, ncol)), "swc": 0.3 * rng.random((T, ncol)),
               "precip": np.zeros((T, ncol))}
    drivers["swc"][rng.random((T, ncol)) < 0.03] = np.nan
    drivers["tsoil"][5, 1] = 90.0  # impossible
    # batch_rows 0: a record's columns in one call of their own count (10 rows): shared and frozen only
    fast = StreamingRun(unshared_file, batch_rows=0, time_chunk=150)
    own = StreamingRun(unshared_file, batch_rows=0, time_chunk=150, prepare=False)
    assert fast.prepared == ["shared_features", "frozen"] and own.prepared == []
    # batch_rows 8: calls padded to 64 rows (CALL_ROW_MULTIPLE), so the heads are chunked too
    chunked = StreamingRun(unshared_file, batch_rows=8, time_chunk=150)
    own64 = StreamingRun(unshared_file, batch_rows=8, time_chunk=150, prepare=False)
    assert chunked.call_rows == 64 and chunked.prepared == ["shared_features", "chunked_heads", "frozen"]
    a, b, c, d = fast(drivers), own(drivers), chunked(drivers), own64(drivers)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        np.testing.assert_array_equal(c[k], d[k])


@pytest.mark.parametrize("name", ["drylands-v1", "drylands-v2"])
def test_chunked_heads_at_a_fixed_row_count_give_the_files_numbers(name):
    from rsoil_couple.models.stream_chunked import SUB_STEPS

    path = resolve(name)
    module, meta = load_model(path)
    fast, applied = stream_fast.prepared_module(path, module, meta, probe_steps=40, rows=64)
    assert "chunked_heads" in applied and applied[-1] == "frozen"
    # another record than the probe: past the spin-up, a last partial chunk, and carried on from its state
    steps = int(meta["streaming"]["spinup_steps"]) + 3 * SUB_STEPS + 5
    x = stream_fast.probe_drivers(meta, 64, steps, seed=9)
    assert _same(module, fast, x)
    with torch.inference_mode():
        _, s = module.run(module.initial_state(64), x)
        ya, sa = module.run(s, x[:, :SUB_STEPS + 3])
        yb, sb = fast.run(s, x[:, :SUB_STEPS + 3])
    assert torch.equal(ya, yb) and torch.equal(sa, sb)


def test_chunked_heads_only_where_they_apply(stream_model, unshared_file):
    from rsoil_couple.models.stream_chunked import ChunkedHeads, chunkable
    from rsoil_couple.models.stream_ensemble import StreamEnsemble

    v1, meta = load_model(unshared_file)
    assert not chunkable(v1, 64)                       # its own step advances every member: not shared
    shared = StreamEnsemble.around(v1)
    assert chunkable(shared, 64) and chunkable(shared, 1024)
    assert not chunkable(shared, 100) and not chunkable(shared, 0) and not chunkable(shared, 32)
    module, _ = load_model(stream_model[0])            # an LSTM carried step to step: its heads cannot wait
    assert not chunkable(module, 64)
    with pytest.raises(ValueError, match="hidden-0"):
        ChunkedHeads(v1)
    fast, applied = stream_fast.prepared_module(resolve("drylands-v2"), *load_model(resolve("drylands-v2")), rows=100)
    assert applied == ["frozen"]
