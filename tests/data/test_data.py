"""rsoil_couple.data: readers of every real file, canonical NetCDF round trip, and bad input."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rsoil_couple import data
from rsoil_couple.data import QC_FLAGS, DataError, read_site


# --------------------------------------------------------------------------------------------
# small CSV fixtures made here
# --------------------------------------------------------------------------------------------
def _mapped_csv(tmp_path: Path, n: int = 48, name: str = "site.csv", **edit) -> Path:
    """A generic CSV: time (END), soil temperature in K, SWC in %, rain rate in mm/h, flux."""
    t = pd.date_range("2020-07-01 00:30", periods=n, freq="30min")
    h = np.arange(n) / 2.0
    df = pd.DataFrame({
        "stamp": t.strftime("%Y-%m-%d %H:%M"),
        "T_K": 293.15 + 5 * np.sin(2 * np.pi * h / 24),
        "VWC_pct": np.full(n, 12.0),
        "rain_mm_h": np.where(np.arange(n) == 10, 2.0, 0.0),
        "flux": np.linspace(1.0, 2.0, n),
    })
    for col, fn in edit.items():
        df = fn(df) if col == "frame" else df.assign(**{col: fn(df[col])})
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


MAPPING = {"time": ("stamp", "end"), "tsoil": ("T_K", "K"), "swc": ("VWC_pct", "%"),
           "precip": ("rain_mm_h", "mm h-1"), "rsoil": ("flux", "umol m-2 s-1")}


def test_mapped_csv_converts_units(tmp_path):
    ds = read_site(_mapped_csv(tmp_path), mapping=MAPPING, site="X")
    assert ds.attrs["step_seconds"] == 1800
    assert list(ds["column"].values) == ["X"]
    np.testing.assert_allclose(ds.tsoil.values[0, 0], 5 * np.sin(0.0) + 20.0, atol=1e-9)
    np.testing.assert_allclose(ds.swc.values[:, 0], 0.12)
    assert ds.precip.values[10, 0] == pytest.approx(1.0)  # 2 mm/h over 30 min = 1 mm per step
    assert ds.tsoil.attrs["units"] == "degC" and ds.swc.attrs["units"] == "m3 m-3"
    assert ds.qc.dtype == np.uint8 and int(ds.qc.values.max()) == 0
    assert ds.attrs["synthetic"] == "no"
    assert pd.Timestamp(ds.time.values[0]) == pd.Timestamp("2020-07-01 00:30")


def test_start_anchored_time_is_shifted_to_end(tmp_path):
    m = dict(MAPPING, time=("stamp", "start"))
    ds = read_site(_mapped_csv(tmp_path), mapping=m)
    assert pd.Timestamp(ds.time.values[0]) == pd.Timestamp("2020-07-01 01:00")


def _err(tmp_path, mapping=MAPPING, **edit) -> str:
    path = _mapped_csv(tmp_path, **edit)
    with pytest.raises(DataError) as exc:
        read_site(path, mapping=mapping)
    msg = str(exc.value)
    assert str(path) in msg, msg  # every message names the file
    return msg


def test_unknown_unit_names_file_column_and_units(tmp_path):
    msg = _err(tmp_path, mapping=dict(MAPPING, tsoil=("T_K", "Rankine")))
    assert "'T_K'" in msg and "Rankine" in msg and "degC" in msg


def test_wrong_column_name(tmp_path):
    msg = _err(tmp_path, mapping=dict(MAPPING, swc=("SWC_15cm", "m3 m-3")))
    assert "SWC_15cm" in msg and "not found" in msg and "m3 m-3" in msg


def test_duplicated_timestamps(tmp_path):
    dup = lambda s: s.where(s.index != 5, s.iloc[4])  # noqa: E731
    msg = _err(tmp_path, stamp=dup)
    assert "duplicated timestamp" in msg and "'stamp'" in msg


def test_non_monotonic_time(tmp_path):
    def swap(s):
        s = s.copy()
        s.iloc[[5, 6]] = s.iloc[[6, 5]].values
        return s
    msg = _err(tmp_path, stamp=swap)
    assert "not monotonic" in msg and "'stamp'" in msg


def test_irregular_step(tmp_path):
    def jitter(s):
        t = pd.to_datetime(s)
        t.iloc[7] = t.iloc[7] + pd.Timedelta("7min")
        return t.dt.strftime("%Y-%m-%d %H:%M")
    msg = _err(tmp_path, stamp=jitter)
    assert "irregular time step" in msg and "'stamp'" in msg


def test_all_nan_driver(tmp_path):
    msg = _err(tmp_path, VWC_pct=lambda s: s * np.nan)
    assert "'VWC_pct'" in msg and "all values missing" in msg and "m3 m-3" in msg


def test_values_that_need_other_units_are_an_error(tmp_path):
    # SWC in percent declared as m3 m-3: every value > 1
    msg = _err(tmp_path, mapping=dict(MAPPING, swc=("VWC_pct", "m3 m-3")))
    assert "'VWC_pct'" in msg and "physical range" in msg and "wrong units" in msg


def test_gaps_are_regridded_and_counted(tmp_path):
    path = _mapped_csv(tmp_path, frame=lambda df: df.drop(index=[10, 11, 12, 30]))
    ds = read_site(path, mapping=MAPPING)
    assert ds.sizes["time"] == 48 and ds.attrs["n_time_inserted"] == 4
    assert ds.attrs["n_tsoil_missing"] == 4
    ins = (ds.qc.values[:, 0] & QC_FLAGS["time_inserted"]) > 0
    assert list(np.flatnonzero(ins)) == [10, 11, 12, 30]
    assert np.all(ds.qc.values[ins, 0] & QC_FLAGS["tsoil_missing"])
    rep = data.gap_report(ds)
    gaps = rep["columns"][ds.column.values[0]]["tsoil"]["gaps"]
    assert [g[2] for g in gaps] == [3, 1]
    assert gaps[0][0] == pd.Timestamp(ds.time.values[10]).isoformat()
    assert rep["columns"][ds.column.values[0]]["tsoil"]["longest_gap_steps"] == 3


def test_missing_and_minus_9999_are_nan_not_filled(tmp_path):
    path = _mapped_csv(tmp_path, flux=lambda s: s.where(s.index != 3, -9999.0))
    ds = read_site(path, mapping=MAPPING)
    assert np.isnan(ds.rsoil.values[3, 0]) and ds.attrs["n_rsoil_missing"] == 1
    assert ds.qc.values[3, 0] & QC_FLAGS["rsoil_missing"]


def test_non_numeric_cell(tmp_path):
    msg = _err(tmp_path, flux=lambda s: s.astype(object).where(s.index != 4, "n/a?"))
    assert "'flux'" in msg and "non-numeric value 'n/a?'" in msg and "line 6" in msg


def test_unrecognised_csv_without_mapping(tmp_path):
    path = _mapped_csv(tmp_path)
    with pytest.raises(DataError, match=re.escape(str(path)) + ".*unrecognised format"):
        read_site(path)


def test_mapping_with_unknown_variable(tmp_path):
    msg = _err(tmp_path, mapping=dict(MAPPING, soil_temp=("T_K", "K")))
    assert "soil_temp" in msg and "canonical" in msg


def test_canonical_netcdf_round_trip(tmp_path):
    ds = read_site(_mapped_csv(tmp_path, frame=lambda df: df.drop(index=[20])), mapping=MAPPING,
                   site="X")
    nc = data.write_canonical(ds, tmp_path / "x.nc")
    back = read_site(nc)
    for v in ("tsoil", "swc", "precip", "rsoil", "qc"):
        np.testing.assert_array_equal(back[v].values, ds[v].values)
    np.testing.assert_array_equal(back.time.values, ds.time.values)
    assert list(back.column.values) == ["X"]
    assert back.qc.attrs["flag_meanings"].split() == list(QC_FLAGS)
    for key in ("step_seconds", "site", "synthetic", "n_time_inserted"):
        assert back.attrs[key] == ds.attrs[key], key
    assert back.attrs["source"] == ds.attrs["source"]


def test_netcdf_units_are_converted(tmp_path):
    ds = read_site(_mapped_csv(tmp_path), mapping=MAPPING)
    k = ds.copy()
    k["tsoil"] = k.tsoil + 273.15
    k["tsoil"].attrs = dict(ds.tsoil.attrs)
    nc = tmp_path / "k.nc"
    data.write_canonical(ds, nc)
    import xarray as xr
    raw = xr.load_dataset(nc)
    raw["tsoil"] = raw.tsoil + 273.15
    raw["tsoil"].attrs["units"] = "K"
    raw.to_netcdf(tmp_path / "k2.nc")
    back = read_site(tmp_path / "k2.nc")
    np.testing.assert_allclose(back.tsoil.values, ds.tsoil.values, atol=1e-9)
    raw["tsoil"].attrs["units"] = "furlongs"
    raw.to_netcdf(tmp_path / "k3.nc")
    with pytest.raises(DataError, match=r"k3\.nc.*'tsoil'.*unknown unit 'furlongs'"):
        read_site(tmp_path / "k3.nc")


def test_write_canonical_refuses_non_canonical(tmp_path):
    ds = read_site(_mapped_csv(tmp_path), mapping=MAPPING)
    bad = ds.copy()
    bad["tsoil"].attrs["units"] = "K"
    with pytest.raises(DataError, match="'tsoil' has units 'K'"):
        data.write_canonical(bad, tmp_path / "bad.nc")


def test_concat_sites(tmp_path):
    a = read_site(_mapped_csv(tmp_path, name="a.csv"), mapping=MAPPING, site="A")
    b = read_site(_mapped_csv(tmp_path, n=20, name="b.csv"), mapping=MAPPING, site="B")
    both = data.concat_sites([a, b])
    assert list(both.column.values) == ["A", "B"] and both.sizes["time"] == 48
    assert np.isnan(both.tsoil.values[30, 1]) and both.qc.values[30, 1] & QC_FLAGS["time_inserted"]
    np.testing.assert_array_equal(both.tsoil.values[:, 0], a.tsoil.values[:, 0])
    with pytest.raises(DataError, match="not unique"):
        data.concat_sites([a, a])
    hourly = a.isel(time=slice(0, None, 2)).assign_attrs(step_seconds=3600)
    with pytest.raises(DataError, match="steps differ"):
        data.concat_sites([a, hourly])


def test_ameriflux_base(tmp_path):
    n = 48
    t0 = pd.date_range("2021-05-01 00:00", periods=n, freq="30min")
    df = pd.DataFrame({
        "TIMESTAMP_START": t0.strftime("%Y%m%d%H%M").astype(np.int64),
        "TIMESTAMP_END": (t0 + pd.Timedelta("30min")).strftime("%Y%m%d%H%M").astype(np.int64),
        "TS_1_2_1": np.full(n, 11.0), "TS_1_1_1": np.full(n, 15.0),
        "SWC_1_1_1": np.full(n, 20.0), "P": np.zeros(n), "TA": np.full(n, 12.0),
        "SW_IN": np.full(n, 100.0),
    })
    df.loc[3, "TS_1_1_1"] = -9999
    path = tmp_path / "AMF_US-Xyz_BASE_HH_1-5.csv"
    path.write_text("# Site: US-Xyz\n# Version: 1-5\n" + df.to_csv(index=False))
    ds = read_site(path)
    assert ds.attrs["site"] == "US-Xyz" and ds.attrs["step_seconds"] == 1800
    assert ds.tsoil.attrs["source_column"] == "TS_1_1_1"  # the shallowest vertical index
    np.testing.assert_allclose(ds.swc.values[:, 0], 0.20)  # percent -> m3 m-3
    assert np.isnan(ds.tsoil.values[3, 0]) and ds.attrs["n_tsoil_missing"] == 1
    assert pd.Timestamp(ds.time.values[0]) == pd.Timestamp("2021-05-01 00:30")
    assert "rsoil" not in ds and "tair" in ds and "rg" in ds
    # a mapping adds a chamber flux column
    df["FCH"] = 1.0
    path.write_text(df.to_csv(index=False))
    ds = read_site(path, mapping={"rsoil": ("FCH", "umol m-2 s-1")})
    assert float(ds.rsoil.mean()) == 1.0


def test_ameriflux_base_without_ts(tmp_path):
    path = tmp_path / "AMF_US-Xyz_BASE_HH_1-5.csv"
    path.write_text("TIMESTAMP_START,TIMESTAMP_END,P\n202101010000,202101010030,0\n"
                    "202101010030,202101010100,0\n")
    with pytest.raises(DataError, match=re.escape(str(path)) + ".*no soil temperature column"):
        read_site(path)


def test_units_catalogue():
    assert data.convert_units(np.array([1.0]), "kg m-2 s-1", "precip", step_seconds=1800,
                              where="x")[0] == 1800.0
    np.testing.assert_allclose(
        data.convert_units(np.array([12.011e-6]), "gC m-2 s-1", "rsoil", step_seconds=1800,
                           where="x"), [1.0])
    assert data.convert_units(np.array([50.0]), "µmol m-2 s-1", "rsoil", step_seconds=1,
                              where="x")[0] == 50.0
    with pytest.raises(DataError, match=r"f\.csv: column 'c' \(swc\): unknown unit 'kg'"):
        data.convert_units(np.array([1.0]), "kg", "swc", step_seconds=1,
                           where="f.csv: column 'c'")


# --------------------------------------------------------------------------------------------
# every real file in ../shared/data
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real(shared_data):
    """Every registered real file, read once for this module."""
    return {name: read_site(shared_data / info.path) for name, info in data.SITES.items()}


def test_every_registered_file_reads(real):
    for name, ds in real.items():
        info = data.SITES[name]
        assert ds.attrs["step_seconds"] == info.step_seconds, name
        assert ds.attrs["site"] == info.site and list(ds.column.values) == [info.site], name
        assert ("rsoil" in ds) == info.has_rsoil, name
        assert ds.attrs["synthetic"] == "no" and ds.attrs["source"] == Path(info.path).name
        assert ds.tsoil.attrs["units"] == "degC" and ds.qc.dtype == np.uint8
        assert np.all(np.diff(ds.time.values).astype("timedelta64[s]").astype(int)
                      == info.step_seconds), name
        data.check_canonical(ds, name)


def test_us_hn1_2019_values(real):
    ds = real["US-Hn1_2019"]
    assert ds.sizes["time"] == 5088 and ds.attrs["depth_m"] == 0.15
    assert pd.Timestamp(ds.time.values[0]) == pd.Timestamp("2019-06-01 00:00")
    assert pd.Timestamp(ds.time.values[-1]) == pd.Timestamp("2019-09-14 23:30")
    assert ds.tsoil.values[0, 0] == pytest.approx(27.9983643333333)
    assert ds.swc.values[0, 0] == pytest.approx(0.0795833406666667)
    # rsoil is the chamber's raw 30-min mean at its END timestamp
    assert ds.rsoil.values[0, 0] == pytest.approx(0.375)
    assert ds.rsoil.attrs["source_column"] == "Rsoil_chamber_raw30"
    # 55 gap-filled rows (2019-06-03 09:30 .. 2019-06-04 12:30) are not observations
    assert ds.attrs["n_rsoil_gapfilled_removed"] == 55 and ds.attrs["n_rsoil_missing"] == 55
    gf = (ds.qc.values[:, 0] & QC_FLAGS["rsoil_gapfilled_removed"]) > 0
    assert gf.sum() == 55 and np.all(np.isnan(ds.rsoil.values[gf, 0]))
    t = pd.DatetimeIndex(ds.time.values[gf])
    assert t[0] == pd.Timestamp("2019-06-03 09:30") and t[-1] == pd.Timestamp("2019-06-04 12:30")
    # the file's 'Rsoil' column is the raw mean one step later on every other observed row
    assert ds.attrs["n_Rsoil_equal_raw30_next_step"] == 5031
    assert ds.precip.values.sum() == pytest.approx(22.352)
    assert set(ds.data_vars) == {"tsoil", "swc", "precip", "rsoil", "tair", "rg", "qc"}


def test_us_hn1_file_rsoil_column_option(shared_data):
    ds = data.read_us_hn1(shared_data / data.SITES["US-Hn1_2019"].path, rsoil_column="Rsoil")
    assert ds.rsoil.values[0, 0] == pytest.approx(0.37)
    assert ds.attrs["n_rsoil_gapfilled_removed"] == 55


def test_us_hn1_forcing_only(real):
    ds = real["US-Hn1_2016-2017"]
    assert "rsoil" not in ds and ds.sizes["time"] == 18960
    assert pd.Timestamp(ds.time.values[0]) == pd.Timestamp("2016-06-01 00:00")
    assert ds.tsoil.values[0, 0] == pytest.approx(26.518841)


def test_us_bi1(real):
    ds = real["US-Bi1"]
    assert ds.sizes["time"] == 61392 and np.isnan(ds.attrs["depth_m"])
    assert ds.attrs["n_rsoil_missing"] == 547
    assert ds.attrs["n_rsoil_negative"] == int((ds.rsoil.values < 0).sum()) > 0


def test_cosore_sites(real):
    wkg = real["US-Wkg"]
    assert "precip" not in wkg and wkg.attrs["depth_m"] == 0.05
    assert pd.Timestamp(wkg.time.values[0]) == pd.Timestamp("2017-01-01 01:00")
    assert wkg.rsoil.values[0, 0] == pytest.approx(0.15333333333333332)
    assert wkg.attrs["n_tsoil_spike_removed"] == 0  # hot June soil (up to 57.7 degC) is kept
    assert float(wkg.tsoil.max()) > 55
    # US-SRM: the 10 readings of 54-66 degC at noon in March 2017 are spikes, removed and flagged
    srm = real["US-SRM"]
    assert srm.attrs["n_tsoil_spike_removed"] == 10
    assert float(srm.tsoil.max()) < 50
    spk = (srm.qc.values[:, 0] & QC_FLAGS["value_removed_out_of_range"]) > 0
    assert spk.sum() == 10 and pd.Timestamp(srm.time.values[spk][0]) == pd.Timestamp(
        "2017-03-16 14:00")
    # ES-Agu: negative fluxes are kept and flagged
    agu = real["ES-Agu"]
    neg = agu.rsoil.values[:, 0] < 0
    assert agu.attrs["n_rsoil_negative"] == neg.sum() == 3328
    assert np.all(agu.qc.values[neg, 0] & QC_FLAGS["rsoil_negative"])
    assert real["Haibei"].attrs["step_seconds"] == 3600 and float(real["Haibei"].tsoil.min()) < 0


def test_registered_name_and_clm_history_refused(shared_data, monkeypatch):
    monkeypatch.setenv("RSOIL_SHARED_DATA", str(shared_data))
    assert read_site("US-Wkg").attrs["site"] == "US-Wkg"
    clm = shared_data / "clm" / "fortran_clm5_bow_2009.nc"
    with pytest.raises(DataError, match=re.escape(str(clm)) + ".*'tsoil' not found.*CLM"):
        read_site(clm)


def test_shared_data_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("RSOIL_SHARED_DATA", str(tmp_path))
    assert data.shared_data_dir() == tmp_path
    assert data.site_path("US-Bi1") == tmp_path / data.SITES["US-Bi1"].path
