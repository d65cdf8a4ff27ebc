"""Streaming models in the C++ core (docs/core.md "Streaming models"): the core's outputs are the module's
own ``step``, restarts carry the state bit for bit (layout 3), columns are independent of the batch,
a missing driver is held, masked columns advance, the C API equals pybind11, and a module that does
not stream as its record says is refused by both loaders.

The test model (tests/core/streaming_model.py) is made from the session's window model (tests/conftest.py
``model``): its envelope, physical ranges and fallback Q10.
"""
from __future__ import annotations

import importlib.util
import json
import struct
import sys
from pathlib import Path
from typing import Tuple

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rsoil_couple import Coupler
from rsoil_couple.baselines import q10
from rsoil_couple.core import capi
from rsoil_couple.core import coupler as cp
from rsoil_couple.errors import MetaError
from rsoil_couple.modelfile.export import META_NAME, load_model
from rsoil_couple.modelfile.identity import model_identity


def _helpers():
    """tests/core/streaming_model.py as a module (once; TorchScript needs it in sys.modules for the source)."""
    name = "rsoil_tests_streaming_model"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("streaming_model.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


sm = _helpers()
HEADER = 112 + 8 * 8  # header + counts of the restart blob, before mask[ncol] and the state


class RaisingStream(sm.EmaStreamingModel):
    """Raises inside step when any soil temperature exceeds 60 degC (a failing step, for the transaction)."""

    @torch.jit.export
    def step(self, state: torch.Tensor, drivers: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if bool((drivers[:, 0] > 60.0).any()):
            raise ValueError("too hot for this test model")
        return self.advance(state, drivers)


class NegativeOnRain(sm.EmaStreamingModel):
    """Returns a negative Rsoil where it rains more than 5 mm in the step (BAD_OUTPUT)."""

    @torch.jit.export
    def step(self, state: torch.Tensor, drivers: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        y, new = self.advance(state, drivers)
        return torch.where(drivers[:, 2] > 5.0, -y, y), new


class RowDependent(sm.EmaStreamingModel):
    """Rounds its odd rows differently (x (1 + 1e-6)): a module whose values depend on the row in a call."""

    @torch.jit.export
    def step(self, state: torch.Tensor, drivers: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        y, new = self.advance(state, drivers)
        odd = (torch.arange(y.shape[0]) % 2).to(y.dtype)
        return y * (1.0 + 1e-6 * odd), new


class NotStreaming(torch.nn.Module):
    """forward only: a file whose metadata claims streaming but whose module cannot stream."""

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        return past[:, -1, 0].abs()


@pytest.fixture(scope="module")
def stream(model, tmp_path_factory):
    """(path, meta, module) of the EMA streaming test model, spin-up 12 steps, state size 8."""
    wpath, wmeta, _ = model
    path = tmp_path_factory.mktemp("stream") / "ema_stream.pt"
    meta = sm.export_streaming(sm.EmaStreamingModel(wmeta["envelope"], wmeta["step_seconds"], spinup_steps=12),
                               wmeta, path, "ema_stream_test")
    module, _ = load_model(path)
    return path, meta, module


def drivers(meta: dict, ntime: int, ncol: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Diel drivers inside the envelope [time, column], canonical units (rain pulses every 17 steps)."""
    env = meta["envelope"]
    t, c = np.arange(ntime)[:, None], np.arange(ncol)[None, :]
    rng = np.random.default_rng(seed)
    mid = {v: 0.5 * (env[v]["min"] + env[v]["max"]) for v in ("tsoil", "swc")}
    amp = {v: 0.5 * (env[v]["max"] - env[v]["min"]) for v in ("tsoil", "swc")}
    return {"tsoil": mid["tsoil"] + 0.5 * amp["tsoil"] * np.sin(2 * np.pi * (t / 48 + c / ncol))
            + rng.uniform(-0.2, 0.2, (ntime, ncol)),
            "swc": mid["swc"] + 0.4 * amp["swc"] * np.cos(2 * np.pi * (t / 200 + c / ncol)),
            "precip": np.where((t + c) % 17 == 0, 0.5 * env["precip"]["max"], 0.0) * np.ones((ntime, ncol))}


def run(c, x: dict, steps) -> dict[str, np.ndarray]:
    """Step the coupler; outputs stacked [time, column]."""
    outs = [c.step(x["tsoil"][t], x["swc"][t], x["precip"][t]) for t in steps]
    return {k: np.array([getattr(o, k) for o in outs]) for k in ("rsoil", "rsoil_gc", "resp_scalar", "status")}


def blob_state(blob: bytes, ncol: int, size: int) -> np.ndarray:
    """The f32 state [ncol, size] of a layout-3 restart blob (docs/core.md)."""
    assert struct.unpack_from("=I", blob, 8)[0] == 3
    off = HEADER + 4 * ncol
    return np.frombuffer(blob[off:off + 4 * ncol * size], dtype=np.float32).reshape(ncol, size)


def q10_ref(meta: dict, tsoil, swc) -> np.ndarray:
    fq = meta["fallback_q10"]
    return q10.predict(fq["form"], fq["params"], tsoil, swc, fq["swc_units"], tref_c=fq["tref_c"])


def python_steps(module, x: dict, steps, bad=None):
    """The module's own step over all columns (drivers float32, `bad` [time, column, var] -> NaN)."""
    state = module.initial_state(x["tsoil"].shape[1])
    ys, states = [], []
    for t in steps:
        d = np.stack([x["tsoil"][t], x["swc"][t], x["precip"][t]], axis=1)
        if bad is not None:
            d = np.where(bad[t], np.nan, d)
        with torch.no_grad():
            y, state = module.step(state, torch.from_numpy(d).float())
        ys.append(y.double().numpy())
        states.append(state.numpy().copy())
    return np.array(ys), states


# ------------------------------------------------------------------------------------------------
def test_metadata_and_info(stream):
    path, meta, module = stream
    assert meta["streaming"] == {"state_size": 8, "spinup_steps": 12, "missing": "hold",
                                 "state_layout": [{"name": "last_valid", "size": 3}, {"name": "ema", "size": 4},
                                                  {"name": "n_missing", "size": 1}]}
    assert (meta["past_steps"], meta["future_steps"], meta["future_vars"]) == (13, 0, [])
    c = Coupler(path, 3, "lagged")
    assert c.streaming and c.streaming_state_size == 8 and c.spinup_steps == 12 and c.capacity == 0
    assert c.state_size() == HEADER + 4 * 3 + 4 * 3 * 8 + 8
    info = capi.CapiCoupler(path, 3).info
    assert (info["spinup_steps"], info["past_steps"], info["future_steps"], info["lag_steps"]) == (12, 13, 0, 0)


def test_core_step_is_the_module_step(stream):
    """Statuses from step t's own drivers; ACTIVE/EXTRAPOLATING values are the module's step (same inputs,
    NaN for missing and impossible drivers) and the state is the module's, bit for bit; fallbacks are Q10."""
    path, meta, module = stream
    ncol, T = 7, 40
    x = drivers(meta, T, ncol)
    env = meta["envelope"]
    x["tsoil"][20, 1] = np.nan                       # missing
    x["tsoil"][21, 2] = x["tsoil"][21, 2] + 273.15   # K for degC: impossible -> NaN to the model
    x["swc"][22:25, 3] = np.nan                      # three missing steps
    x["tsoil"][23, 4] = env["tsoil"]["max"] + 2.0    # outside the envelope: the model sees it
    x["precip"][5, 5] = np.nan                       # missing during spin-up: SPINUP wins
    c = Coupler(path, ncol, "supplied")
    got = run(c, x, range(T))
    bad = np.zeros((T, ncol, 3), bool)
    bad[20, 1, 0] = bad[21, 2, 0] = bad[5, 5, 2] = True
    bad[22:25, 3, 1] = True
    ys, states = python_steps(module, x, range(T), bad)

    expected = np.zeros((T, ncol), np.int32)
    expected[:12] = cp.SPINUP
    expected[20, 1] = expected[22:25, 3] = cp.MISSING
    expected[21, 2] = cp.IMPOSSIBLE
    expected[23, 4] = cp.EXTRAPOLATING
    np.testing.assert_array_equal(got["status"], expected)
    net = expected <= cp.EXTRAPOLATING
    np.testing.assert_array_equal(got["rsoil"][net], ys[net])  # same batch, same calls: bit for bit
    np.testing.assert_array_equal(blob_state(c.get_state(), ncol, 8), states[-1])
    ref = q10_ref(meta, x["tsoil"], x["swc"])
    ref[21, 2] = np.nan  # never a made-up number: Q10 of an impossible temperature is NaN (as NaN drivers)
    np.testing.assert_allclose(got["rsoil"][~net], ref[~net], rtol=1e-13)
    np.testing.assert_allclose(got["resp_scalar"][net], ys[net] / ref[net], rtol=1e-12)
    assert np.all(got["resp_scalar"][~net] == 1.0)
    np.testing.assert_array_equal(got["rsoil_gc"], got["rsoil"] * 12.011e-6)
    counts = np.bincount(expected.ravel(), minlength=len(cp.STATUS_NAMES))
    np.testing.assert_array_equal(c.counters, counts)
    # forward(past, future) is the streaming answer after past_steps - 1 = spinup_steps steps
    with torch.no_grad():
        past = np.stack([x[v][:13].T for v in ("tsoil", "swc", "precip")], axis=-1)
        fwd = module(torch.from_numpy(past).float(), torch.zeros(ncol, 0, 0)).double().numpy()
    np.testing.assert_array_equal(fwd, got["rsoil"][12])


def test_missing_driver_is_held_and_counted(stream):
    path, meta, module = stream
    x = drivers(meta, 30, 2)
    gap = slice(15, 20)
    x["tsoil"][gap, 1] = np.nan
    c = Coupler(path, 2, "supplied")
    got = run(c, x, range(gap.start))
    held = blob_state(c.get_state(), 2, 8)[1].copy()
    assert held[0] == np.float32(x["tsoil"][gap.start - 1, 1])  # last valid tsoil kept in the state
    for t in range(gap.start, gap.stop):
        r = c.step(x["tsoil"][t], x["swc"][t], x["precip"][t])
        s = blob_state(c.get_state(), 2, 8)[1]
        assert r.status[1] == cp.MISSING and np.isnan(r.rsoil[1]) and r.status[0] == cp.ACTIVE
        assert s[0] == held[0] and np.all(np.isfinite(s)) and s[7] == held[7] + (t - gap.start + 1)
        assert "column 1 tsoil = nan" in c.diagnostic.lower() and "holds the last valid value" in c.diagnostic
    got = run(c, x, range(gap.stop, 30))
    assert np.all(got["status"] == cp.ACTIVE) and np.all(np.isfinite(got["rsoil"]))


def test_masked_columns_advance(stream):
    """A column masked off keeps stepping: switched back on it runs at once, with the unmasked run's value."""
    path, meta, _ = stream
    x = drivers(meta, 40, 4)
    free = run(Coupler(path, 4, "supplied", chunk_size=4), x, range(40))
    c = Coupler(path, 4, "supplied", chunk_size=4)
    c.set_mask([True, False, True, True])
    part = run(c, x, range(30))
    assert np.all(part["status"][:, 1] == cp.MASKED)
    c.set_mask([True, True, True, True])
    rest = run(c, x, range(30, 40))
    assert np.all(rest["status"] == cp.ACTIVE)
    np.testing.assert_array_equal(rest["rsoil"], free["rsoil"][30:])


def test_a_columns_value_does_not_depend_on_its_batch(stream):
    """chunk_size > 0: bit for bit the same for a column alone, among 7, and with others masked (what makes
    1 MPI rank equal 2); chunk_size 0 and another chunk size agree to float32 rounding."""
    path, meta, _ = stream
    x = drivers(meta, 40, 7)

    def rsoil(cols, chunk=4, mask=None):
        c = Coupler(path, len(cols), "supplied", chunk_size=chunk)
        if mask is not None:
            c.set_mask(mask)
        out = run(c, {k: v[:, cols] for k, v in x.items()}, range(40))
        return out["rsoil"][12:], blob_state(c.get_state(), len(cols), 8)

    assert Coupler(path, 7, "supplied", chunk_size=4).streaming_rows_independent   # what the test relies on
    all7, s7 = rsoil(np.arange(7))
    alone = [rsoil(np.array([j])) for j in range(7)]
    np.testing.assert_array_equal(np.concatenate([a[0] for a in alone], axis=1), all7)
    np.testing.assert_array_equal(np.concatenate([a[1] for a in alone]), s7)
    masked, _ = rsoil(np.arange(7), mask=np.arange(7) == 3)
    np.testing.assert_array_equal(masked[:, 3], all7[:, 3])
    for chunk in (0, 3):
        np.testing.assert_allclose(rsoil(np.arange(7), chunk=chunk)[0], all7, rtol=1e-6)


def test_restart_is_bit_for_bit(stream, model):
    path, meta, _ = stream
    ncol, N = 5, 20
    x = drivers(meta, 2 * N, ncol)
    x["swc"][N - 1, 2] = np.nan  # a held value across the restart
    whole = Coupler(path, ncol, "lagged", chunk_size=2)
    ref = run(whole, x, range(2 * N))
    a = Coupler(path, ncol, "lagged", chunk_size=2)
    run(a, x, range(N))
    blob = a.get_state()
    assert len(blob) == a.state_size() and struct.unpack_from("=I", blob, 8)[0] == cp._core.STREAMING_STATE_LAYOUT_VERSION
    b = Coupler(path, ncol, "lagged", chunk_size=2)
    b.set_state(blob)
    assert b.steps_taken == N and b.get_state() == blob
    second = run(b, x, range(N, 2 * N))
    for k in ref:
        np.testing.assert_array_equal(second[k], ref[k][N:])
    np.testing.assert_array_equal(b.counters, whole.counters)
    assert b.get_state() == whole.get_state()
    # a blob of the other kind of model is refused naming the field, the coupler unchanged
    wpath = model[0]
    with pytest.raises(ValueError, match=r"state_put: layout_version: 3 is the state of a streaming model; this "
                                         r"coupler runs a window model"):
        Coupler(wpath, ncol, "lagged").set_state(blob)
    w = Coupler(wpath, ncol, "lagged")
    with pytest.raises(ValueError, match=r"state_put: layout_version: 2 is the state of a window model .*"
                                         r"this coupler runs a streaming model"):
        b.set_state(w.get_state())
    # a blob of the same model with another spin-up record is another model (model_id), so edit the field
    edited = bytearray(blob)
    struct.pack_into("=i", edited, 96, 13)  # i32 spinup_steps: after magic, version, header size, id, 4 i32
    with pytest.raises(ValueError, match=r"spinup_steps: blob has 13, this coupler 12"):
        b.set_state(bytes(edited))
    assert b.get_state() == whole.get_state()


def test_c_api_equals_pybind11(stream):
    path, meta, _ = stream
    ncol, T, dt = 6, 30, meta["step_seconds"]
    x = drivers(meta, T, ncol)
    x["tsoil"][18, 4] = np.nan
    cc, pc = capi.CapiCoupler(path, ncol, "persistence", chunk_size=4), Coupler(path, ncol, "persistence", chunk_size=4)
    for t in range(T):
        r_c = cc.step(x["tsoil"][t] + 273.15, x["swc"][t], x["precip"][t] / dt)
        r_p = pc.step(x["tsoil"][t], x["swc"][t], x["precip"][t])
        np.testing.assert_array_equal(r_c.status, r_p.status)
        np.testing.assert_allclose(r_c.rsoil, r_p.rsoil, rtol=1e-6)
    assert r_c.status[4] == cp.ACTIVE and np.array_equal(cc.counters, pc.counters)
    # the restart blob moves between the two bindings; K -> degC and mm s-1 -> mm differ by an ulp at most
    np.testing.assert_allclose(blob_state(cc.get_state(), ncol, 8), blob_state(pc.get_state(), ncol, 8), rtol=1e-6)
    pc2 = Coupler(path, ncol, "persistence", chunk_size=4)
    pc2.set_state(cc.get_state())
    assert pc2.get_state() == cc.get_state()


def test_failing_step_is_transactional_and_bad_output_falls_back(stream, model, tmp_path):
    path, meta, _ = stream
    wmeta = model[1]
    raising = tmp_path / "raising.pt"
    sm.export_streaming(RaisingStream(wmeta["envelope"], wmeta["step_seconds"], spinup_steps=2), wmeta, raising, "raising")
    x = drivers(meta, 10, 3)
    c = Coupler(raising, 3, "supplied")
    run(c, x, range(5))
    before, counters = c.get_state(), c.counters.copy()
    with pytest.raises(ValueError, match=r"step: the model's step failed: .*too hot for this test model"):
        c.step(np.array([20.0, 65.0, 20.0]), x["swc"][5], x["precip"][5])
    assert c.get_state() == before and np.array_equal(c.counters, counters) and c.steps_taken == 5

    neg = tmp_path / "negative.pt"
    sm.export_streaming(NegativeOnRain(wmeta["envelope"], wmeta["step_seconds"], spinup_steps=2), wmeta, neg, "negative")
    c = Coupler(neg, 3, "supplied")
    run(c, x, range(5))
    r = c.step(x["tsoil"][5], x["swc"][5], np.array([0.0, 6.0, 0.0]))
    assert list(r.status) == [cp.ACTIVE, cp.BAD_OUTPUT, cp.ACTIVE] and r.resp_scalar[1] == 1.0
    np.testing.assert_allclose(r.rsoil[1], q10_ref(meta, x["tsoil"][5, 1], x["swc"][5, 1]), rtol=1e-13)
    assert "1 column(s) with a non-finite or negative network output" in c.diagnostic
    assert c.counters[cp.BAD_OUTPUT] == 1


@pytest.mark.parametrize("binding", ["py", "capi"])
def test_a_corrupted_model_id_gives_a_readable_message(stream, model, binding):
    """A non-UTF-8 byte in a blob's model_id (window or streaming model) is named as \\xNN, not passed raw
    into the message (which pybind11 and cffi could then not decode)."""
    for path in (stream[0], model[0]):
        c = Coupler(path, 2) if binding == "py" else capi.CapiCoupler(path, 2)
        blob = bytearray(c.get_state())
        blob[16] ^= 0x80
        with pytest.raises((ValueError, capi.CapiError), match=r"state_put: model_id: blob is for model .*\\x[89a-f]") as e:
            c.set_state(bytes(blob))
        assert type(e.value) in (ValueError, capi.CapiError)


def _write_raw(module: torch.nn.Module, meta: dict, path: Path) -> Path:
    """A model file written without export_model's checks (model_id recomputed), as a careless tool might."""
    import io
    scripted = torch.jit.script(module)
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    meta = dict(meta, model_id=model_identity(buf.getvalue())[:16])
    torch.jit.save(scripted, str(path), _extra_files={META_NAME: json.dumps(meta)})
    return path


def test_a_module_that_does_not_stream_as_recorded_is_refused(stream, tmp_path):
    path, meta, _ = stream
    bad = _write_raw(NotStreaming(), meta, tmp_path / "not_streaming.pt")
    msg = r"rsoil_meta.json: streaming: metadata inconsistent with the module: .*no method initial_state"
    with pytest.raises(MetaError, match=msg):
        load_model(bad)
    with pytest.raises(ValueError, match=msg):
        Coupler(bad, 2)
    m9 = json.loads(json.dumps(meta))
    m9["streaming"]["state_size"] = 9
    m9["streaming"]["state_layout"][2]["size"] = 2
    bad = _write_raw(sm.EmaStreamingModel(meta["envelope"], meta["step_seconds"], spinup_steps=12), m9,
                     tmp_path / "size9.pt")
    msg = r"rsoil_meta.json: streaming: metadata inconsistent with the module: initial_state\(2\) returned \[2, 8\]"
    with pytest.raises(MetaError, match=msg):
        load_model(bad)
    with pytest.raises(ValueError, match=msg):
        Coupler(bad, 2)


# ------------------------------------------------------------------------------------------------
# Fuzz (marker fuzz; RSOIL_FUZZ_PROFILE as tests/adversarial): a layout-3 blob with bytes flipped, fields
# edited (checksum recomputed), cut or extended ends in a refusal that leaves the coupler unchanged, or
# is accepted and every later step honours the contract (ACTIVE/EXTRAPOLATING finite and >= 0: a
# corrupted state that makes the network's output NaN gives BAD_OUTPUT).
# ------------------------------------------------------------------------------------------------
_FIELDS = {"ncol": 80, "policy": 84, "strict": 88, "state_size": 92, "spinup_steps": 96, "n_past_vars": 100}
_FUZZ_POOL: dict = {}


def _fnv1a(b: bytes) -> int:
    h = 1469598103934665603
    for x in b:
        h = ((h ^ x) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def _reseal(blob: bytes | bytearray) -> bytes:
    return bytes(blob[:-8]) + struct.pack("=Q", _fnv1a(bytes(blob[:-8])))


@pytest.mark.fuzz
@given(data=st.data())
def test_fuzz_streaming_state_blob(stream, data):
    path, meta, _ = stream
    kind = data.draw(st.sampled_from(["py", "capi"]), label="binding")
    ncol = 3
    if kind not in _FUZZ_POOL:  # one spun-up coupler per binding, reset to its blob before each case
        x = drivers(meta, 20, ncol)
        c = Coupler(path, ncol) if kind == "py" else capi.CapiCoupler(path, ncol)
        for t in range(15):
            c.step(x["tsoil"][t] + (273.15 if kind == "capi" else 0.0), x["swc"][t], x["precip"][t])
        _FUZZ_POOL[kind] = (c, c.get_state(), x)
    c, good, x = _FUZZ_POOL[kind]
    c.set_state(good)
    blob = bytearray(good)
    how = data.draw(st.sampled_from(["flip", "state", "field", "truncate", "extend"]), label="how")
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            blob[data.draw(st.integers(0, len(blob) - 1))] ^= data.draw(st.integers(1, 255))
        if data.draw(st.booleans(), label="reseal"):
            blob = bytearray(_reseal(blob))
    elif how == "state":  # any float in the state: accepted (it is the model's business), resealed
        i = data.draw(st.integers(0, ncol * 8 - 1), label="state index")
        v = data.draw(st.floats(width=32, allow_nan=True, allow_infinity=True), label="value")
        struct.pack_into("=f", blob, HEADER + 4 * ncol + 4 * i, v)
        blob = bytearray(_reseal(blob))
    elif how == "field":
        name = data.draw(st.sampled_from(sorted(_FIELDS) + ["steps_taken", "mask"]), label="field")
        v = data.draw(st.sampled_from([0, 1, -1, 2, 3, 8, 9, 12, 13, 2**31 - 1, -2**31]), label="value")
        off = {"steps_taken": 104, "mask": HEADER}.get(name, _FIELDS.get(name))
        struct.pack_into("=q" if name == "steps_taken" else "=i", blob, off, v)
        blob = bytearray(_reseal(blob))
    elif how == "truncate":
        blob = blob[:data.draw(st.integers(0, len(blob) - 1))]
    else:
        blob = blob + bytes(data.draw(st.integers(1, 64)))
    try:
        c.set_state(bytes(blob))
    except (ValueError, capi.CapiError) as e:
        assert type(e) in (ValueError, capi.CapiError), repr(e)  # not a UnicodeDecodeError of the message
        assert "state_put: " in str(e) and c.get_state() == good
        if isinstance(e, capi.CapiError):
            assert e.code == capi.lib.RSC_E_STATE
        return
    for t in range(15, 18):
        r = c.step(x["tsoil"][t] + (273.15 if kind == "capi" else 0.0), x["swc"][t], x["precip"][t])
        ran = r.status <= cp.EXTRAPOLATING
        assert np.all(np.isfinite(r.rsoil[ran])) and np.all(r.rsoil[ran] >= 0), (r.status, r.rsoil)
        assert np.all((r.status >= 0) & (r.status < len(cp.STATUS_NAMES)))
    taken = c.steps_taken if kind == "py" else c._info()["steps_taken"]
    assert np.all(c.counters >= 0) and c.counters.sum() == taken * ncol


def test_the_load_probe_finds_a_module_whose_rows_round_differently(model, tmp_path):
    """streaming_rows_independent: False for a module whose value depends on its row in a call (then a
    column's values depend on the decomposition), and with chunk_size 0 (not probed)."""
    _, wmeta, _ = model
    path = tmp_path / "row_dependent.pt"
    sm.export_streaming(RowDependent(wmeta["envelope"], wmeta["step_seconds"], spinup_steps=2), wmeta, path, "rowdep")
    with pytest.warns(RuntimeWarning, match="rows_independent is False"):   # a coupler made with it warns
        assert not Coupler(path, 5, "supplied", chunk_size=4).streaming_rows_independent
    same = tmp_path / "ema.pt"
    sm.export_streaming(sm.EmaStreamingModel(wmeta["envelope"], wmeta["step_seconds"], spinup_steps=2), wmeta, same, "ema")
    assert Coupler(same, 5, "supplied", chunk_size=4).streaming_rows_independent
    assert not Coupler(same, 5, "supplied", chunk_size=0).streaming_rows_independent
