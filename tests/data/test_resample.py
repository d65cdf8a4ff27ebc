"""rsoil_couple.data.resample: the one rule (means, sums, sparse Rsoil with a count, gaps kept, qc
OR-ed, END stamps), checked value by value on a small Dataset; identity; refusals."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from rsoil_couple import data
from rsoil_couple.data import QC_FLAGS, DataError, read_site, resample, write_canonical

NAN = np.nan
MAPPING = {"time": ("stamp", "end"), "tsoil": ("T", "degC"), "swc": ("W", "m3 m-3"),
           "precip": ("P", "mm"), "rsoil": ("R", "umol m-2 s-1")}


def _site(tmp_path, start="2020-07-01 00:30", **cols):
    n = len(cols["T"])
    t = pd.date_range(start, periods=n, freq="30min")
    df = pd.DataFrame({"stamp": t.strftime("%Y-%m-%d %H:%M"), **cols})
    path = tmp_path / "s.csv"
    df.to_csv(path, index=False)
    return read_site(path, mapping=MAPPING, site="S")


@pytest.fixture
def fine(tmp_path):
    # 8 half-hours ending 00:30 .. 04:00 -> 4 hours ending 01:00 .. 04:00
    return _site(tmp_path,
                 T=[10, 12, 14, NAN, 20, 22, 30, 31],
                 W=[0.1, 0.2, 0.3, 0.3, 0.2, 0.2, 0.1, 0.3],
                 P=[0, 1, 2, 0.5, NAN, 0, 0, 0],
                 R=[1, NAN, NAN, NAN, 2, 4, -1, 0.5])


def _col(ds, v):
    return ds[v].values[:, 0]


def test_hand_computed_means_sums_and_gaps(fine):
    h = resample(fine, 3600)
    assert h.attrs["step_seconds"] == 3600 and h.attrs["resampled_from_step_seconds"] == 1800
    assert list(pd.DatetimeIndex(h.time.values).strftime("%H:%M")) == ["01:00", "02:00", "03:00", "04:00"]
    np.testing.assert_allclose(_col(h, "tsoil"), [11, NAN, 21, 30.5])      # one NaN -> NaN
    np.testing.assert_allclose(_col(h, "swc"), [0.15, 0.3, 0.2, 0.2])
    np.testing.assert_allclose(_col(h, "precip"), [1, 2.5, NAN, 0])         # summed, gap kept
    np.testing.assert_allclose(_col(h, "rsoil"), [1, NAN, 3, -0.25])       # mean of valid values
    assert list(_col(h, "rsoil_n")) == [1, 0, 2, 2] and h.rsoil_n.dtype == np.int16
    qc = _col(h, "qc")
    assert qc[1] & QC_FLAGS["tsoil_missing"] and qc[2] & QC_FLAGS["precip_missing"]
    assert qc[1] & QC_FLAGS["rsoil_missing"] and not qc[0] & QC_FLAGS["rsoil_missing"]
    assert qc[3] & QC_FLAGS["rsoil_negative"] and not qc[2] & QC_FLAGS["rsoil_negative"]
    assert h.attrs["n_time"] == 4 and h.attrs["n_tsoil_missing"] == 1 and h.attrs["n_precip_missing"] == 1
    assert h.attrs["n_rsoil_missing"] == 1 and h.attrs["n_rsoil_negative"] == 1
    assert h.attrs["n_rsoil_partial"] == 1 and h.attrs["n_time_inserted"] == 0
    assert h.precip.attrs["cell_methods"] == "time: sum" and h.tsoil.attrs["cell_methods"] == "time: mean"
    data.check_canonical(h, "resampled")


def test_min_rsoil_n_and_two_hours(fine):
    h = resample(fine, 3600, min_rsoil_n=2)
    np.testing.assert_allclose(_col(h, "rsoil"), [NAN, NAN, 3, -0.25])
    assert list(_col(h, "rsoil_n")) == [1, 0, 2, 2]
    two = resample(fine, 7200)                 # k = 4: ends 02:00, 04:00
    np.testing.assert_allclose(_col(two, "tsoil"), [NAN, 25.75])
    np.testing.assert_allclose(_col(two, "swc"), [0.225, 0.2])
    np.testing.assert_allclose(_col(two, "precip"), [3.5, NAN])
    np.testing.assert_allclose(_col(two, "rsoil"), [1, 1.375])
    assert list(_col(two, "rsoil_n")) == [1, 4]


def test_resampling_twice_equals_once(fine):
    once, twice = resample(fine, 7200), resample(resample(fine, 3600), 7200)
    for v in ("tsoil", "swc", "precip", "rsoil", "rsoil_n", "qc"):
        np.testing.assert_allclose(twice[v].values, once[v].values, err_msg=v)
    assert twice.attrs["resampled_from_step_seconds"] == 1800
    assert twice.rsoil_n.attrs["valid_max"] == once.rsoil_n.attrs["valid_max"] == 4


def test_partial_bins_at_the_ends_and_qc_or(tmp_path):
    # 6 half-hours ending 01:00 .. 03:30: the first hour lacks 00:30, the last lacks 04:00
    ds = _site(tmp_path, start="2020-07-01 01:00", T=[1, 2, 3, 4, 5, 6], W=[0.1] * 6,
               P=[0.0] * 6, R=[1, 2, 3, 4, 5, 6])
    qc = ds.qc.values.copy()
    qc[2, 0] |= QC_FLAGS["rsoil_gapfilled_removed"]          # fine step ending 02:00
    ds["qc"] = (("time", "column"), qc, ds.qc.attrs)
    h = resample(ds, 3600)
    assert list(pd.DatetimeIndex(h.time.values).strftime("%H:%M")) == ["01:00", "02:00", "03:00", "04:00"]
    np.testing.assert_allclose(_col(h, "tsoil"), [NAN, 2.5, 4.5, NAN])
    np.testing.assert_allclose(_col(h, "rsoil"), [1, 2.5, 4.5, 6])
    q = _col(h, "qc")
    assert q[0] & QC_FLAGS["time_inserted"] and q[3] & QC_FLAGS["time_inserted"]
    assert not q[1] & QC_FLAGS["time_inserted"] and h.attrs["n_time_inserted"] == 2
    assert q[1] & QC_FLAGS["rsoil_gapfilled_removed"] and not q[2] & QC_FLAGS["rsoil_gapfilled_removed"]


def test_equal_step_is_identity(fine):
    same = resample(fine, 1800)
    xr.testing.assert_identical(same, fine)
    assert same is not fine


@pytest.mark.parametrize("step, msg", [
    (2700, "from step 1800 s to step 2700 s: 2700 s is not a whole multiple of 1800 s"),
    (900, "from step 1800 s to the finer step 900 s"),
    (0, "must be a positive whole number"),
])
def test_refusals_name_both_steps(fine, step, msg):
    with pytest.raises(DataError, match=re.escape(msg)):
        resample(fine, step)


def test_resampled_round_trip_and_concat(fine, tmp_path):
    h = resample(fine, 3600)
    back = read_site(write_canonical(h, tmp_path / "h.nc"))
    np.testing.assert_array_equal(back.rsoil_n.values, h.rsoil_n.values)
    np.testing.assert_allclose(back.rsoil.values, h.rsoil.values)
    assert back.attrs["step_seconds"] == 3600 and back.attrs["n_rsoil_partial"] == 1
    other = h.assign_coords(column=["T"])
    both = data.concat_sites([h, other])
    assert both.rsoil_n.shape == (4, 2) and both.rsoil_n.attrs["units"] == "1"
    assert data.gap_report(h)["columns"]["S"].keys() == {"tsoil", "swc", "precip", "rsoil"}


@pytest.mark.shared_data
def test_us_hn1_to_hourly_keeps_rain_total(shared_data):
    ds = read_site(shared_data / data.SITES["US-Hn1_2019"].path)
    h = resample(ds, 3600)
    # the record's first step ENDS at 00:00 and its last at 23:30: both hours are partial, so
    # 5,088 half-hours give 2,545 hours of which the first and the last are NaN (time_inserted)
    assert h.sizes["time"] == 2545 and h.attrs["n_precip_missing"] == 2 == h.attrs["n_time_inserted"]
    assert pd.Timestamp(h.time.values[0]) == pd.Timestamp("2019-06-01 00:00")
    assert np.nansum(h.precip.values) == pytest.approx(ds.precip.values.sum())
    assert h.rsoil_n.values.sum() == np.isfinite(ds.rsoil.values).sum()
