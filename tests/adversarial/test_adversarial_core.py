"""Adversarial tests of the C++ core through both bindings (issue 10).

One regression test per finding (named ``test_F<n>_...``), then property-based fuzzing with hypothesis
(marker ``fuzz``): random shapes, dtypes, values, ncol, policies, call orders, model behaviours and
restart-blob edits, through the pybind11 module AND the cffi C API. Every case must end in a clear error
or a per-column status: never a crash, never a non-finite or negative ACTIVE/EXTRAPOLATING value.

Profiles (hypothesis): ``ci`` (default, CI-sized) and ``long`` (>= 100,000 cases in all):
    RSOIL_FUZZ_PROFILE=long python3 -m pytest tests/adversarial/test_adversarial_core.py -m fuzz
"""
from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rsoil_couple.core import capi
from rsoil_couple.core import coupler as cp
from rsoil_couple.core.coupler import Coupler
from rsoil_couple.modelfile.export import META_NAME, MetaError, load_model
from rsoil_couple.modelfile.identity import model_identity

lib, ffi = capi.lib, capi.ffi
K0 = 273.15

# ------------------------------------------------------------------------------------------------
# Helpers (one place): hand-made TorchScript modules with the fixture's metadata, drivers, blob edits.
# ------------------------------------------------------------------------------------------------

#: behaviours of the hand-made module
GOOD, NAN, INF, NEG, MIXED, RAISE3, SLOW = range(7)


class _Adversary(torch.nn.Module):
    """forward(past, future) -> [batch]: a fixed behaviour (see the mode constants above).

    MIXED: NaN where the last past tsoil > 25 degC, -1 where it is < 10 degC, else a positive value.
    RAISE3: raises when called with exactly 3 rows (the dry forward at load uses 2).
    SLOW: a positive value after ~0.1-0.5 s of matrix products (to hold a coupler busy)."""

    def __init__(self, mode: int, past_names: list[str] | None = None, future_names: list[str] | None = None):
        super().__init__()
        self.mode = mode
        if past_names is not None:
            self.past_var_names = list(past_names)
        if future_names is not None:
            self.future_var_names = list(future_names)

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        t = past[:, -1, 0]
        one = torch.ones_like(t)
        if self.mode == 1:
            return one * float("nan")
        if self.mode == 2:
            return one * float("inf")
        if self.mode == 3:
            return one * -3.4e7
        if self.mode == 4:
            y = torch.where(t > 25.0, one * float("nan"), 0.05 * t + 0.5)
            return torch.where(t < 10.0, -one, y)
        if self.mode == 5 and past.size(0) == 3:
            raise RuntimeError("boom: this forward fails on purpose")
        if self.mode == 6:
            a = torch.ones(192, 192)
            for _ in range(400):
                a = torch.tanh(a @ a / 192.0)
            return one * 0.5 + 0.0 * a.sum()
        return one * 0.5 + 0.01 * t.clamp(min=0.0)


def write_module(path: Path, module: torch.nn.Module, meta: dict) -> Path:
    """Script ``module`` and write it with ``meta`` as rsoil_meta.json (no validation: adversarial),
    with the ``model_id`` of this module (F20: the core refuses metadata of another module)."""
    scripted = module if isinstance(module, torch.jit.ScriptModule) else torch.jit.script(module)
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    meta = dict(meta, model_id=model_identity(buf.getvalue())[:16])
    torch.jit.save(scripted, str(path), _extra_files={META_NAME: json.dumps(meta)})
    return path


def names(meta: dict, which: str) -> list[str]:
    return [v["name"] for v in meta[f"{which}_vars"]]


@pytest.fixture(scope="module")
def adversary(model, tmp_path_factory):
    """mode -> path of a hand-made module with the fixture's metadata (and its variable names)."""
    _, meta, _ = model
    d = tmp_path_factory.mktemp("adversary")
    return {mode: write_module(d / f"mode{mode}.pt", _Adversary(mode, names(meta, "past"), names(meta, "future")),
                               meta)
            for mode in (GOOD, NAN, INF, NEG, MIXED, RAISE3, SLOW)}


def drivers(meta: dict, T: int, ncol: int, seed: int = 0) -> dict[str, np.ndarray]:
    """[T, ncol] smooth drivers inside the training envelope, canonical units (degC, m3 m-3, mm)."""
    rng = np.random.default_rng(seed)
    env = meta["envelope"]
    mid = {v: 0.5 * (env[v]["min"] + env[v]["max"]) for v in env}
    half = {v: 0.5 * (env[v]["max"] - env[v]["min"]) for v in env}
    tt = np.arange(T)[:, None]
    day = 86400 / meta["step_seconds"]
    return {"tsoil": mid["tsoil"] + 0.6 * half["tsoil"] * np.sin(2 * np.pi * tt / day + rng.uniform(0, 6, ncol)),
            "swc": mid["swc"] + 0.3 * half["swc"] * np.cos(2 * np.pi * tt / (3 * day)) + 0 * rng.uniform(size=ncol),
            "precip": np.zeros((T, ncol))}


def future_of(x: dict, t: int, F: int) -> np.ndarray:
    """[ncol, F] tsoil of steps t+1 .. t+F (the last row repeated past the end)."""
    T = x["tsoil"].shape[0]
    idx = np.minimum(np.arange(t + 1, t + 1 + F), T - 1)
    return np.ascontiguousarray(x["tsoil"][idx].T)


class Binding:
    """The pybind11 Coupler and the cffi CapiCoupler behind one interface in canonical units."""

    def __init__(self, kind: str, path, ncol: int, policy: str = "supplied", **kw):
        self.kind = kind
        self.c = Coupler(path, ncol, policy, **kw) if kind == "py" else capi.CapiCoupler(path, ncol, policy, **kw)
        self.ncol, self.policy = ncol, policy
        self.dt = self.c.step_seconds if kind == "py" else self.c.info["step_seconds"]
        self.F = self.c.future_steps if kind == "py" else self.c.info["future_steps"]
        self.P = self.c.past_steps if kind == "py" else self.c.info["past_steps"]

    def step(self, t, w, p, fut=None):
        if self.kind == "py":
            return self.c.step(t, w, p, future_tsoil=fut)
        return self.c.step(np.asarray(t, dtype=float) + K0, w, np.asarray(p, dtype=float) / self.dt,
                           future_tsoil_k=None if fut is None else np.asarray(fut, dtype=float) + K0)

    def step_x(self, x, t):
        fut = future_of(x, t, self.F) if self.policy == "supplied" and self.F else None
        return self.step(x["tsoil"][t], x["swc"][t], x["precip"][t], fut)

    @property
    def steps_taken(self) -> int:
        return self.c.steps_taken if self.kind == "py" else self.c._info()["steps_taken"]

    def __getattr__(self, name):  # counters, diagnostic, get_state, set_state, set_mask
        return getattr(self.c, name)


BINDINGS = ["py", "capi"]
#: the errors each binding may raise for a refused call
CALL_ERRORS = (ValueError, TypeError, RuntimeError, capi.CapiError)


def check_result(r, ncol: int) -> None:
    """The contract of every successful step."""
    assert r.status.shape == (ncol,) and r.rsoil.shape == (ncol,)
    assert np.all((r.status >= 0) & (r.status < len(cp.STATUS_NAMES))), r.status
    ran = (r.status == cp.ACTIVE) | (r.status == cp.EXTRAPOLATING)
    assert np.all(np.isfinite(r.rsoil[ran])) and np.all(r.rsoil[ran] >= 0), (r.status, r.rsoil)
    assert np.all(np.isfinite(r.resp_scalar[ran])), r.resp_scalar
    assert np.all(r.resp_scalar[~ran] == 1.0)


# Restart blob layout 2 (csrc/coupler.cpp): header 112 bytes, then i64 steps_taken, i64 counts[8],
# i32 mask[ncol], f64 ring[ncol][cap][3], u64 FNV-1a of all preceding bytes.
OFF = {"layout_version": (8, "<I"), "ncol": (80, "<i"), "policy": (84, "<i"), "strict": (88, "<i"),
       "capacity": (92, "<i"), "past_steps": (96, "<i"), "future_steps": (100, "<i"), "steps_taken": (104, "<q")}
COUNTS_OFF, NCOUNTS = 112, 8
MASK_OFF = COUNTS_OFF + 8 * NCOUNTS


def fnv1a(b: bytes) -> int:
    h = 1469598103934665603
    for x in b:
        h = ((h ^ x) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def reseal(blob: bytes | bytearray) -> bytes:
    """The blob with its checksum recomputed (what an attacker or a careless tool would do)."""
    body = bytes(blob[:-8])
    return body + struct.pack("<Q", fnv1a(body))


def edit(blob: bytes, field: str, value, index: int = 0) -> bytes:
    b = bytearray(blob)
    if field == "counts":
        struct.pack_into("<q", b, COUNTS_OFF + 8 * index, value)
    elif field == "mask":
        struct.pack_into("<i", b, MASK_OFF + 4 * index, value)
    else:
        off, fmt = OFF[field]
        struct.pack_into(fmt, b, off, value)
    return reseal(b)


# ------------------------------------------------------------------------------------------------
# F1: array lengths and shapes are checked against the coupler, in both bindings
# ------------------------------------------------------------------------------------------------

def test_F1_capi_step_checks_every_array_against_the_coupler(model):
    path, meta, _ = model
    F, n = meta["future_steps"], 64
    c = capi.CapiCoupler(path, n, "supplied")
    T, W, P, fut = np.full(n, 290.0), np.full(n, 0.07), np.zeros(n), np.full((n, F), 290.0)
    cases = [
        (dict(tsoil_k=T, swc_m3m3=W[:1], precip_mm_s=P, future_tsoil_k=fut), ValueError, "swc_m3m3"),
        (dict(tsoil_k=T[:1], swc_m3m3=W, precip_mm_s=P, future_tsoil_k=fut), ValueError, "tsoil_k"),
        (dict(tsoil_k=T, swc_m3m3=W, precip_mm_s=np.zeros(n + 1), future_tsoil_k=fut), ValueError, "precip_mm_s"),
        (dict(tsoil_k=T, swc_m3m3=W, precip_mm_s=P, future_tsoil_k=np.zeros(1)), ValueError, "future_tsoil_k"),
        (dict(tsoil_k=T, swc_m3m3=W, precip_mm_s=P, future_tsoil_k=fut.T.copy()), ValueError, "future_tsoil_k"),
        (dict(tsoil_k=T, swc_m3m3=W, precip_mm_s=P, future_tsoil_k=fut[:, :1]), ValueError, "future_tsoil_k"),
        (dict(tsoil_k=T[:, None], swc_m3m3=W, precip_mm_s=P, future_tsoil_k=fut), ValueError, "tsoil_k"),
        (dict(tsoil_k=T, swc_m3m3=W, precip_mm_s=P, future_tsoil_k=fut, future_swc_m3m3=np.zeros(3)),
         ValueError, "future_swc_m3m3"),
        (dict(tsoil_k=T.astype(str), swc_m3m3=W, precip_mm_s=P, future_tsoil_k=fut), TypeError, "tsoil_k"),
    ]
    for kw, exc, name in cases:
        with pytest.raises(exc, match=name):
            c.step(**kw)
    with pytest.raises(ValueError, match="use_model"):
        c.set_mask(np.ones((n, 2), dtype=bool))
    assert c._info()["steps_taken"] == 0 and not c.counters.any()
    # a big coupler and a 1-value future: refused before the C library reads 20000 x F values (SIGSEGV)
    nb = 20000
    big = capi.CapiCoupler(path, nb, "supplied")
    with pytest.raises(ValueError, match="future_tsoil_k"):
        big.step(np.full(nb, 290.0), np.full(nb, 0.07), np.zeros(nb), future_tsoil_k=np.zeros(1))
    big.destroy()
    r = c.step(T, W, P, future_tsoil_k=fut)  # and the right shapes still work
    check_result(r, n)


def test_F1_pybind_step_checks_every_array_against_the_coupler(model):
    path, meta, _ = model
    F, n = meta["future_steps"], 64
    c = Coupler(path, n, "supplied")
    T, W, P, fut = np.full(n, 17.0), np.full(n, 0.07), np.zeros(n), np.full((n, F), 17.0)
    cases = [
        (dict(tsoil=T, swc=W[:1], precip=P, future_tsoil=fut), "swc"),
        (dict(tsoil=T[:1], swc=W, precip=P, future_tsoil=fut), "tsoil"),
        (dict(tsoil=T, swc=W, precip=np.zeros(n + 1), future_tsoil=fut), "precip"),
        (dict(tsoil=T, swc=W, precip=P, future_tsoil=np.zeros(1)), "future_tsoil"),
        (dict(tsoil=T, swc=W, precip=P, future_tsoil=fut.T.copy()), "future_tsoil"),
        (dict(tsoil=T[:, None], swc=W, precip=P, future_tsoil=fut), "tsoil"),
        (dict(tsoil=T.astype(str), swc=W, precip=P, future_tsoil=fut), "tsoil"),
    ]
    for kw, name in cases:
        with pytest.raises((ValueError, TypeError), match=name):
            c.step(**kw)
    with pytest.raises(ValueError, match="mask"):
        c.set_mask(np.ones((n, 2), dtype=bool))
    assert c.steps_taken == 0 and not c.counters.any()
    check_result(c.step(T, W, P, future_tsoil=fut), n)


# ------------------------------------------------------------------------------------------------
# F3: the network's output is checked
# ------------------------------------------------------------------------------------------------

def test_F3_constants():
    assert lib.RSC_STATUS_BAD_OUTPUT == cp.BAD_OUTPUT == 7
    assert lib.RSC_NSTATUS == len(cp.STATUS_NAMES) == 8 and cp.STATUS_NAMES[7] == "BAD_OUTPUT"
    assert lib.RSC_E_BUSY == 10


@pytest.mark.parametrize("kind", BINDINGS)
@pytest.mark.parametrize("mode", [NAN, INF, NEG])
def test_F3_nan_network_output_falls_back(model, adversary, kind, mode):
    path, meta, _ = model
    ncol = 4
    c = Binding(kind, adversary[mode], ncol)
    x = drivers(meta, c.P + 5, ncol)
    for t in range(c.P + 5):
        r = c.step_x(x, t)
        check_result(r, ncol)
    assert np.all(r.status == cp.BAD_OUTPUT), r.status
    q10 = Binding(kind, adversary[GOOD], ncol)
    q10.set_mask(np.zeros(ncol, dtype=bool))
    for t in range(c.P + 5):
        rq = q10.step_x(x, t)
    np.testing.assert_array_equal(r.rsoil, rq.rsoil)  # the Q10 fallback, exactly
    assert np.all(np.isfinite(r.rsoil)) and np.all(r.resp_scalar == 1.0)
    assert c.counters[cp.BAD_OUTPUT] == 6 * ncol
    assert "BAD_OUTPUT" in c.diagnostic and "column 0 rsoil =" in c.diagnostic, c.diagnostic


@pytest.mark.parametrize("kind", BINDINGS)
def test_F3_bad_output_is_per_column(model, adversary, kind):
    path, meta, _ = model
    c = Binding(kind, adversary[MIXED], 3)
    x = drivers(meta, c.P + 1, 3)
    x["tsoil"][:, 0], x["tsoil"][:, 1], x["tsoil"][:, 2] = 20.0, 28.0, 8.0  # ok, NaN, negative
    for t in range(c.P + 1):
        r = c.step_x(x, t)
    check_result(r, 3)
    assert list(r.status) == [cp.ACTIVE, cp.BAD_OUTPUT, cp.BAD_OUTPUT], r.status
    assert r.rsoil[0] == pytest.approx(0.05 * 20 + 0.5, rel=1e-6)
    assert "2 column(s) with a non-finite or negative network output" in c.diagnostic
    assert "column 1 rsoil = nan" in c.diagnostic


# ------------------------------------------------------------------------------------------------
# F4: concurrent use of one coupler is refused (RSC_E_BUSY), never raced
# ------------------------------------------------------------------------------------------------

def _hammer(call, n_threads=2, n_calls=400):
    ok, busy, other = [0] * n_threads, [0] * n_threads, []

    def run(i):
        for _ in range(n_calls):
            try:
                call()
                ok[i] += 1
            except cp.BusyError:
                busy[i] += 1
            except capi.CapiError as e:
                if e.code == lib.RSC_E_BUSY and "in use by another thread" in e.message:
                    busy[i] += 1
                else:
                    other.append(e)
            except Exception as e:  # noqa: BLE001 - collected and asserted empty below
                other.append(e)

    th = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    return sum(ok), sum(busy), other


@pytest.mark.parametrize("kind", BINDINGS)
def test_F4_concurrent_steps_are_refused_not_raced(model, kind):
    path, meta, _ = model
    ncol = 32
    c = Binding(kind, path, ncol)
    x = drivers(meta, 2, ncol)
    fut = future_of(x, 0, c.F)
    n_ok, n_busy, other = _hammer(lambda: c.step(x["tsoil"][0], x["swc"][0], x["precip"][0], fut))
    assert other == []
    assert n_ok + n_busy == 800
    assert c.steps_taken == n_ok, (c.steps_taken, n_ok, n_busy)
    assert int(c.counters.sum()) == n_ok * ncol


@pytest.mark.parametrize("kind", BINDINGS)
def test_F4_calls_during_a_step_get_busy_and_change_nothing(model, adversary, kind):
    """Deterministic: a slow forward holds the coupler; every other entry point is refused meanwhile
    (C API: destroy too, and the handle stays valid)."""
    path, meta, _ = model
    ncol = 2
    c = Binding(kind, adversary[SLOW], ncol)
    x = drivers(meta, c.P + 4, ncol)
    for t in range(c.P - 1):
        c.step_x(x, t)  # spin-up: no forward
    errors: list = []

    def worker():
        for t in range(c.P - 1, c.P + 3):
            while True:
                try:
                    c.step_x(x, t)
                    break
                except cp.BusyError:
                    time.sleep(0.001)
                except capi.CapiError as e:
                    if e.code != lib.RSC_E_BUSY:
                        errors.append(e)
                        return
                    time.sleep(0.001)

    th = threading.Thread(target=worker)
    th.start()
    refused = set()
    deadline = time.monotonic() + 120
    probes = {"counters": lambda: c.counters, "diagnostic": lambda: c.diagnostic, "get_state": c.get_state,
              "set_mask": lambda: c.set_mask(np.ones(ncol, dtype=bool)), "steps_taken": lambda: c.steps_taken,
              "step": lambda: c.step_x(x, 0)}
    while th.is_alive() and time.monotonic() < deadline:
        for name, probe in probes.items():
            try:
                probe()
            except cp.BusyError:
                refused.add(name)
            except capi.CapiError as e:
                if e.code != lib.RSC_E_BUSY:
                    errors.append(e)
                    continue
                refused.add(name)
                if name == "counters" and "destroy" not in refused:  # the worker is inside its forward
                    h = ffi.new("rsc_coupler **", c.c.handle)
                    rc = lib.rsc_coupler_destroy(h)
                    assert rc == lib.RSC_E_BUSY and h[0] != ffi.NULL, rc  # refused; handle still valid
                    assert "in use by another thread" in capi.last_error()
                    refused.add("destroy")
    th.join()
    assert errors == []
    assert refused >= set(probes) | ({"destroy"} if kind == "capi" else set()), refused
    # nothing a refused call did shows: counts and step count agree
    assert int(c.counters.sum()) == c.steps_taken * ncol and c.steps_taken >= c.P + 3


# ------------------------------------------------------------------------------------------------
# F5: the module names its inputs; order must match the metadata
# ------------------------------------------------------------------------------------------------

def test_F5_metadata_in_another_order_than_the_module_is_refused(model, tmp_path):
    path, meta, module = model
    assert list(module.past_var_names) == names(meta, "past")  # export wrote the names
    assert list(module.future_var_names) == names(meta, "future")
    swapped = dict(meta)
    pv = list(meta["past_vars"])
    swapped["past_vars"] = [pv[1], pv[0], *pv[2:]]  # swc, tsoil, precip: not what the network reads
    bad = write_module(tmp_path / "swapped.pt", module, swapped)
    for make in (lambda: Coupler(bad, 3), lambda: capi.CapiCoupler(bad, 3)):
        with pytest.raises((ValueError, capi.CapiError)) as e:
            make()
        msg = str(e.value)
        assert "past_vars" in msg and "[swc, tsoil, precip]" in msg and "[tsoil, swc, precip]" in msg, msg
        if isinstance(e.value, capi.CapiError):
            assert e.value.code == lib.RSC_E_METADATA
    with pytest.raises(MetaError, match="past_vars.*metadata lists.*module takes"):
        load_model(bad)
    # a module naming its future input differently is refused the same way
    m2 = write_module(tmp_path / "fut.pt", _Adversary(GOOD, names(meta, "past"), ["swc"]), meta)
    with pytest.raises(capi.CapiError, match=r"future_vars.*\[tsoil\].*\[swc\]"):
        capi.CapiCoupler(m2, 2)


def test_F5_modules_without_names_still_load(model, tmp_path):
    """Files written before the attributes existed: trusted on the metadata's order (docs/model_format.md)."""
    path, meta, _ = model
    legacy = write_module(tmp_path / "legacy.pt", _Adversary(GOOD), meta)
    mod, _ = load_model(legacy)
    assert not hasattr(mod, "past_var_names")
    for kind in BINDINGS:
        c = Binding(kind, legacy, 2)
        x = drivers(meta, c.P, 2)
        for t in range(c.P):
            r = c.step_x(x, t)
        assert np.all(r.status == cp.ACTIVE)


# ------------------------------------------------------------------------------------------------
# F6: a forward that raises is RSC_E_MODEL with one line, and the step is transactional
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", BINDINGS)
def test_F6_forward_raising_is_model_error_and_leaves_state_unchanged(model, adversary, kind):
    path, meta, _ = model
    c = Binding(kind, adversary[RAISE3], 3)
    x = drivers(meta, c.P + 6, 3)
    x["tsoil"][c.P + 1, 1] = 40.0  # outside the envelope: EXTRAPOLATING (still runs) and a diagnostic
    for t in range(c.P - 1):
        c.step_x(x, t)
    for t in (c.P - 1, c.P - 1):  # the first network step, twice: refused, state as before
        before, diag = c.get_state(), c.diagnostic
        with pytest.raises((ValueError, capi.CapiError)) as e:
            c.step_x(x, t)
        msg = str(e.value)
        assert "boom: this forward fails on purpose" in msg and "\n" not in msg, msg
        assert "forward failed" in msg
        if kind == "capi":
            assert e.value.code == lib.RSC_E_MODEL
        assert c.get_state() == before  # byte for byte
        assert c.diagnostic == diag and c.steps_taken == c.P - 1
    # masking a column (batch 2) lets the step through; the state then moves on as usual
    c.set_mask(np.array([True, True, False]))
    for t in range(c.P - 1, c.P + 3):
        r = c.step_x(x, t)
        check_result(r, 3)
    assert "column 1 tsoil = 40 degC outside the training envelope" in c.diagnostic, c.diagnostic
    assert r.status[1] == cp.EXTRAPOLATING
    c.set_mask(np.ones(3, dtype=bool))  # 3 rows again: the forward raises; nothing changes
    before, diag, counts = c.get_state(), c.diagnostic, c.counters
    with pytest.raises((ValueError, capi.CapiError), match="boom"):
        c.step_x(x, c.P + 3)
    assert c.get_state() == before and c.diagnostic == diag
    np.testing.assert_array_equal(c.counters, counts)


# ------------------------------------------------------------------------------------------------
# F7: the diagnostic names column, variable, window, offset and value
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", BINDINGS)
def test_F7_diagnostic_names_bad_future_window_value(model, kind):
    path, meta, _ = model
    c = Binding(kind, path, 4)
    x = drivers(meta, c.P + 3, 4)
    for t in range(c.P - 1):
        c.step_x(x, t)
    fut = future_of(x, c.P - 1, c.F)
    fut[2, 5] = np.nan
    r = c.step(x["tsoil"][c.P - 1], x["swc"][c.P - 1], x["precip"][c.P - 1], fut)
    assert list(r.status) == [cp.ACTIVE, cp.ACTIVE, cp.MISSING, cp.ACTIVE], r.status
    d = c.diagnostic
    assert "1 column(s)" in d and "column 2 tsoil = nan" in d and "is NaN" in d, d
    assert "supplied future window at offset +6" in d and "[2][5]" in d, d
    # a temperature unit mix-up in the future window: named with the hint
    fut = future_of(x, c.P, c.F)
    if kind == "py":
        fut[1, 0] += K0  # kelvin where degC is declared
        hint = "temperature in K given where degC is declared"
    else:
        fut[1, 0] -= K0  # degC where K is expected (the C boundary adds nothing: tsoil_k - 273.15)
        hint = "temperature in degC given where K is expected"
    r = c.step(x["tsoil"][c.P], x["swc"][c.P], x["precip"][c.P], fut)
    assert r.status[1] == cp.IMPOSSIBLE
    d = c.diagnostic
    assert "column 1 tsoil =" in d and hint in d and "future window at offset +1" in d, d


@pytest.mark.parametrize("policy", ["lagged", "persistence", "supplied"])
def test_F7_diagnostic_names_bad_past_window_value(model, policy):
    """A bad value that has left the current step still explains the status while it is in the window."""
    path, meta, _ = model
    c = Binding("py", path, 2, policy)
    spin = c.c.spinup_steps
    x = drivers(meta, spin + 10, 2)
    bad = spin + 2
    x["swc"][bad, 1] = 7.0  # percent-like: impossible
    for t in range(spin + 6):
        r = c.step_x(x, t)
    d = c.diagnostic
    if r.status[1] == cp.IMPOSSIBLE:
        assert "column 1 swc = 7 m3 m-3" in d and f"(step {bad})" in d and "window" in d, d
    else:
        assert d == ""  # lagged/persistence: swc is not read in this window
    assert r.status[0] == cp.ACTIVE


# ------------------------------------------------------------------------------------------------
# F8: every field of a restart blob is range-checked, not only the checksum
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", BINDINGS)
def test_F8_edited_blob_fields_with_recomputed_checksum_are_refused(model, kind):
    path, meta, _ = model
    ncol = 3
    c = Binding(kind, path, ncol)
    x = drivers(meta, 10, ncol)
    for t in range(5):
        c.step_x(x, t)
    good = c.get_state()
    assert struct.unpack_from("<I", good, 8)[0] == 2  # layout version 2
    assert struct.unpack_from("<q", good, OFF["steps_taken"][0])[0] == 5
    assert sum(struct.unpack_from("<8q", good, COUNTS_OFF)) == 5 * ncol
    cases = [
        (edit(good, "steps_taken", 2**63 - 1), "steps_taken"),
        (edit(good, "steps_taken", -7), "steps_taken"),
        (edit(good, "steps_taken", 2**53 + 1), "steps_taken"),
        (edit(good, "counts", -1, 3), r"counts\[3\]"),
        (edit(good, "counts", 2**62, 0), "counts"),
        (edit(good, "counts", 1, 7), "counts"),  # sum no longer steps_taken * ncol
        (edit(good, "mask", 7, 1), r"mask\[1\]"),
        (edit(good, "mask", -1, 0), r"mask\[0\]"),
        (edit(good, "strict", 2), "strict"),
        (edit(good, "capacity", 1), "capacity"),
        (edit(good, "layout_version", 99), "layout_version"),
    ]
    # an older (layout 1) blob: 7 counters
    b1 = bytearray(good[:COUNTS_OFF + 8 * 7] + good[COUNTS_OFF + 8 * 8:])
    struct.pack_into("<I", b1, 8, 1)
    cases.append((reseal(b1), "layout_version: 1 is an older layout"))
    other = Binding(kind, path, ncol)
    for t in range(7):
        other.step_x(x, t)
    before = other.get_state()
    for blob, field in cases:
        with pytest.raises((ValueError, capi.CapiError), match=field) as e:
            other.set_state(blob)
        if kind == "capi":
            assert e.value.code == lib.RSC_E_STATE
        assert other.get_state() == before
    # the largest allowed count, consistent counters: accepted, and stepping on works
    huge = edit(edit(good, "steps_taken", 2**53), "counts", 2**53 * ncol, 0)
    for i in range(1, NCOUNTS):
        huge = edit(huge, "counts", 0, i)
    other.set_state(huge)
    assert other.steps_taken == 2**53
    for t in range(3):
        check_result(other.step_x(x, t), ncol)
    other.set_state(good)
    assert other.get_state() == good


# ------------------------------------------------------------------------------------------------
# The C test program with the adversarial models (F3/F6/F8 at the C level), when it is built
# ------------------------------------------------------------------------------------------------

def _capi_c_binary(repo_root: Path) -> Path | None:
    p = os.environ.get("RSOIL_TEST_CAPI_C")
    cands = [Path(p)] if p else [repo_root / "build" / "dev" / "test_capi_c"]
    return next((c for c in cands if c.is_file()), None)


def test_capi_c_program_with_adversarial_models(model, adversary, repo_root):
    exe = _capi_c_binary(repo_root)
    if exe is None:
        pytest.skip("test_capi_c not built (build/dev/test_capi_c or $RSOIL_TEST_CAPI_C)")
    r = subprocess.run([str(exe), str(model[0]), str(adversary[NAN]), str(adversary[RAISE3])],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "adversarial models: checked" in r.stdout, r.stdout


# ------------------------------------------------------------------------------------------------
# Property-based fuzzing (marker fuzz)
# ------------------------------------------------------------------------------------------------

# profiles "ci" (default) and "long" are registered in tests/conftest.py
FUZZ = settings.get_profile(os.environ.get("RSOIL_FUZZ_PROFILE", "ci"))
#: RSOIL_FUZZ_PROGRESS=FILE: append "test cases seconds" every 1000 cases (to follow a long run)
_PROGRESS = os.environ.get("RSOIL_FUZZ_PROGRESS")
_COUNT: dict = {}
_T0 = time.monotonic()


def _progress(name: str) -> None:
    _COUNT[name] = _COUNT.get(name, 0) + 1
    if _PROGRESS and _COUNT[name] % 1000 == 0:
        with open(_PROGRESS, "a") as f:
            f.write(f"{name} {_COUNT[name]} {time.monotonic() - _T0:.0f}\n")

_POOL: dict = {}


def _coupler(kind, path, ncol, policy, strict, meta):
    """A cached coupler per setup, spun up with good drivers (so fuzzed steps reach the network)."""
    key = (kind, str(path), ncol, policy, strict)
    if key not in _POOL:
        c = Binding(kind, path, ncol, policy, strict=strict)
        spin = c.c.spinup_steps if kind == "py" else c.c.info["spinup_steps"]
        x = drivers(meta, spin + 1, ncol)
        for t in range(spin):
            c.step_x(x, t)
        _POOL[key] = (c, c.get_state())
    return _POOL[key]


SPECIAL = [np.nan, np.inf, -np.inf, 1e300, -1e300, -1.0, 0.0, 1e-300, 300.0, -273.15, 35.0, 1.5, 5e-324]


@st.composite
def values(draw, shape):
    n = int(np.prod(shape)) if shape else 1
    base = draw(st.sampled_from(["good", "special", "random"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if base == "good":
        a = rng.uniform(0.05, 0.09, n) if draw(st.booleans()) else rng.uniform(5, 30, n)
    elif base == "random":
        a = rng.normal(0, 10 ** draw(st.integers(-3, 300)), n)
    else:
        a = rng.choice(SPECIAL, n)
    k = draw(st.integers(0, 3))  # a few specials sprinkled into good values
    for _ in range(k):
        if n:
            a[rng.integers(n)] = draw(st.sampled_from(SPECIAL))
    dtype = draw(st.sampled_from(["float64", "float64", "float32", "int64", "bool", "float16"]))
    with np.errstate(all="ignore"):
        a = a.astype(dtype)
    return a.reshape(shape)


@st.composite
def array_arg(draw, ncol, F, future=False):
    """Usually the right shape, sometimes a wrong one, None, a list, or a non-numeric array."""
    good = (ncol, F) if future else (ncol,)
    choice = draw(st.sampled_from(["ok"] * 8 + ["shape", "none", "list", "str", "empty", "3d"]))
    if choice == "ok":
        return draw(values(good))
    if choice == "shape":
        return draw(values((draw(st.integers(0, ncol + 2)),) if draw(st.booleans()) else
                           (draw(st.integers(0, ncol + 1)), draw(st.integers(0, F + 2)))))
    if choice == "none":
        return None
    if choice == "list":
        return draw(values(good)).tolist()
    if choice == "str":
        return np.array(["x"] * ncol)
    if choice == "empty":
        return np.empty(0)
    return np.zeros((ncol, 1, 1))


def _op_step(c, data, ncol, F):
    args = [data.draw(array_arg(ncol, F), label=n) for n in ("tsoil", "swc", "precip")]
    fut = data.draw(st.one_of(st.none(), array_arg(ncol, F, future=True)), label="future") \
        if F else None
    if data.draw(st.booleans(), label="future given") and c.policy == "supplied" and F:
        fut = data.draw(array_arg(ncol, F, future=True), label="future2")
    before = c.steps_taken
    try:
        if c.kind == "py":
            r = c.c.step(*args, future_tsoil=fut)
        else:  # raw values at the C boundary (whatever units: bad ones are statuses, not crashes)
            r = c.c.step(*args, future_tsoil_k=fut)
    except CALL_ERRORS as e:
        assert c.steps_taken == before, e
        if isinstance(e, capi.CapiError):
            assert e.code in (lib.RSC_E_INVALID_ARGUMENT, lib.RSC_E_NULL_POINTER), e
        assert str(e)
        return
    check_result(r, ncol)
    assert c.steps_taken == before + 1


@FUZZ
@pytest.mark.fuzz
@given(data=st.data())
def test_fuzz_step_inputs_and_call_orders(model, adversary, data):
    _progress("step_inputs")
    path, meta, _ = model
    kind = data.draw(st.sampled_from(BINDINGS), label="binding")
    which = data.draw(st.sampled_from(["trained", GOOD, NAN, INF, NEG, MIXED]), label="model")
    mpath = path if which == "trained" else adversary[which]
    ncol = data.draw(st.sampled_from([1, 2, 3, 5]), label="ncol")
    policy = data.draw(st.sampled_from(["supplied", "lagged", "persistence"]), label="policy")
    strict = data.draw(st.booleans(), label="strict")
    c, spun = _coupler(kind, mpath, ncol, policy, strict, meta)
    if data.draw(st.booleans(), label="restart spun-up state"):
        c.set_state(spun)
    F = c.F
    for _ in range(data.draw(st.integers(1, 6), label="n ops")):
        op = data.draw(st.sampled_from(["step"] * 5 + ["mask", "state", "counters"]), label="op")
        if op == "step":
            _op_step(c, data, ncol, F)
        elif op == "mask":
            m = data.draw(st.one_of(values((ncol,)), values((ncol + 1,)), st.just(np.zeros((ncol, 2)))), label="mask")
            try:
                with np.errstate(all="ignore"):  # Coupler.set_mask casts NaN to int: not this test's business
                    c.set_mask(m)
            except CALL_ERRORS as e:
                assert str(e)
        elif op == "state":
            s = c.get_state()
            c.set_state(s)
            assert c.get_state() == s
        else:
            counts = c.counters
            assert counts.shape == (8,) and np.all(counts >= 0) and counts.sum() == c.steps_taken * ncol


@FUZZ
@pytest.mark.fuzz
@given(data=st.data())
def test_fuzz_state_blob_flips_and_field_edits(model, data):
    _progress("state_blob")
    path, meta, _ = model
    kind = data.draw(st.sampled_from(BINDINGS), label="binding")
    ncol = data.draw(st.sampled_from([1, 3]), label="ncol")
    policy = data.draw(st.sampled_from(["supplied", "lagged"]), label="policy")
    c, spun = _coupler(kind, path, ncol, policy, False, meta)
    c.set_state(spun)
    blob = bytearray(spun)
    how = data.draw(st.sampled_from(["flip", "field", "truncate", "extend"]), label="how")
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] ^= data.draw(st.integers(1, 255))
        if data.draw(st.booleans(), label="reseal"):
            blob = bytearray(reseal(blob))
    elif how == "field":
        field = data.draw(st.sampled_from([*OFF, "counts", "mask"]), label="field")
        big = st.sampled_from([0, 1, -1, 2, 7, 2**31 - 1, -2**31, 2**53, 2**53 + 1, 2**62, 2**63 - 1, -2**63])
        v = data.draw(big, label="value")
        idx = data.draw(st.integers(0, (NCOUNTS if field == "counts" else ncol) - 1))
        fmt = "<q" if field in ("counts", "steps_taken") else OFF.get(field, (0, "<i"))[1]
        lo, hi = (0, 2**32 - 1) if fmt == "<I" else (-2**63, 2**63 - 1) if fmt == "<q" else (-2**31, 2**31 - 1)
        assume(lo <= v <= hi)
        blob = bytearray(edit(bytes(blob), field, v, idx))
    elif how == "truncate":
        blob = blob[:data.draw(st.integers(0, len(blob) - 1))]
    else:
        blob = blob + bytes(data.draw(st.integers(1, 64)))
    before = c.get_state()
    try:
        c.set_state(bytes(blob))
    except (ValueError, capi.CapiError) as e:
        if isinstance(e, capi.CapiError):
            assert e.code == lib.RSC_E_STATE, e
        assert c.get_state() == before
        return
    # accepted (an edit that stays consistent): stepping on must still honour the contract
    x = drivers(meta, 3, ncol)
    for t in range(3):
        check_result(c.step_x(x, t), ncol)
    counts = c.counters
    assert np.all(counts >= 0) and counts.sum() == c.steps_taken * ncol


if __name__ == "__main__":  # the RSOIL_SANITIZE CTest: python3 tests/adversarial/test_adversarial_core.py MODEL OUTDIR
    import sys

    _, _meta = load_model(sys.argv[1])
    _out = Path(sys.argv[2])
    _out.mkdir(parents=True, exist_ok=True)
    for _mode, _name in ((NAN, "nan.pt"), (RAISE3, "raise3.pt")):
        write_module(_out / _name, _Adversary(_mode, names(_meta, "past"), names(_meta, "future")), _meta)
    print(f"wrote {_out}/nan.pt, {_out}/raise3.pt")
