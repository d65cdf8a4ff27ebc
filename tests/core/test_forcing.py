"""rsoil_couple.forcing: the host's forcing file in CLM history conventions."""
from __future__ import annotations

import netCDF4
import numpy as np
import pandas as pd
import pytest

from rsoil_couple import data
from rsoil_couple.core import forcing
from rsoil_couple.data import clm
from rsoil_couple.data.synthetic import synthetic_site


@pytest.fixture(scope="module")
def site():
    ds = synthetic_site(days=4, seed=1)
    ds["tsoil"][5, 0] = np.nan          # a missing driver must stay missing
    return ds


def test_layout_units_and_time(site, tmp_path):
    path = forcing.write_forcing(site, tmp_path / "f.nc", tsoi_gradient_k_per_m=-6.0)
    with netCDF4.Dataset(path) as nc:
        assert nc.dimensions["time"].isunlimited()
        assert nc["TSOI"].dimensions == ("time", "levgrnd", "column")
        assert nc["H2OSOI"].dimensions == ("time", "levsoi", "column")
        assert nc["RAIN"].dimensions == ("time", "column")
        assert (nc["TSOI"].units, nc["H2OSOI"].units, nc["RAIN"].units) == ("K", "mm3/mm3", "mm/s")
        nc.set_auto_mask(False)
        tsoi, rain, z = nc["TSOI"][:], nc["RAIN"][:], nc["levgrnd"][:]
        t, tb = nc["time"][:], nc["time_bounds"][:]
        mcdate, mcsec = nc["mcdate"][:], nc["mcsec"][:]
        units, calendar = nc["time"].units, nc["time"].calendar
    step = site.attrs["step_seconds"]
    # time: days since the start of the first step; stamps and mcdate/mcsec are step ENDs
    assert units == "days since 2019-06-01 00:00:00" and calendar == "gregorian"
    np.testing.assert_allclose(t, np.arange(1, t.size + 1) * step / 86400.0, rtol=1e-14)
    np.testing.assert_allclose(tb[:, 1] - tb[:, 0], step / 86400.0, rtol=1e-12)
    np.testing.assert_array_equal(tb[:, 1], t)
    end = pd.DatetimeIndex(site["time"].values)
    np.testing.assert_array_equal(mcdate, end.year * 10000 + end.month * 100 + end.day)
    np.testing.assert_array_equal(mcsec, end.hour * 3600 + end.minute * 60)
    assert (mcdate[47], mcsec[47]) == (20190602, 0)   # the step ending at midnight
    # rain per second, profile linear in depth through the measurement at 0.15 m, spval for NaN
    np.testing.assert_allclose(rain[:, 0], site["precip"].values[:, 0] / step, rtol=1e-15)
    assert tsoi[5, 0, 0] == forcing.SPVAL
    expect = site["tsoil"].values[:, 0, None] + 273.15 - 6.0 * (z - 0.15)
    ok = np.isfinite(expect)
    np.testing.assert_allclose(tsoi[:, :, 0][ok], expect[ok], rtol=1e-15)


def test_round_trip_through_clm_reader(site, tmp_path):
    """The project's own CLM history reader gets the drivers back at 0.15 m."""
    path = forcing.write_forcing(site, tmp_path / "f.nc", tsoi_gradient_k_per_m=-6.0)
    back = clm.read_drivers(path, depth_m=0.15).load()
    for var, atol in (("tsoil", 2e-5), ("swc", 1e-7), ("precip", 1e-6)):   # the reader keeps float32
        np.testing.assert_allclose(back[var].values, site[var].values, atol=atol, equal_nan=True)


def test_replicate_columns(site):
    rep = forcing.replicate_columns(site, 5, tsoil_spread_k=2.0, swc_spread=0.2)
    data.check_canonical(rep, "replicated")
    assert rep.sizes["column"] == 5 and len(set(rep["column"].values)) == 5
    dt = rep["tsoil"].values - site["tsoil"].values
    np.testing.assert_allclose(np.nanmax(dt, axis=0), [-2.0, -1.0, 0.0, 1.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(np.nanmax(rep["swc"].values / site["swc"].values, axis=0),
                               [0.8, 0.9, 1.0, 1.1, 1.2], rtol=1e-12)
    np.testing.assert_array_equal(rep["precip"].values, np.repeat(site["precip"].values, 5, axis=1))


def test_errors(site, tmp_path):
    with pytest.raises(ValueError, match="depth_m=2.0 m lies outside levgrnd"):
        forcing.write_forcing(site, tmp_path / "f.nc", depth_m=2.0)
    with pytest.raises(ValueError, match="no variable 'swc'"):
        forcing.write_forcing(site.drop_vars("swc"), tmp_path / "f.nc")
    with pytest.raises(ValueError, match="levgrnd must be >= 2 increasing depths"):
        forcing.write_forcing(site, tmp_path / "f.nc", levgrnd=[0.2, 0.1])
    with pytest.raises(ValueError, match="ncol must be >= 1"):
        forcing.replicate_columns(site, 0)


@pytest.mark.shared_data
def test_us_hn1(shared_data, tmp_path):
    ds = data.read_site(shared_data / "US-Hn1" / "US-Hn1_2019_30min.csv")
    path = forcing.write_forcing(ds, tmp_path / "hn1.nc")
    with netCDF4.Dataset(path) as nc:
        assert nc.dimensions["time"].size == ds.sizes["time"] == 5088
        assert (nc["mcdate"][0], nc["mcsec"][0]) == (20190601, 0)   # first stamp: 2019-06-01 00:00 END
        nc.set_auto_mask(False)
        tsoi, h2osoi = nc["TSOI"][:, 3, 0], nc["H2OSOI"][:, 3, 0]    # level 4: 0.16 m
    np.testing.assert_allclose(tsoi, ds["tsoil"].values[:, 0] + 273.15, rtol=1e-15)  # uniform profile
    np.testing.assert_array_equal(h2osoi, ds["swc"].values[:, 0])
