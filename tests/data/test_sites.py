"""The registry of ../shared/data: every site read by its key, honest metadata, gaps counted; the
COSORE reader's depth choice and the ES-Agu precipitation join."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rsoil_couple import data
from rsoil_couple.data import DataError, gap_report, read_cosore, read_site


# --------------------------------------------------------------------------------------------
# small COSORE-like files made here
# --------------------------------------------------------------------------------------------
def _cosore(tmp_path: Path, n: int = 24, depths=(5,), name: str = "XX-Tst_30min.csv") -> Path:
    t = pd.date_range("2012-05-01 00:30", periods=n, freq="30min")
    df = pd.DataFrame({"TIMESTAMP_END_LST": t.strftime("%Y-%m-%d %H:%M:%S"),
                       "Rs_umol_m2_s": np.linspace(0.5, 1.5, n), "Rs_nports": 2})
    for d in depths:
        df[f"CSR_SM{d}"] = 0.1 + d / 1000
        df[f"CSR_T{d}"] = 20.0 + d
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def _ancillary(tmp_path: Path, site_file: Path, shift: str | None = None, drop: int = 0) -> Path:
    t = pd.to_datetime(pd.read_csv(site_file)["TIMESTAMP_END_LST"])
    if shift:
        t = t + pd.Timedelta(shift)
    t = t[: len(t) - drop]
    p = np.zeros(len(t))
    p[3] = 1.2
    path = tmp_path / "XX-Tst_ancillary_P_30min.csv"
    pd.DataFrame({"TIMESTAMP_END_LST": t.dt.strftime("%Y-%m-%d %H:%M:%S"), "P_mm": p}).to_csv(
        path, index=False)
    return path


def test_cosore_precip_joined_from_ancillary_file(tmp_path):
    site = _cosore(tmp_path)
    anc = _ancillary(tmp_path, site)
    ds = read_cosore(site, precip_file=anc.name)          # relative: beside the site file
    assert ds.precip.attrs["units"] == "mm" and ds.precip.values.sum() == pytest.approx(1.2)
    assert ds.precip.values[3, 0] == 1.2 and anc.name in ds.attrs["precip_source"]
    assert "precip" not in read_cosore(site)              # COSORE alone has no precipitation


@pytest.mark.parametrize("kw", [{"shift": "30min"}, {"drop": 1}])
def test_cosore_precip_timestamps_must_match_row_for_row(tmp_path, kw):
    site = _cosore(tmp_path)
    anc = _ancillary(tmp_path, site, **kw)
    with pytest.raises(DataError, match=re.escape(str(anc)) + ".*does not match.*"
                       + re.escape(str(site)) + ".*row for row"):
        read_cosore(site, precip_file=anc)


def test_cosore_without_5cm_columns_needs_an_explicit_depth(tmp_path):
    site = _cosore(tmp_path, depths=(4, 12))
    with pytest.raises(DataError, match=r"no 5 cm soil driver columns.*at \[4, 12\] cm.*depth_cm"):
        read_cosore(site)
    ds = read_cosore(site, depth_cm=4)
    assert ds.attrs["depth_m"] == 0.04 and float(ds.depth.values[0]) == 0.04
    assert ds.tsoil.attrs["source_column"] == "CSR_T4" and ds.swc.attrs["source_column"] == "CSR_SM4"
    assert "no 5 cm columns" in ds.attrs["depth_note"]
    assert float(ds.tsoil.values[0, 0]) == 24.0


# --------------------------------------------------------------------------------------------
# every registered file of ../shared/data, by its key
# --------------------------------------------------------------------------------------------
@pytest.mark.shared_data
@pytest.mark.parametrize("key", sorted(data.SITES))
def test_registered_site_reads_by_key(key, shared_data, monkeypatch):
    monkeypatch.setenv("RSOIL_SHARED_DATA", str(shared_data))
    info = data.SITES[key]
    ds = read_site(key)
    assert ds.attrs["step_seconds"] == info.step_seconds
    assert ds.attrs["site"] == info.site and list(ds.column.values) == [info.site]
    np.testing.assert_equal(ds.attrs["depth_m"], info.depth_m)
    expected = {"tsoil", "swc"} | ({"precip"} if info.has_precip else set()) | (
        {"rsoil"} if info.has_rsoil else set())
    assert expected <= set(ds.data_vars) and ("precip" in ds) == info.has_precip
    assert ("rsoil" in ds) == info.has_rsoil
    data.check_canonical(ds, key)
    rep = gap_report(ds)
    assert rep["step_seconds"] == info.step_seconds and rep["n_time"] == ds.sizes["time"]
    for v in expected:
        n = int(np.isnan(ds[v].values).sum())
        assert rep["columns"][info.site][v]["n_missing"] == n == ds.attrs[f"n_{v}_missing"]
    # the same file read by its path gets the same reader options
    by_path = read_site(shared_data / info.path)
    assert by_path.attrs["depth_m"] == ds.attrs["depth_m"] or np.isnan(info.depth_m)
    assert set(by_path.data_vars) == set(ds.data_vars)


@pytest.mark.shared_data
def test_new_sites_values(shared_data, monkeypatch):
    monkeypatch.setenv("RSOIL_SHARED_DATA", str(shared_data))
    smer = read_site("SMER")
    assert smer.sizes["time"] == 12884
    assert pd.Timestamp(smer.time.values[0]) == pd.Timestamp("2010-02-11 13:00")
    assert int(np.isfinite(smer.rsoil.values).sum()) == 2367   # ~18 % of the hours measured
    sci = read_site("SCI-Embudo")
    assert sci.attrs["step_seconds"] == 7200 and sci.attrs["depth_m"] == 0.04
    assert sci.tsoil.attrs["source_column"] == "CSR_T4" and sci.swc.attrs["source_column"] == "CSR_SM4"
    with pytest.raises(DataError, match="no 5 cm soil driver columns"):
        read_cosore(shared_data / data.SITES["SCI-Embudo"].path)
    agu = read_site("ES-Agu")
    assert agu.precip.values.sum() == pytest.approx(450.204)
    assert agu.attrs["n_precip_missing"] == 0 and agu.sizes["time"] == 41531
    assert agu.attrs["n_rsoil_negative"] == 3328    # unchanged by the join
