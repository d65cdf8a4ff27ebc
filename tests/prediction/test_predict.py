"""Tests of rsoil_couple.predict: batch prediction through the C++ core, CF output, chunking, dask."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import netCDF4
import numpy as np
import pytest
import xarray as xr

from rsoil_couple import prediction as P
from rsoil_couple.cli import main as cli_main
from rsoil_couple.prediction import run as predict_run

FORCING = "US-Hn1/US-Hn1_2016-2017_forcing_30min.csv"


@pytest.fixture(scope="module")
def model(model_24h):
    """The session's small real model (24 h past + 24 h future, 30 min steps)."""
    return model_24h[0]


@pytest.fixture(scope="module")
def columns_nc(shared_data, tmp_path_factory):
    """12 perturbed columns x 400 steps built from the real US-Hn1 drivers."""
    path = tmp_path_factory.mktemp("cols") / "cols12.nc"
    return P.write_perturbed_columns(shared_data / FORCING, path, 12, ntime=400, seed=1)


def _read(path):
    with xr.open_dataset(path) as ds:
        return ds.load()


def test_us_hn1_year_of_rsoil_with_status_counts(shared_data, model, tmp_path, capsys):
    out = tmp_path / "hn1.nc"
    rc = cli_main(["predict", "--model", str(model), "--input", str(shared_data / FORCING),
                   "--output", str(out), "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    counts = json.loads(printed.strip().splitlines()[-1])["status_counts"]
    ds = _read(out)
    assert ds.sizes == {"time": 18960, "column": 1, "nv": 2}
    st = ds["status"].values
    # the counts printed and stored are those of the status variable
    for code, name in enumerate(P.STATUS_MEANINGS):
        assert counts[name] == int((st == code).sum()) == ds.attrs[f"status_count_{name}"]
    assert sum(counts.values()) == 18960
    assert counts["active"] + counts["extrapolating"] > 17000  # a year of network output
    r = ds["rsoil"].values
    assert np.isfinite(r).mean() > 0.99 and np.nanmin(r) > 0.0
    np.testing.assert_allclose(ds["rsoil_gc"].values, r * 12.011e-6, rtol=1e-5)
    assert str(ds["column"].values[0]) == "US-Hn1"


def test_cf_attributes_and_history(columns_nc, model, tmp_path):
    out = tmp_path / "o.nc"
    P.predict(model, columns_nc, out, chunk_columns=5, progress=False, command="rsoil-couple predict test")
    with netCDF4.Dataset(out) as nc:
        assert nc.Conventions.startswith("CF-")
        assert "rsoil-couple predict test" in nc.history and nc.model_id in nc.history
        assert nc["rsoil"].units == "umol m-2 s-1" and nc["rsoil"].cell_methods == "time: mean"
        assert nc["rsoil_gc"].units == "g m-2 s-1"
        assert list(nc["status"].flag_values) == list(range(len(P.STATUS_MEANINGS)))
        assert nc["status"].flag_meanings.split() == list(P.STATUS_MEANINGS)
        assert nc["time"].bounds == "time_bnds" and nc["time"].standard_name == "time"
        tb = nc["time_bnds"][:]
        np.testing.assert_allclose(tb[:, 1] - tb[:, 0], 1800.0)
        np.testing.assert_allclose(tb[:, 1], nc["time"][:])
    with xr.open_dataset(columns_nc) as src, xr.open_dataset(out) as res:
        np.testing.assert_array_equal(src["time"].values, res["time"].values)


def test_chunking_and_column_selection_do_not_change_output(columns_nc, model, tmp_path):
    a, b, c = tmp_path / "a.nc", tmp_path / "b.nc", tmp_path / "c.nc"
    P.predict(model, columns_nc, a, chunk_columns=12, progress=False)
    P.predict(model, columns_nc, b, chunk_columns=5, progress=False)
    P.predict(model, columns_nc, c, chunk_columns=2, columns="3:7", progress=False)
    A, B, C = _read(a), _read(b), _read(c)
    for v in P.OUTPUT_VARS:
        np.testing.assert_array_equal(A[v].values, B[v].values)
        np.testing.assert_array_equal(A[v].values[:, 3:7], C[v].values)
    np.testing.assert_array_equal(C["column"].values, [3, 4, 5, 6])


def test_dask_local_cluster_gives_identical_output(columns_nc, model, tmp_path):
    from distributed import LocalCluster

    one, two = tmp_path / "one.nc", tmp_path / "two.nc"
    P.predict(model, columns_nc, one, chunk_columns=3, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        P.predict(model, columns_nc, two, chunk_columns=3, scheduler=cluster.scheduler_address,
                  progress=False)
    A, B = _read(one), _read(two)
    for v in P.OUTPUT_VARS:
        np.testing.assert_array_equal(A[v].values, B[v].values)
    assert A.attrs["status_count_active"] == B.attrs["status_count_active"]


def _clm_file(path, ntime=150, step_days=1 / 48, tsoi_units="K"):
    """A 30-min CLM-style history file on (time, levgrnd/levsoi, column), noleap calendar."""
    lev = np.array([0.01, 0.04, 0.09, 0.16, 0.26], "float32")
    t = np.arange(1, ntime + 1) * step_days
    h = np.arange(ntime) * step_days * 24 % 24
    tsoi = 298.0 + 4 * np.sin(2 * np.pi * (h - 9) / 24)[:, None, None] + np.zeros((1, 5, 2))
    ds = xr.Dataset(
        {"TSOI": (("time", "levgrnd", "column"), tsoi.astype("f4"), {"units": tsoi_units}),
         "H2OSOI": (("time", "levsoi", "column"), np.full((ntime, 5, 2), 0.08, "f4"), {"units": "mm3/mm3"}),
         "RAIN": (("time", "column"), np.zeros((ntime, 2), "f4"), {"units": "mm/s"}),
         "cols1d_lat": ("column", [46.4, 46.5]), "cols1d_lon": ("column", [240.5, 240.6])},
        coords={"levgrnd": ("levgrnd", lev), "levsoi": ("levsoi", lev),
                "time": ("time", t, {"units": "days since 2019-06-01", "calendar": "noleap"})})
    ds.to_netcdf(path)
    return path


def test_clm_history_input(model, tmp_path):
    src = _clm_file(tmp_path / "h.nc")
    out = tmp_path / "o.nc"
    res = P.predict(model, [src], out, progress=False)
    assert res.n_columns == 2 and res.n_time == 150
    with netCDF4.Dataset(out) as nc:
        assert nc["time"].calendar == "noleap"
        np.testing.assert_allclose(nc["lat"][:], [46.4, 46.5])
        assert "levgrnd nodes 0.09 m" in nc.input_tsoil_source
        st = nc["status"][:]
    assert ((st == 0) | (st == 1)).sum() > 0


# ---------------------------------------------------------------------------------------------
# bad input: a clear error naming file and variable; a failed run never leaves a complete-looking file
def test_step_mismatch_names_file_and_time(shared_data, model, tmp_path):
    bow = shared_data / "clm" / "fortran_clm5_bow_2009.nc"
    with pytest.raises(ValueError, match=r"fortran_clm5_bow_2009.nc: variable 'time' has a step of 86400 s .*1800 s"):
        P.predict(model, bow, tmp_path / "o.nc", progress=False)
    assert not list(tmp_path.iterdir())


def test_depth_mismatch_names_file_and_tsoil(columns_nc, model, tmp_path):
    bad = tmp_path / "deep.nc"
    with xr.open_dataset(columns_nc) as ds:
        ds.load().assign_attrs(depth_m=0.05).to_netcdf(bad)
    with pytest.raises(ValueError, match=r"deep.nc: variable 'tsoil' is at 0.05 m depth .*0.15 m"):
        P.predict(model, bad, tmp_path / "o.nc", progress=False)


@pytest.mark.parametrize("change, pattern", [
    (lambda ds: ds.drop_vars("swc"), r"missing variable 'swc'"),
    (lambda ds: ds.assign(tsoil=ds["tsoil"].assign_attrs(units="furlongs")), r"variable 'tsoil'.*unknown unit 'furlongs'"),
])
def test_bad_canonical_input(columns_nc, model, tmp_path, change, pattern):
    bad = tmp_path / "bad.nc"
    with xr.open_dataset(columns_nc) as ds:
        change(ds.load()).to_netcdf(bad)
    with pytest.raises(ValueError, match=pattern):
        P.predict(model, bad, tmp_path / "o.nc", progress=False)


def test_undecodable_clm_calendar(model, tmp_path):
    src = _clm_file(tmp_path / "h.nc")
    with netCDF4.Dataset(src, "a") as nc:
        nc["time"].calendar = "martian"
    with pytest.raises(ValueError, match=r"h.nc: variable 'time': cannot decode .*'martian'"):
        P.predict(model, src, tmp_path / "o.nc", progress=False)


def test_failure_midway_leaves_no_complete_looking_output(columns_nc, model, tmp_path, monkeypatch):
    out = tmp_path / "o.nc"
    out.write_text("an older result")
    real = P.predict_block
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(predict_run, "predict_block", failing)
    with pytest.raises(RuntimeError, match="worker lost"):
        P.predict(model, columns_nc, out, chunk_columns=4, progress=False)
    assert out.read_text() == "an older result"  # untouched, and no partial file beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.nc"]


def test_cli_reports_bad_input_in_one_line(model, tmp_path, capsys):
    rc = cli_main(["predict", "--model", str(model), "--input", str(tmp_path / "none.csv"),
                   "--output", str(tmp_path / "o.nc"), "--no-progress"])
    assert rc == 2
    assert "none.csv: input file not found" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# scale: peak memory bounded by the block, not by the input (full size: benchmarks/bench_predict.py)
def _peak_rss_mb(model, src, out, chunk):
    # VmHWM of the child itself (ru_maxrss would include this process's RSS carried over the exec)
    code = ("import sys; from rsoil_couple.cli import main; "
            f"rc = main(['predict', '--model', {str(model)!r}, '--input', {str(src)!r}, '--output', "
            f"{str(out)!r}, '--chunk-columns', '{chunk}', '--no-progress', '--threads', '1']); "
            "print('PEAK', int(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM'))) / 1024); "
            "sys.exit(rc)")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", code],
                       capture_output=True, text=True, check=True)
    return float(r.stdout.split("PEAK")[-1]), time.perf_counter() - t0


def test_blocks_are_bounded_and_input_is_lazy(columns_nc, model, tmp_path, monkeypatch):
    ds = P.open_input(P.InputSpec((str(columns_nc),), "canonical", 0.15))
    assert all(v.chunks is not None for v in ds.data_vars.values())  # dask-backed: nothing read yet
    seen = []
    real = P.predict_block

    def spy(model_path, spec, cols, *args, **kwargs):
        seen.append(len(cols))
        return real(model_path, spec, cols, *args, **kwargs)

    monkeypatch.setattr(predict_run, "predict_block", spy)
    P.predict(model, columns_nc, tmp_path / "o.nc", chunk_columns=5, progress=False)
    assert seen == [5, 5, 2]


@pytest.mark.slow
def test_peak_memory_1000_vs_10000_columns(shared_data, model, tmp_path):
    rss, secs = {}, {}
    ntime = 1500
    for n in (1000, 10000):
        src = P.write_perturbed_columns(shared_data / FORCING, tmp_path / f"c{n}.nc", n, ntime=ntime)
        rss[n], secs[n] = _peak_rss_mb(model, src, tmp_path / f"o{n}.nc", 250)
    # ten times the columns (10,000 x 1,500 x 3 drivers = 360 MB as float64): the peak must not follow
    print(f"peak RSS {rss}, seconds {secs}")
    assert rss[10000] - rss[1000] < 0.25 * 10000 * ntime * 3 * 8 / 2**20, rss


def test_status_meanings_are_the_cores():
    from rsoil_couple.core.coupler import STATUS_NAMES

    assert list(P.STATUS_MEANINGS) == [s.lower() for s in STATUS_NAMES]
