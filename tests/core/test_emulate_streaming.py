"""rsoil_couple.emulate with a STREAMING model file (rsoil_couple.core.streaming): one scripted ``run`` per
block instead of the coupler's steps. Its values are the module's own ``step`` bit for bit, its statuses
and Q10 fallback are the coupler's streaming rules, a missing or impossible driver is held, the blocking
(columns and time chunks) changes nothing, and it equals the C++ core's streaming path where the core has one.

The model: tests/streaming_model.py (fixture ``stream_model``: spin-up 10 steps, envelope tsoil -5..35 degC,
swc 0.02..0.5, precip 0..40 mm; fallback q10_swc a=0.8, b=2, c=0.5).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from rsoil_couple import emulate
from rsoil_couple.baselines import q10
from rsoil_couple.core import coupler as cp
from rsoil_couple.core.streaming import StreamingRun
from rsoil_couple.errors import MetaError
from rsoil_couple.modelfile.export import load_model
from rsoil_couple.variables import GC_PER_UMOL_CO2

SPINUP = 10


def sites(ncol: int, days: int = 4) -> xr.Dataset:
    """`ncol` synthetic columns (canonical units) on one time axis."""
    from rsoil_couple.data.synthetic import synthetic_site

    cols = [synthetic_site(days=days, step_minutes=30, seed=s).assign_coords(column=[f"c{s}"])
            for s in range(3, 3 + ncol)]
    return xr.concat([c[["tsoil", "swc", "precip"]] for c in cols], dim="column", combine_attrs="override")


def with_faults(ds: xr.Dataset) -> xr.Dataset:
    """Column 0: NaN tsoil at 40-44, +inf swc at 60; column 1: tsoil 80 degC (impossible) at 40-44, swc 0.6
    (outside the envelope, possible) at 70-72, NaN precip at 5 (spin-up); column 2 untouched."""
    ds = ds.copy(deep=True)
    t, w, p = (ds[v].transpose("time", "column").values for v in ("tsoil", "swc", "precip"))
    t[40:45, 0] = np.nan
    w[60, 0] = np.inf
    t[40:45, 1] = 80.0
    w[70:73, 1] = 0.6
    p[5, 1] = np.nan
    for v, x in zip(("tsoil", "swc", "precip"), (t, w, p)):
        ds[v] = (("time", "column"), x, ds[v].attrs)
    return ds


def step_by_step(path, ds: xr.Dataset) -> np.ndarray:
    """The module's own ``step``, called once per time step on ALL columns at once, from
    ``initial_state``; drivers NaN where missing or outside the physical range. Rsoil [time, column] float32."""
    module, meta = load_model(path)
    x = np.stack([ds[v].transpose("time", "column").values for v in ("tsoil", "swc", "precip")], axis=-1)
    lo = np.array([meta["physical_range"][v]["min"] for v in ("tsoil", "swc", "precip")])
    hi = np.array([meta["physical_range"][v]["max"] for v in ("tsoil", "swc", "precip")])
    with np.errstate(invalid="ignore"):
        x = np.where(np.isfinite(x) & (x >= lo) & (x <= hi), x, np.nan).astype(np.float32)
    out = np.empty(x.shape[:2], dtype=np.float32)
    with torch.inference_mode():
        state = module.initial_state(x.shape[1])
        for t in range(x.shape[0]):
            y, state = module.step(state, torch.from_numpy(x[t]))
            out[t] = y.numpy()
    return out


def test_values_are_the_modules_step_bit_for_bit(stream_model):
    path, _ = stream_model
    ds = with_faults(sites(3))
    res = emulate(path, ds)  # chunk_size 0: every run call has all 3 columns, as the reference's step calls
    ref = step_by_step(path, ds)
    st = res["status"].values
    ran = st <= cp.EXTRAPOLATING
    assert ran.sum() > 500
    np.testing.assert_array_equal(res["rsoil"].values[ran], ref[ran].astype(np.float64))
    np.testing.assert_array_equal(res["rsoil_gc"].values, res["rsoil"].values * GC_PER_UMOL_CO2)
    assert res.attrs["streaming"] == 1 and res.attrs["spinup_steps"] == SPINUP


def test_statuses_come_from_each_steps_own_drivers(stream_model):
    path, meta = stream_model
    ds = with_faults(sites(3))
    st = emulate(path, ds)["status"].values
    expect = np.full(st.shape, cp.ACTIVE, dtype=np.int8)
    expect[40:45, 0] = cp.MISSING       # NaN
    expect[60, 0] = cp.MISSING          # +inf
    expect[40:45, 1] = cp.IMPOSSIBLE    # 80 degC
    expect[70:73, 1] = cp.EXTRAPOLATING  # swc 0.6 > envelope max 0.5
    expect[:SPINUP] = cp.SPINUP         # spin-up wins over the NaN precip at step 5
    np.testing.assert_array_equal(st, expect)  # one step after a fault the column runs again (no window)
    strict = emulate(path, ds, strict=True)["status"].values
    np.testing.assert_array_equal(strict[70:73, 1], cp.EXTRAPOLATION_FALLBACK)
    counts = emulate(path, ds).attrs
    assert counts["count_missing"] == 6 and counts["count_impossible"] == 5 and counts["count_spinup"] == 30


def test_q10_fallback_and_scalar(stream_model):
    path, meta = stream_model
    ds = with_faults(sites(3))
    res = emulate(path, ds, strict=True)
    st, r, s = res["status"].values, res["rsoil"].values, res["resp_scalar"].values
    t = ds["tsoil"].transpose("time", "column").values
    w = ds["swc"].transpose("time", "column").values
    fb = meta["fallback_q10"]
    with np.errstate(invalid="ignore"):
        q = q10.predict(fb["form"], fb["params"], t, np.where(w <= 1.0, w, np.nan), fb["swc_units"])
    fallback = st >= cp.SPINUP
    np.testing.assert_array_equal(s[fallback], 1.0)
    usable = fallback & np.isfinite(t) & (t <= 70.0) & np.isfinite(w)
    np.testing.assert_allclose(r[usable], q[usable], rtol=1e-15)
    assert usable[:SPINUP].all() and usable[70:73, 1].all()  # spin-up and strict fallback use Q10
    assert np.isnan(r[40:45, :2]).all() and np.isnan(r[60, 0])  # no tsoil / swc for the Q10: NaN
    ran = st <= cp.EXTRAPOLATING
    np.testing.assert_allclose(s[ran], r[ran] / q[ran], rtol=1e-15)


def test_mask_gives_q10_and_the_state_still_advances(stream_model):
    path, _ = stream_model
    ds = sites(2)
    full = emulate(path, ds)
    mask = np.ones((ds.sizes["time"], 2), dtype=bool)
    mask[50:80, 0] = False
    res = emulate(path, ds, mask=mask)
    np.testing.assert_array_equal(res["status"].values[50:80, 0], cp.MASKED)
    # masked steps still ran the model, so afterwards the column is exactly as without the mask
    np.testing.assert_array_equal(res["rsoil"].values[80:], full["rsoil"].values[80:])
    col = emulate(path, ds, mask=np.array([True, False]))
    np.testing.assert_array_equal(col["status"].values[:, 1], cp.MASKED)
    with pytest.raises(ValueError, match="mask must have shape"):
        emulate(path, ds, mask=np.ones(3, dtype=bool))


def test_missing_and_impossible_drivers_are_held(stream_model):
    """A NaN or an impossible tsoil reaches the model as NaN: it holds the last valid value, so the
    column continues exactly as one whose tsoil was repeated from the last valid step. (Each column is
    run alone: in one call, rows at different positions may round differently in the last bit where a
    vector loop's tail differs, e.g. 3 rows with AVX-512; the model's semantics is what is tested.)"""
    path, _ = stream_model
    base = sites(1)
    t = base["tsoil"].values[:, 0]
    cols = []
    for fill in ("nan", "impossible", "repeat"):
        x = t.copy()
        x[40:45] = {"nan": np.nan, "impossible": 95.0, "repeat": t[39]}[fill]
        one = base.assign(tsoil=(("time", "column"), x[:, None], base["tsoil"].attrs))
        cols.append(emulate(path, one)["rsoil"].values[:, 0])
    r = np.stack(cols, 1)
    np.testing.assert_array_equal(r[45:, 0], r[45:, 2])
    np.testing.assert_array_equal(r[45:, 1], r[45:, 2])
    assert not np.array_equal(r[45:, 0], emulate(path, base)["rsoil"].values[45:, 0])  # a real hold, not a no-op


@pytest.mark.parametrize("time_chunk", [1, 7, 64, 0])
def test_blocking_changes_nothing(stream_model, time_chunk):
    """Fixed-size run calls (chunk_size rows, padded): any time chunk and any column subset give the same bits."""
    path, _ = stream_model
    ds = with_faults(sites(7, days=2))
    ref = emulate(path, ds, chunk_size=4, time_chunk=5)
    res = emulate(path, ds, chunk_size=4, time_chunk=time_chunk)
    sub = emulate(path, ds.isel(column=slice(2, 5)), chunk_size=4, time_chunk=time_chunk)
    for v in ("rsoil", "rsoil_gc", "resp_scalar", "status"):
        np.testing.assert_array_equal(res[v].values, ref[v].values)
        np.testing.assert_array_equal(sub[v].values, ref[v].values[:, 2:5])


def test_window_model_is_refused_by_the_streaming_runner(model):
    path, _, _ = model
    with pytest.raises(MetaError, match="streaming: missing"):
        StreamingRun(path)


def test_equals_the_cores_streaming_path(stream_model):
    """The same record through the C++ coupler's streaming step, one step at a time: the same statuses and
    network values bit for bit; the Q10 fallback within 1e-13 (C++ std::pow vs numpy)."""
    path, _ = stream_model
    ds = with_faults(sites(3))
    c = cp.Coupler(path, 3)
    if not getattr(c, "streaming", False):
        pytest.skip("this build's C++ core has no streaming path (rsoil_couple._core before issue 12's core work)")
    x = {v: ds[v].transpose("time", "column").values for v in ("tsoil", "swc", "precip")}
    core = [c.step(x["tsoil"][t], x["swc"][t], x["precip"][t]) for t in range(ds.sizes["time"])]
    res = emulate(path, ds)
    st = np.array([r.status for r in core])
    np.testing.assert_array_equal(res["status"].values, st)
    for v in ("rsoil", "resp_scalar"):
        got, want = res[v].values, np.array([getattr(r, v) for r in core])
        ran = st <= cp.EXTRAPOLATING
        np.testing.assert_array_equal(got[ran & (v == "rsoil")], want[ran & (v == "rsoil")])
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=0, equal_nan=True)
