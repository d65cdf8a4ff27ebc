"""The C API through cffi (ABI mode): the exact ABI a Fortran host sees. Agreement with the pybind11
Coupler and the TorchScript module, units at the boundary (K, mm s-1), NULL pointers, stale handles,
error codes and messages, restart blobs shared with the pybind11 Coupler."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import rsoil_couple
from rsoil_couple import Coupler
from rsoil_couple.core import capi
from rsoil_couple.core import coupler as cp

ffi, lib = capi.ffi, capi.lib
K = 273.15


def drivers(meta, ntime, ncol):
    env = meta["envelope"]
    t, c = np.arange(ntime)[:, None], np.arange(ncol)[None, :]
    tm = 0.5 * (env["tsoil"]["min"] + env["tsoil"]["max"])
    ta = 0.25 * (env["tsoil"]["max"] - env["tsoil"]["min"])
    sm = 0.5 * (env["swc"]["min"] + env["swc"]["max"])
    return {"tsoil": tm + ta * np.sin(2 * np.pi * (t / 48 + c / ncol)),
            "swc": sm + 0.0 * t + 0.001 * (c % 5),
            "precip": np.where((t + c) % 13 == 0, 0.3 * env["precip"]["max"], 0.0) + 0.0 * c}


def step_both(cc, pc, x, t, F, dt):
    """Same step through the C API (K, mm s-1) and pybind11 (degC, mm per step)."""
    fut_c = np.ascontiguousarray(x["tsoil"][t + 1:t + 1 + F].T)
    r_c = cc.step(x["tsoil"][t] + K, x["swc"][t], x["precip"][t] / dt, future_tsoil_k=fut_c + K)
    r_p = pc.step(x["tsoil"][t], x["swc"][t], x["precip"][t], future_tsoil=fut_c)
    return r_c, r_p


def test_header_parses_and_constants_match():
    assert lib.RSC_NSTATUS == len(cp.STATUS_NAMES) == 8
    assert [lib.RSC_STATUS_ACTIVE, lib.RSC_STATUS_EXTRAPOLATING, lib.RSC_STATUS_SPINUP, lib.RSC_STATUS_MISSING,
            lib.RSC_STATUS_IMPOSSIBLE, lib.RSC_STATUS_MASKED, lib.RSC_STATUS_EXTRAPOLATION_FALLBACK] == list(range(7))
    assert (lib.RSC_POLICY_LAGGED, lib.RSC_POLICY_PERSISTENCE, lib.RSC_POLICY_SUPPLIED) == (0, 1, 2)
    assert ffi.string(lib.rsc_version()).decode() == rsoil_couple.__version__


@pytest.mark.parametrize("ncol", [1, 7, 1000])
def test_c_api_agrees_with_pybind11_and_torchscript(model, ncol):
    path, meta, module = model
    P, F, dt = meta["past_steps"], meta["future_steps"], meta["step_seconds"]
    x = drivers(meta, P + 2 + F, ncol)
    cc, pc = capi.CapiCoupler(path, ncol), Coupler(path, ncol)
    assert cc.info["spinup_steps"] == P and cc.info["future_vars_mask"] == 1 and cc.model_id == pc.model_id
    for t in range(P + 2):
        r_c, r_p = step_both(cc, pc, x, t, F, dt)
        np.testing.assert_array_equal(r_c.status, r_p.status)
    # reference: the TorchScript module called directly on the last step's windows
    t = P + 1
    past = np.stack([x[v][t - P + 1:t + 1].T for v in ("tsoil", "swc", "precip")], axis=-1)
    fut = x["tsoil"][t + 1:t + 1 + F].T[:, :, None]
    with torch.no_grad():
        ref = module(torch.from_numpy(past).float(), torch.from_numpy(np.ascontiguousarray(fut)).float()).double().numpy()
    assert np.all(r_c.status == cp.ACTIVE)
    assert np.max(np.abs(r_c.rsoil - ref) / np.abs(ref)) <= 1e-5
    assert np.max(np.abs(r_c.rsoil - r_p.rsoil) / np.abs(r_p.rsoil)) <= 1e-5
    np.testing.assert_array_equal(r_c.rsoil_gc, r_c.rsoil * 12.011e-6)


def test_restart_blob_moves_between_c_api_and_pybind11(model):
    path, meta, _ = model
    P, F, dt = meta["past_steps"], meta["future_steps"], meta["step_seconds"]
    x = drivers(meta, 2 * P + F, 3)
    cc, pc = capi.CapiCoupler(path, 3), Coupler(path, 3)
    for t in range(P):
        step_both(cc, pc, x, t, F, dt)
    # the same layout from both bindings; a C blob continues in a pybind11 coupler
    fresh = Coupler(path, 3)
    fresh.set_state(cc.get_state())
    for t in range(P, 2 * P):
        r_c, r_p = step_both(cc, pc, x, t, F, dt)
        r_f = fresh.step(x["tsoil"][t], x["swc"][t], x["precip"][t], future_tsoil=x["tsoil"][t + 1:t + 1 + F].T)
        np.testing.assert_array_equal(r_f.rsoil, r_p.rsoil)
        np.testing.assert_array_equal(r_f.status, r_c.status)
    np.testing.assert_array_equal(cc.counters, fresh.counters)


def test_step_after_destroy_and_double_destroy(model):
    path, meta, _ = model
    c = capi.CapiCoupler(path, 2, "lagged")
    stale = c.handle
    c.destroy()
    assert c.handle == ffi.NULL
    c.destroy()  # twice: no error
    out = np.zeros(2)
    st = np.zeros(2, dtype=np.int32)
    d = ffi.cast("double *", out.ctypes.data)
    rc = lib.rsc_coupler_step(stale, 2, d, d, d, ffi.NULL, ffi.NULL, ffi.NULL, d, d, d,
                              ffi.cast("int *", st.ctypes.data))
    assert rc == lib.RSC_E_BAD_HANDLE
    assert "invalid handle (destroyed or never created)" in capi.last_error()
    h = ffi.new("rsc_coupler **", stale)
    assert lib.rsc_coupler_destroy(h) == lib.RSC_E_BAD_HANDLE and h[0] == ffi.NULL
    assert lib.rsc_coupler_counters(ffi.NULL, ffi.new("long long[8]")) == lib.RSC_E_BAD_HANDLE


@pytest.mark.parametrize("arg", ["tsoil_k", "swc_m3m3", "precip_mm_s", "rsoil_umol_m2_s", "rsoil_gc_m2_s",
                                 "resp_scalar", "status"])
def test_null_pointers_name_the_argument(model, arg):
    path, meta, _ = model
    c = capi.CapiCoupler(path, 2, "lagged")
    bufs = {a: np.full(2, 290.0) for a in ("tsoil_k", "swc_m3m3", "precip_mm_s", "rsoil_umol_m2_s",
                                          "rsoil_gc_m2_s", "resp_scalar")}
    ptrs = {a: ffi.cast("double *", b.ctypes.data) for a, b in bufs.items()}
    st = np.zeros(2, dtype=np.int32)
    ptrs["status"] = ffi.cast("int *", st.ctypes.data)
    ptrs[arg] = ffi.NULL
    rc = lib.rsc_coupler_step(c.handle, 2, ptrs["tsoil_k"], ptrs["swc_m3m3"], ptrs["precip_mm_s"], ffi.NULL,
                              ffi.NULL, ffi.NULL, ptrs["rsoil_umol_m2_s"], ptrs["rsoil_gc_m2_s"],
                              ptrs["resp_scalar"], ptrs["status"])
    assert rc == lib.RSC_E_NULL_POINTER
    assert f"{arg} is NULL" in capi.last_error()
    assert c.info["steps_taken"] == 0


def test_error_codes_and_messages(model, tmp_path):
    path, meta, _ = model
    F = meta["future_steps"]
    with pytest.raises(capi.CapiError, match="model file not found or unreadable: .*missing.pt") as e:
        capi.CapiCoupler(tmp_path / "missing.pt", 3)
    assert e.value.code == lib.RSC_E_FILE
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\0" * 100)
    with pytest.raises(capi.CapiError, match="not a TorchScript model file") as e:
        capi.CapiCoupler(junk, 3)
    assert e.value.code == lib.RSC_E_MODEL
    out = ffi.new("rsc_coupler **")
    assert lib.rsc_coupler_create(ffi.NULL, 3, 2, 0, 0, 0, out) == lib.RSC_E_NULL_POINTER
    assert "model_path is NULL" in capi.last_error()
    assert lib.rsc_coupler_create(str(path).encode(), 3, 9, 0, 0, 0, out) == lib.RSC_E_INVALID_ARGUMENT
    assert "policy must be" in capi.last_error() and out[0] == ffi.NULL
    c = capi.CapiCoupler(path, 7)
    # the C library's own ncol check (CapiCoupler.step checks shapes before calling it: see
    # tests/test_adversarial_core.py::test_F1_*), called raw with arrays of 5 values
    d5, i5 = ffi.new("double[]", 5 * max(F, 1)), ffi.new("int[]", 5)
    assert lib.rsc_coupler_step(c.handle, 5, d5, d5, d5, d5, ffi.NULL, ffi.NULL, d5, d5, d5, i5) \
        == lib.RSC_E_INVALID_ARGUMENT
    assert "ncol = 5 but the coupler was created for 7 columns" in capi.last_error()
    with pytest.raises(capi.CapiError, match="layout_version|magic|too short"):
        c.set_state(b"RSCSTATE" + b"\x09" * 200)
    # the last error is per thread: another thread sees its own (empty) message
    import threading
    seen = []
    th = threading.Thread(target=lambda: seen.append(lib.rsc_last_error(ffi.NULL, 0)))
    th.start()
    th.join()
    assert seen == [0] and lib.rsc_last_error(ffi.NULL, 0) > 0


def test_kelvin_boundary_flags_celsius_given_as_kelvin(model):
    """At the C boundary temperatures are K: a host passing degC gives IMPOSSIBLE (below -50 degC)."""
    path, meta, _ = model
    c = capi.CapiCoupler(path, 2, "persistence")
    r = c.step(np.array([293.15, 20.0]), np.array([0.07, 0.07]), np.array([0.0, -1e-4]))
    assert list(r.status) == [cp.SPINUP, cp.SPINUP]
    assert np.isfinite(r.rsoil[0]) and np.isnan(r.rsoil[1])
    assert "column 1 tsoil = -253.15 degC" in c.diagnostic
    assert "degC given where K is expected" in c.diagnostic


def test_rows_independent_through_the_c_api(model):
    """rsc_coupler_rows_independent agrees with pybind11's streaming_rows_independent: probed with
    chunk_size > 0 for a streaming file (the shipped drylands-v2: True) and a window model (the test LSTM:
    True), not with chunk_size 0 (False)."""
    shipped = capi.CapiCoupler("drylands-v2", 100, "persistence", chunk_size=64)
    assert shipped.rows_independent is True
    assert shipped.rows_independent == Coupler("drylands-v2", 100, "persistence", chunk_size=64).streaming_rows_independent
    window = capi.CapiCoupler(model[0], 3, chunk_size=64)
    assert window.rows_independent is True
    assert window.rows_independent == Coupler(model[0], 3, "persistence", chunk_size=64).streaming_rows_independent
    assert capi.CapiCoupler(model[0], 3, chunk_size=0).rows_independent is False
