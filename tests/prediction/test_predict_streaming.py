"""`predict` with a STREAMING model file: one scripted ``run`` per block of columns x time chunk.

The output is the module's own ``step`` called step by step (bit for bit), statuses as the coupler's
streaming path, identical for any column blocking, time chunk or column selection, and identical on a
dask cluster; the file says it came from a streaming model and with which run-call size.
The model: tests/streaming_model.py (fixture ``stream_model``, spin-up 10 steps).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from rsoil_couple import prediction as P
from rsoil_couple.cli import main as cli_main
from rsoil_couple.core import coupler as cp
from rsoil_couple.core.streaming import STREAM_BATCH_ROWS
from rsoil_couple.modelfile.export import load_model
from rsoil_couple.variables import padded_call_rows

NCOL, NTIME = 12, 300


@pytest.fixture(scope="module")
def drivers_nc(tmp_path_factory):
    """12 synthetic columns x 300 steps as a canonical NetCDF (K and percent, converted by predict), with
    faults: NaN tsoil (column 0, steps 100-104), impossible tsoil 80 degC (column 1, 100-104), NaN rain
    (column 2, step 150), swc outside the envelope (column 3, 200-202)."""
    from rsoil_couple.data.synthetic import synthetic_site

    cols = [synthetic_site(days=7, step_minutes=30, seed=s).isel(time=slice(0, NTIME)) for s in range(NCOL)]
    t = np.stack([c["tsoil"].values[:, 0] for c in cols], axis=1)
    w = np.stack([c["swc"].values[:, 0] for c in cols], axis=1)
    p = np.stack([c["precip"].values[:, 0] for c in cols], axis=1)
    t[100:105, 0] = np.nan
    t[100:105, 1] = 80.0
    p[150, 2] = np.nan
    w[200:203, 3] = 0.6
    ds = xr.Dataset({"tsoil": (("time", "column"), t + 273.15, {"units": "K"}),
                     "swc": (("time", "column"), w * 100.0, {"units": "%"}),
                     "precip": (("time", "column"), p, {"units": "mm"})},
                    coords={"time": cols[0]["time"].values, "column": np.arange(NCOL)},
                    attrs={"step_seconds": 1800.0, "depth_m": 0.15})
    path = tmp_path_factory.mktemp("stream_in") / "drivers.nc"
    ds.to_netcdf(path)
    return path


def _read(path) -> xr.Dataset:
    with xr.open_dataset(path) as ds:
        return ds.load()


def _canonical(path) -> dict:
    with xr.open_dataset(path) as ds:
        return {"tsoil": ds["tsoil"].values - 273.15, "swc": ds["swc"].values / 100.0, "precip": ds["precip"].values}


def test_equals_the_modules_step_called_step_by_step(stream_model, drivers_nc, tmp_path):
    path, meta = stream_model
    out = tmp_path / "o.nc"
    # every run call has NCOL rows padded to 64 (CALL_ROW_MULTIPLE; chunk_columns 5 -> blocks 5, 5, 2): the
    # reference's batch is the NCOL columns padded to 64 rows too
    P.predict(path, drivers_nc, out, chunk_columns=5, batch_rows=NCOL, time_chunk=64, progress=False)
    res = _read(out)
    d = _canonical(drivers_nc)
    x = np.stack([d[v] for v in ("tsoil", "swc", "precip")], axis=-1)
    lo = np.array([meta["physical_range"][v]["min"] for v in ("tsoil", "swc", "precip")])
    hi = np.array([meta["physical_range"][v]["max"] for v in ("tsoil", "swc", "precip")])
    with np.errstate(invalid="ignore"):
        x = np.where(np.isfinite(x) & (x >= lo) & (x <= hi), x, np.nan).astype(np.float32)
    module, _ = load_model(path)
    ref = np.empty((NTIME, NCOL), dtype=np.float32)
    rows = padded_call_rows(NCOL)
    x = np.concatenate([x, np.repeat(x[:, -1:], rows - NCOL, axis=1)], axis=1)
    with torch.inference_mode():
        state = module.initial_state(rows)
        for t in range(NTIME):
            y, state = module.step(state, torch.from_numpy(np.ascontiguousarray(x[t])))
            ref[t] = y.numpy()[:NCOL]
    st = res["status"].values
    ran = st <= cp.EXTRAPOLATING
    assert ran.sum() > 0.9 * st.size
    np.testing.assert_array_equal(res["rsoil"].values[ran], ref[ran])  # float32 in the file, as the model's


def test_statuses_and_counts(stream_model, drivers_nc, tmp_path):
    path, _ = stream_model
    out = tmp_path / "o.nc"
    r = P.predict(path, drivers_nc, out, chunk_columns=5, progress=False)
    res = _read(out)
    st = res["status"].values
    expect = np.full(st.shape, cp.ACTIVE, dtype=np.int8)
    expect[100:105, 0] = cp.MISSING
    expect[100:105, 1] = cp.IMPOSSIBLE
    expect[150, 2] = cp.MISSING
    expect[200:203, 3] = cp.EXTRAPOLATING
    expect[:10] = cp.SPINUP
    np.testing.assert_array_equal(st, expect)
    for code, name in enumerate(P.STATUS_MEANINGS):
        assert r.status_counts[name] == int((st == code).sum()) == res.attrs[f"status_count_{name}"]
    assert res.attrs["model_streaming"] == 1 and res.attrs["batch_rows"] == STREAM_BATCH_ROWS
    fallback = st >= cp.SPINUP
    np.testing.assert_array_equal(res["resp_scalar"].values[fallback], 1.0)
    assert np.isnan(res["rsoil"].values[100:105, :2]).all()  # no usable tsoil for the Q10 either


def test_blocking_time_chunks_and_selection_change_nothing(stream_model, drivers_nc, tmp_path):
    path, _ = stream_model
    runs = {"a": dict(chunk_columns=12, time_chunk=0), "b": dict(chunk_columns=5, time_chunk=7),
            "c": dict(chunk_columns=2, time_chunk=1000, columns="3:7")}
    res = {}
    for k, kw in runs.items():
        P.predict(path, drivers_nc, tmp_path / f"{k}.nc", batch_rows=8, progress=False, **kw)
        res[k] = _read(tmp_path / f"{k}.nc")
    for v in P.OUTPUT_VARS:
        np.testing.assert_array_equal(res["a"][v].values, res["b"][v].values)
        np.testing.assert_array_equal(res["a"][v].values[:, 3:7], res["c"][v].values)


def test_dask_local_cluster_gives_identical_output(stream_model, drivers_nc, tmp_path):
    from distributed import LocalCluster

    path, _ = stream_model
    one, two = tmp_path / "one.nc", tmp_path / "two.nc"
    P.predict(path, drivers_nc, one, chunk_columns=3, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        r = P.predict(path, drivers_nc, two, chunk_columns=3, scheduler=cluster.scheduler_address, progress=False)
    A, B = _read(one), _read(two)
    for v in P.OUTPUT_VARS:
        np.testing.assert_array_equal(A[v].values, B[v].values)
    assert sum(r.blocks_by_pid.values()) == 4 and r.stage_seconds["compute_s"] > 0


def test_cli_runs_a_streaming_model(stream_model, drivers_nc, tmp_path, capsys):
    path, _ = stream_model
    out = tmp_path / "cli.nc"
    rc = cli_main(["predict", "--model", str(path), "--input", str(drivers_nc), "--output", str(out),
                   "--no-progress", "--batch-rows", "16", "--time-chunk", "50"])
    assert rc == 0
    assert f"{NCOL} columns x {NTIME} steps" in capsys.readouterr().out
    res = _read(out)
    assert res.attrs["batch_rows"] == 16 and res.attrs["model_streaming"] == 1


def test_deflate_level(stream_model, drivers_nc, tmp_path):
    """--deflate 0 writes the same values uncompressed; a level outside 0..9 is refused before any work."""
    import netCDF4

    path, _ = stream_model
    a, b = tmp_path / "a.nc", tmp_path / "b.nc"
    P.predict(path, drivers_nc, a, progress=False)
    P.predict(path, drivers_nc, b, progress=False, deflate=0)
    with netCDF4.Dataset(a) as x, netCDF4.Dataset(b) as y:
        assert x["rsoil"].filters()["zlib"] and not y["rsoil"].filters()["zlib"]
    A, B = _read(a), _read(b)
    for v in P.OUTPUT_VARS:
        np.testing.assert_array_equal(A[v].values, B[v].values)
    with pytest.raises(ValueError, match="--deflate 10"):
        P.predict(path, drivers_nc, tmp_path / "c.nc", progress=False, deflate=10)
    assert not (tmp_path / "c.nc").exists()
