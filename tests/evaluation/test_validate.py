"""Tests of rsoil_couple.validate (and report): alignment, metrics, figures, report, errors."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from rsoil_couple import evaluation as V
from rsoil_couple.cli import main as cli_main

OBS = "US-Hn1/US-Hn1_2019_30min.csv"


def test_aggregate_means_and_valid_fraction():
    t = np.datetime64("2019-06-01T00:30", "ns") + np.arange(96) * np.timedelta64(30, "m")  # 2 days
    v = np.arange(96, dtype=float)
    v[50:70] = np.nan  # 20 of day 2's 48 steps missing
    ends = np.array(["2019-06-02T00:00", "2019-06-03T00:00"], dtype="datetime64[ns]")
    mean, frac = V.aggregate(t, v, 1800.0, ends, np.array([86400.0, 86400.0]), min_valid=0.5)
    assert mean[0] == pytest.approx(np.mean(np.arange(48)))  # (00:00, 24:00] of day 1 = steps 0..47
    np.testing.assert_allclose(frac, [1.0, 28 / 48])
    assert mean[1] == pytest.approx(np.nanmean(v[48:]))
    mean, _ = V.aggregate(t, v, 1800.0, ends, np.array([86400.0, 86400.0]), min_valid=0.75)
    assert np.isnan(mean[1])  # 58 % valid < 75 %


def test_to_datetime64_from_noleap():
    import cftime

    t = V.to_datetime64(np.array([cftime.DatetimeNoLeap(2019, 3, 1, 12)], dtype=object))
    assert t[0] == np.datetime64("2019-03-01T12:00")


def _clm_daily_from_obs(obs_path, out, shift_days=0):
    """A daily CLM-style history file (noleap, END stamps) whose SR is the observed daily mean."""
    from rsoil_couple.data import read_site

    ds = read_site(obs_path)
    s = pd.Series(ds["rsoil"].values[:, 0], index=pd.DatetimeIndex(ds["time"].values) - pd.Timedelta("1ns"))
    daily = s.resample("1D").mean()
    ends = daily.index + pd.Timedelta(days=1 + shift_days)
    days = np.array([(e - pd.Timestamp("2019-01-01")).days for e in ends], dtype="float64")
    sr = (daily.values * 12.011e-6)[:, None].astype("float32")
    xr.Dataset({"SR": (("time", "lndgrid"), sr, {"units": "gC/m^2/s", "cell_methods": "time: mean"}),
                "HR": (("time", "lndgrid"), 0.6 * sr, {"units": "gC/m^2/s"})},
               coords={"time": ("time", days, {"units": "days since 2019-01-01", "calendar": "noleap"})}
               ).to_netcdf(out)
    return out


def test_clm_on_common_axis_reproduces_aggregated_obs(shared_data, tmp_path):
    obs = shared_data / OBS
    hist = _clm_daily_from_obs(obs, tmp_path / "h.nc")
    res = V.validate(str(obs), [], str(tmp_path / "out"), clm_paths=[str(hist)], figures=False,
                     min_valid=0.99)
    col = res["columns"]["US-Hn1"]["resolutions"]["common"]
    assert col["step_seconds"] == 86400.0
    sr = col["series"]["clm_sr"]["all"]
    # SR was written as the daily mean of all observations: where a whole day is valid it agrees
    assert sr["n"] > 50 and sr["nse"] > 0.999 and abs(sr["bias"]) < 1e-3
    assert col["series"]["clm_hr"]["all"]["bias"] < 0  # HR = 0.6 SR underestimates
    # a one-day shift in the time axis is detected as a much worse fit
    h2 = _clm_daily_from_obs(obs, tmp_path / "h2.nc", shift_days=1)
    r2 = V.validate(str(obs), [], str(tmp_path / "out2"), clm_paths=[str(h2)], figures=False, min_valid=0.99)
    assert r2["columns"]["US-Hn1"]["resolutions"]["common"]["series"]["clm_sr"]["all"]["nse"] < 0.9


@pytest.fixture(scope="module")
def model_run(shared_data, model_24h, tmp_path_factory):
    """A predict output for the 2019 observation period from the session's small example model."""
    from rsoil_couple.prediction.run import predict

    d = tmp_path_factory.mktemp("run")
    predict(model_24h[0], shared_data / OBS, d / "run.nc", progress=False)
    return d / "run.nc"


def test_end_to_end_us_hn1(shared_data, model_run, tmp_path, capsys):
    out = tmp_path / "val"
    hist = _clm_daily_from_obs(shared_data / OBS, tmp_path / "h.nc")
    rc = cli_main(["validate", "--obs", str(shared_data / OBS), "--model-run", str(model_run), "--q10",
                   "--clm", str(hist), "--period", "extrapolation=2019-08-20/2019-09-15", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    col = m["columns"]["US-Hn1"]
    native = col["resolutions"]["native"]["series"]
    assert set(native) == {"lstm (supplied)", "q10", "q10_swc", "logistic_power", "clm_structure"}
    for name, per in native.items():
        assert {"all", "2019-06", "2019-09", "extrapolation"} <= set(per)
        assert set(per["all"]) == {"mse", "rmse", "nse", "kge", "cc", "bias", "n"}
        assert per["all"]["rmse"] == pytest.approx(np.sqrt(per["all"]["mse"]))
        assert name in printed
    common = col["resolutions"]["common"]
    assert {"clm_sr", "clm_hr", "lstm (supplied)", "q10"} <= set(common["series"])
    assert 0.0 < common["mean_valid_fraction"] <= 1.0
    assert any("in-sample" in n for n in col["notes"])
    assert any(n.startswith("lstm (supplied): the network ran") for n in col["notes"])
    report = (out / "report.md").read_text()
    for kind in ("scatter", "timeseries", "rain_events", "hysteresis"):
        f = out / "figures" / f"US-Hn1_{kind}.png"
        assert f.is_file() and f.stat().st_size > 10_000
        assert f"figures/US-Hn1_{kind}.png" in report
    assert "| lstm (supplied) |" in report and "NSE per period" in report


def test_rain_events_picks_separated_large_events():
    t = np.datetime64("2019-06-01T00:30", "ns") + np.arange(48 * 20) * np.timedelta64(30, "m")
    p = np.zeros(len(t))
    p[48 * 2 + 10] = 5.0   # day 3
    p[48 * 3 + 10] = 8.0   # day 4, too close to day 3: only the larger counts
    p[48 * 12 + 20] = 3.0  # day 13
    p[48 * 16] = 1.0       # below 2 mm
    ev = V.rain_events(t, p)
    assert ev == [t[48 * 3 + 10], t[48 * 12 + 20]]


# ---------------------------------------------------------------------------------------------
# bad input
def test_obs_without_rsoil(shared_data, tmp_path):
    with pytest.raises(ValueError, match=r"US-Hn1_2016-2017_forcing_30min.csv: missing variable 'rsoil'"):
        V.validate(str(shared_data / "US-Hn1/US-Hn1_2016-2017_forcing_30min.csv"), [], str(tmp_path), q10=True)


def test_clm_without_fluxes(shared_data, tmp_path):
    with pytest.raises(ValueError, match=r"fortran_clm5_bow_2009.nc: missing variables 'SR' and 'HR'"):
        V.validate(str(shared_data / OBS), [], str(tmp_path),
                   clm_paths=[str(shared_data / "clm/fortran_clm5_bow_2009.nc")])


def test_model_run_with_wrong_units(shared_data, model_run, tmp_path):
    bad = tmp_path / "bad.nc"
    with xr.open_dataset(model_run) as ds:
        d = ds.load()
    d["rsoil"].attrs["units"] = "mg m-2 h-1"
    d.to_netcdf(bad)
    with pytest.raises(ValueError, match=r"bad.nc: variable 'rsoil' has units 'mg m-2 h-1'"):
        V.validate(str(shared_data / OBS), [str(bad)], str(tmp_path / "o"))


def test_clm_with_unknown_flux_units_and_calendar(shared_data, tmp_path):
    h = _clm_daily_from_obs(shared_data / OBS, tmp_path / "h.nc")
    with xr.open_dataset(h, decode_times=False) as ds:
        d = ds.load()
    d["SR"].attrs["units"] = "kgC/m^2/yr"
    d.to_netcdf(tmp_path / "u.nc")
    with pytest.raises(ValueError, match=r"u.nc: variable 'SR' has units 'kgC/m\^2/yr'; expected 'gC/m\^2/s'"):
        V.validate(str(shared_data / OBS), [], str(tmp_path / "o"), clm_paths=[str(tmp_path / "u.nc")])
    d["SR"].attrs["units"] = "gC/m^2/s"
    d["time"].attrs["calendar"] = "lunar"
    d.to_netcdf(tmp_path / "c.nc")
    with pytest.raises(ValueError, match=r"c.nc: variable 'time': cannot decode .*'lunar'"):
        V.validate(str(shared_data / OBS), [], str(tmp_path / "o"), clm_paths=[str(tmp_path / "c.nc")])


def test_nothing_to_compare(shared_data, tmp_path):
    assert cli_main(["validate", "--obs", str(shared_data / OBS), "--out", str(tmp_path)]) == 2


def test_host_style_history_with_coupled_flux(shared_data, model_run, tmp_path):
    """A history file laid out like the Fortran host's (column layout, time_bounds, mcdate/mcsec,
    1e36 fill, HR/SR/HR_Q10/RSC_RSOIL in gC/m^2/s): its RSC_RSOIL, set to the model run's Rsoil,
    scores exactly like the model run itself on the common (30 min) axis."""
    with xr.open_dataset(model_run) as run:
        r = run["rsoil"].values[:, 0].astype("float64")
        t = pd.DatetimeIndex(run["time"].values)
    days = ((t - pd.Timestamp("2019-05-31 23:30")) / pd.Timedelta(days=1)).values
    gc = np.where(np.isfinite(r), r * 12.011e-6, 1e36)[:, None]
    enc = {v: {"_FillValue": 1e36} for v in ("HR", "SR", "HR_Q10", "RSC_RSOIL")}
    xr.Dataset(
        {v: (("time", "column"), gc, {"units": "gC/m^2/s", "cell_methods": "time: mean"})
         for v in ("HR", "SR", "HR_Q10", "RSC_RSOIL")}
        | {"time_bounds": (("time", "hist_interval"), np.stack([days - 1 / 48, days], 1)),
           "mcdate": ("time", (t.year * 10000 + t.month * 100 + t.day).astype("int32")),
           "mcsec": ("time", (t.hour * 3600 + t.minute * 60).astype("int32"))},
        coords={"time": ("time", days, {"units": "days since 2019-05-31 23:30:00", "calendar": "gregorian",
                                        "bounds": "time_bounds"})},
    ).to_netcdf(tmp_path / "host.h0.nc", encoding=enc)
    res = V.validate(str(shared_data / OBS), [str(model_run)], str(tmp_path / "o"),
                     clm_paths=[str(tmp_path / "host.h0.nc")], figures=False, min_valid=0.5)
    s = res["columns"]["US-Hn1"]["resolutions"]["common"]["series"]
    assert res["columns"]["US-Hn1"]["resolutions"]["common"]["step_seconds"] == 1800.0
    for k in ("nse", "cc", "rmse", "n"):
        assert s["clm_rsc_rsoil"]["all"][k] == pytest.approx(s["lstm (supplied)"]["all"][k], rel=1e-5)
