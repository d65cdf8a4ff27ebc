"""rsoil_couple.mi: fixed-binning MI, the lag sign convention, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rsoil_couple import cli, data
from rsoil_couple.baselines import mi
from rsoil_couple.data.synthetic import synthetic_site


def test_mutual_information_hand_values():
    x = np.array([0.0, 0.0, 1.0, 1.0])
    assert mi.mutual_information(x, x, bins=2) == pytest.approx(1.0)          # H(X) = 1 bit
    assert mi.mutual_information(x, np.array([0.0, 1.0, 0.0, 1.0]), bins=2) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="different lengths"):
        mi.mutual_information(x, x[:3])


def test_known_lag_is_recovered_with_the_future_positive_sign():
    ds = synthetic_site(days=30, seed=2)
    rng = np.random.default_rng(0)
    n = ds.sizes["time"]
    t = rng.normal(20.0, 5.0, n)                 # no diel cycle: one unambiguous peak
    r = np.full(n, np.nan)
    r[:-4] = np.exp(0.1 * t[4:])                 # Rsoil(t) depends on tsoil(t + 2 h)
    ds["tsoil"].values[:, 0] = t
    ds["rsoil"].values[:, 0] = r
    out = mi.lagged_mi(ds, drivers=["tsoil"], progress=False)
    assert out["drivers"]["tsoil"]["peak_lag_hours"] == 2.0
    assert len(out["lags_hours"]) == 97 and out["lags_hours"][0] == -24.0
    assert out["drivers"]["tsoil"]["peak_mi"] > 5 * out["drivers"]["tsoil"]["mi_shuffled"]


def test_synthetic_site_lag_and_nonzero_precip():
    ds = synthetic_site()
    out = mi.lagged_mi(ds, progress=False)
    assert set(out["drivers"]) == {"tsoil", "swc", "precip", "rg", "tair"}
    assert out["drivers"]["tsoil"]["peak_lag_hours"] == pytest.approx(ds.attrs["lag_hours"],
                                                                      abs=0.6)
    assert out["drivers"]["precip"]["n_values"] == int((ds.precip.values > 0).sum())


def test_hourly_steps_and_errors():
    ds = synthetic_site(days=20, step_minutes=60)
    out = mi.lagged_mi(ds, drivers=["swc"], max_lag_hours=6, progress=False)
    assert out["lags_hours"] == [float(h) for h in range(-6, 7)]
    with pytest.raises(ValueError, match="driver 'par' not in the dataset"):
        mi.lagged_mi(ds, drivers=["par"], progress=False)
    with pytest.raises(ValueError, match="no 'rsoil' variable"):
        mi.lagged_mi(ds.drop_vars("rsoil"), progress=False)


def test_cli_writes_json_and_figure(tmp_path, capsys):
    nc = data.write_canonical(synthetic_site(days=15), tmp_path / "syn.nc")
    assert cli.main(["mi", "--data", str(nc), "--out", str(tmp_path / "o")]) == 0
    res = json.loads((tmp_path / "o" / "mi.json").read_text())
    assert res["synthetic"] == "yes" and res["bins"] == 50 and "FUTURE" in res["convention"]
    assert (tmp_path / "o" / "mi.png").stat().st_size > 10_000
    assert "tsoil" in capsys.readouterr().out


def test_cli_forcing_only_file_is_a_clear_error(shared_data, tmp_path, capsys):
    f = shared_data / "US-Hn1" / "US-Hn1_2016-2017_forcing_30min.csv"
    assert cli.main(["mi", "--data", str(f), "--out", str(tmp_path)]) == 2
    assert "no 'rsoil' variable" in capsys.readouterr().err


def test_us_hn1_tsoil_peak_is_in_the_past(shared_data):
    """Measured on US-Hn1 2019: 15-cm soil temperature shares most information with Rsoil
    about 4 h BEFORE it (and, one diel period on, 20.5 h after) — not the paper's +2 h."""
    ds = data.read_site(shared_data / "US-Hn1" / "US-Hn1_2019_30min.csv")
    out = mi.lagged_mi(ds, drivers=["tsoil"], progress=False)
    mi_t = np.array(out["drivers"]["tsoil"]["mi"])
    lags = np.array(out["lags_hours"])
    near = np.abs(lags) <= 12
    assert lags[near][np.argmax(mi_t[near])] == -4.0
    assert out["drivers"]["tsoil"]["peak_lag_hours"] == 20.5
