"""Tests of rsoil_couple.clm: the real CLM5 Bow file and small history files written here."""
from __future__ import annotations

import cftime
import netCDF4
import numpy as np
import pytest
import xarray as xr

from rsoil_couple.data import clm


# CLM5 node depths of the default '20SL_8.5m' structure (the Bow file's levgrnd), from the formula
# in CTSM initVerticalMod.F90 -- the test recomputes them independently of the reader.
def clm5_dzsoi(nlevsoi=20, nlevgrnd=25):
    dz = np.zeros(nlevgrnd)
    for j in range(1, 5):
        dz[j - 1] = j * 0.02
    for j in range(5, 14):
        dz[j - 1] = dz[3] + (j - 4) * 0.04
    for j in range(14, nlevsoi + 1):
        dz[j - 1] = dz[12] + (j - 13) * 0.10
    for j in range(nlevsoi + 1, nlevgrnd + 1):
        dz[j - 1] = dz[nlevsoi - 1] + ((j - nlevsoi) * 25.0) ** 1.5 / 100.0
    zi = np.concatenate([[0.0], np.cumsum(dz)])
    return dz, 0.5 * (zi[:-1] + zi[1:])


@pytest.fixture(scope="module")
def bow(shared_data):
    return shared_data / "clm" / "fortran_clm5_bow_2009.nc"


def test_layer_interfaces_reproduce_clm5_structure():
    dz, z = clm5_dzsoi()
    np.testing.assert_allclose(np.diff(clm.layer_interfaces(z)), dz, rtol=1e-9)


def test_layer_interfaces_clm45_nodes_fall_back_to_midway():
    z = 0.025 * (np.exp(0.5 * (np.arange(1, 11) - 0.5)) - 1.0)  # CLM4.5 exponential nodes
    zi = clm.layer_interfaces(z)
    np.testing.assert_allclose(zi[1:-1], 0.5 * (z[:-1] + z[1:]))
    assert np.all(np.diff(zi) > 0)


def test_bow_time_axis_as_declared_and_overridden(bow):
    ds = clm.read_drivers(bow, 0.15)
    t = ds["time"].values
    assert len(t) == 365 and ds.attrs["step_seconds"] == 86400.0
    # 'days since 2002-01-01', calendar 'gregorian': 2555 -> 2008-12-30, 2919 -> 2009-12-29
    assert t[0] == np.datetime64("2008-12-30T00:00")
    assert t[1] == np.datetime64("2008-12-31T00:00")
    assert t[-1] == np.datetime64("2009-12-29T00:00")
    # 2555 = 7 x 365: the values were counted in CLM's default noleap calendar (the file says
    # 'period = 2009'); the override decodes them as 2009-01-01 .. 2009-12-31.
    n = clm.read_drivers(bow, 0.15, calendar="noleap")
    assert n["time"].values[0] == cftime.DatetimeNoLeap(2009, 1, 1)
    assert n["time"].values[-1] == cftime.DatetimeNoLeap(2009, 12, 31)
    assert n.attrs["calendar"] == "noleap"


def test_bow_tsoi_at_15cm(bow):
    ds = clm.read_drivers(bow, 0.15).load()
    with netCDF4.Dataset(bow) as nc:
        tsoi = nc["TSOI"][:, :, 0].astype("float64")
        z = nc["levgrnd"][:].astype("float64")
    assert (z[2], z[3]) == pytest.approx((0.09, 0.16), abs=1e-6)
    w = (z[3] - 0.15) / (z[3] - z[2])  # 1/7 on the 0.09 m node, 6/7 on the 0.16 m node
    expect = w * tsoi[:, 2] + (1 - w) * tsoi[:, 3] - 273.15
    np.testing.assert_allclose(ds["tsoil"].values[:, 0], expect, atol=1e-4)
    # specific values: 1 Jan (frozen) and 30 Jun of the file
    assert ds["tsoil"].values[0, 0] == pytest.approx(-15.6432, abs=1e-3)
    assert ds["tsoil"].values[180, 0] == pytest.approx(8.8081, abs=1e-3)
    assert "0.09 m" in ds.attrs["tsoil_source"] and "0.16 m" in ds.attrs["tsoil_source"]
    assert ds["tsoil"].attrs["units"] == "degC"


def test_bow_rain_per_step_and_liquid_water(bow):
    ds = clm.read_drivers(bow, 0.15).load()
    with netCDF4.Dataset(bow) as nc:
        rain = nc["RAIN"][:, 0].astype("float64")
        liq = nc["SOILLIQ"][:, :, 0].astype("float64")
        snow = nc["SNOW"][:, 0].astype("float64")
    # the wettest day: 0.00024248 mm/s x 86400 s = 20.95 mm
    assert int(np.argmax(rain)) == 189
    assert ds["precip"].values[189, 0] == pytest.approx(20.9504, abs=1e-3)
    np.testing.assert_allclose(ds["precip"].values[:, 0], rain * 86400.0, rtol=1e-6, atol=1e-9)
    # liquid water content: SOILLIQ / (1000 kg m-3 x dz), dz = 0.06 m (0.09 m node), 0.08 m (0.16 m)
    w = 1.0 / 7.0
    theta = w * liq[:, 2] / 60.0 + (1 - w) * liq[:, 3] / 80.0
    np.testing.assert_allclose(ds["swc"].values[:, 0], theta, rtol=1e-5)
    assert ds["swc"].values[180, 0] == pytest.approx(0.12122, abs=1e-4)
    with_snow = clm.read_drivers(bow, 0.15, include_snow=True).load()
    np.testing.assert_allclose(with_snow["precip"].values[:, 0], (rain + snow) * 86400.0, rtol=1e-5)


def test_bow_has_no_carbon_fluxes(bow):
    with pytest.raises(ValueError, match=r"fortran_clm5_bow_2009.nc: missing variables 'SR' and 'HR'"):
        clm.read_fluxes(bow)


# ----------------------------------------------------------------------------------------------
# small history files written by the tests
LEV = np.array([0.01, 0.04, 0.09, 0.16, 0.26], dtype="float32")


def write_history(path, *, layout="column", ncol=3, ntime=4, calendar="noleap", start=0.0,
                  step_days=1.0 / 48, tsoi_units="K", with_h2osoi=True, fluxes=True, drop=(),
                  time_units="days since 2001-01-01 00:00:00", bounds=True):
    """A CLM-like history file; values encode (time, level, column) so tests can check them."""
    t = start + step_days * np.arange(1, ntime + 1)
    shape_h = {"column": ("column",), "lndgrid": ("lndgrid",), "latlon": ("lat", "lon")}[layout]
    hsize = {"column": (ncol,), "lndgrid": (ncol,), "latlon": (2, 2)}[layout]
    n = int(np.prod(hsize))
    col = np.arange(n, dtype="float64")
    tt = np.arange(ntime, dtype="float64")[:, None]
    lev = np.arange(len(LEV), dtype="float64")[None, :, None]
    flat = 280.0 + tt[:, :, None] + lev + 0.1 * col[None, None, :]
    tsoi = flat.reshape(ntime, len(LEV), *hsize)
    h2o = (0.1 + 0.01 * lev + 0.0 * flat).reshape(tsoi.shape)
    vars_ = {
        "TSOI": ((("time", "levgrnd") + shape_h), tsoi, tsoi_units),
        "H2OSOI": ((("time", "levsoi") + shape_h), h2o, "mm3/mm3"),
        "RAIN": ((("time",) + shape_h), np.full((ntime,) + hsize, 1e-4), "mm/s"),
        "SR": ((("time",) + shape_h), np.full((ntime,) + hsize, 12.011e-6 * 2.0), "gC/m^2/s"),
        "HR": ((("time",) + shape_h), np.full((ntime,) + hsize, 12.011e-6 * 1.5), "gC/m^2/s"),
    }
    if not with_h2osoi:
        vars_.pop("H2OSOI")
    if not fluxes:
        vars_.pop("SR"), vars_.pop("HR")
    ds = xr.Dataset({k: (d, v.astype("float32"), {"units": u, "cell_methods": "time: mean"})
                     for k, (d, v, u) in vars_.items() if k not in drop})
    ds = ds.assign_coords(levgrnd=("levgrnd", LEV, {"units": "m"}), levsoi=("levsoi", LEV, {"units": "m"}))
    if "time" not in drop:
        ds["time"] = ("time", t, {"units": time_units, "calendar": calendar, "bounds": "time_bounds"})
        if bounds:
            ds["time_bounds"] = (("time", "hist_interval"), np.stack([t - step_days, t], axis=1))
    if layout == "column":
        ds["cols1d_lon"] = ("column", 240.0 + col)
        ds["cols1d_lat"] = ("column", 46.0 + col)
    if layout == "latlon":
        ds = ds.assign_coords(lat=("lat", [46.0, 47.0]), lon=("lon", [240.0, 241.0]))
        ds["landmask"] = (("lat", "lon"), np.array([[1, 0], [1, 1]], dtype="int32"))
    ds.to_netcdf(path, encoding={"time": {"dtype": "float64"}} if "time" not in drop else None)
    return path


def test_column_layout_noleap_h2osoi_and_fluxes(tmp_path):
    p = write_history(tmp_path / "h1.nc")
    ds = clm.read_drivers(p, 0.15).load()
    assert ds.sizes == {"time": 4, "column": 3}
    assert ds.attrs["step_seconds"] == pytest.approx(1800.0)
    assert ds["time"].values[0] == cftime.DatetimeNoLeap(2001, 1, 1, 0, 30)
    # TSOI(level 2) = 282 + t + 0.1 c, level 3 = 283 + t + 0.1 c -> at 0.15 m: w = 1/7 on level 2
    np.testing.assert_allclose(ds["tsoil"].values[0], 282.0 + 6 / 7 + 0.1 * np.arange(3) - 273.15, atol=1e-4)
    np.testing.assert_allclose(ds["swc"].values[0], 0.12 + 6 / 7 * 0.01, atol=1e-6)
    np.testing.assert_allclose(ds["precip"].values, 1e-4 * 1800.0, rtol=1e-6)
    np.testing.assert_allclose(ds["lon"].values, [240.0, 241.0, 242.0])
    fx = clm.read_fluxes(p).load()
    np.testing.assert_allclose(fx["sr"].values, 2.0, rtol=1e-6)
    np.testing.assert_allclose(fx["hr"].values, 1.5, rtol=1e-6)
    assert fx["sr"].attrs["units"] == "umol m-2 s-1"


def test_gridded_layout_keeps_land_cells(tmp_path):
    p = write_history(tmp_path / "g.nc", layout="latlon")
    ds = clm.read_drivers(p, 0.15).load()
    assert ds.sizes["column"] == 3  # the ocean cell (lat 46, lon 241) is dropped
    np.testing.assert_allclose(ds["lat"].values, [46.0, 47.0, 47.0])
    np.testing.assert_allclose(ds["lon"].values, [240.0, 240.0, 241.0])
    # column value offsets 0, 2, 3 (row-major cell index of the land cells)
    np.testing.assert_allclose(ds["tsoil"].values[0] - ds["tsoil"].values[0, 0], [0.0, 0.2, 0.3], atol=1e-4)


def test_many_files_open_as_one(tmp_path):
    a = write_history(tmp_path / "a.nc", layout="lndgrid", ntime=3)
    b = write_history(tmp_path / "b.nc", layout="lndgrid", ntime=2, start=3.0 / 48)
    ds = clm.read_drivers([a, b], 0.05)
    assert ds.sizes == {"time": 5, "column": 3}
    assert ds.attrs["step_seconds"] == pytest.approx(1800.0)
    with pytest.raises(ValueError, match="not strictly increasing"):
        clm.read_drivers([b, a], 0.05)


def test_mcdate_mcsec_when_time_is_absent(tmp_path):
    p = write_history(tmp_path / "m.nc", drop=("time",))
    with netCDF4.Dataset(p, "a") as nc:
        v = nc.createVariable("mcdate", "i4", ("time",))
        v[:] = [20010101, 20010101, 20010101, 20010101]
        s = nc.createVariable("mcsec", "i4", ("time",))
        s[:] = [1800, 3600, 5400, 7200]
    t = clm.read_drivers(p, 0.15)["time"].values
    assert t[1] == cftime.DatetimeNoLeap(2001, 1, 1, 1, 0)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(drop=("TSOI",)), r"h\.nc: missing variable\(s\) \['TSOI'\]"),
        (dict(tsoi_units="degF"), r"h\.nc: variable 'TSOI' has units 'degF'; expected 'K'"),
        (dict(calendar="martian"), r"h\.nc: variable 'time': cannot decode .*calendar 'martian'"),
        (dict(time_units="fortnights since 2001-01-01"), r"h\.nc: variable 'time': cannot decode"),
        (dict(with_h2osoi=False), r"h\.nc: missing variable 'H2OSOI' .* 'SOILLIQ'"),
        (dict(drop=("time",)), r"h\.nc: no time variable"),
    ],
)
def test_bad_history_files_name_file_and_variable(tmp_path, kwargs, pattern):
    p = write_history(tmp_path / "h.nc", **kwargs)
    with pytest.raises(ValueError, match=pattern):
        clm.read_drivers(p, 0.15)


def test_depth_outside_levels_and_missing_file(tmp_path):
    p = write_history(tmp_path / "h.nc")
    with pytest.raises(ValueError, match=r"'TSOI': depth 0.5 m is outside the node depths"):
        clm.read_drivers(p, 0.5)
    with pytest.raises(FileNotFoundError, match="nope.nc"):
        clm.read_drivers(tmp_path / "nope.nc", 0.15)


def test_not_a_netcdf_file(tmp_path):
    p = tmp_path / "junk.nc"
    p.write_text("not netcdf")
    with pytest.raises(ValueError, match=r"junk.nc: not a readable NetCDF file"):
        clm.read_drivers(p, 0.15)
