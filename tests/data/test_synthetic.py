"""rsoil_couple.synthetic: a labelled, deterministic, physically shaped synthetic dryland site."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rsoil_couple import data
from rsoil_couple.data.synthetic import SYNTHETIC_SITE, synthetic_site


@pytest.fixture(scope="module")
def site():
    return synthetic_site()


def test_labelled_synthetic_and_canonical(site, tmp_path):
    assert site.attrs["synthetic"] == "yes" and site.attrs["title"].startswith("SYNTHETIC")
    assert list(site.column.values) == [SYNTHETIC_SITE] and "SYNTHETIC" in SYNTHETIC_SITE
    assert site.attrs["step_seconds"] == 1800 and site.sizes["time"] == 120 * 48
    assert pd.Timestamp(site.time.values[0]) == pd.Timestamp("2019-06-01 00:30")
    data.check_canonical(site, "synthetic")
    back = data.read_site(data.write_canonical(site, tmp_path / "syn.nc"))
    assert back.attrs["synthetic"] == "yes" and back.attrs["title"].startswith("SYNTHETIC")
    np.testing.assert_array_equal(back.rsoil.values, site.rsoil.values)


def test_deterministic_for_a_seed(site):
    assert synthetic_site().identical(site)
    other = synthetic_site(seed=1)
    assert not np.array_equal(other.rsoil.values, site.rsoil.values)


def test_physics(site):
    s = site.isel(column=0).to_dataframe()
    assert s.rsoil.min() > 0 and s.swc.between(0.0, 0.31).all() and (s.precip >= 0).all()
    assert s.tsoil.iloc[:480].mean() > 20 and s.tsoil.min() < 10   # seasonal cooling
    assert s.swc.iloc[-48:].mean() < s.swc.iloc[:48].mean()          # seasonal drying
    # diel hysteresis: respiration peaks hours before the 15-cm soil temperature
    hour = s.index.hour + s.index.minute / 60
    diel = s[["rsoil", "tsoil"]].groupby(hour).mean()
    lead = (diel.tsoil.idxmax() - diel.rsoil.idxmax()) % 24
    assert 1.5 <= lead <= 4.0 and site.attrs["lag_hours"] == pytest.approx(2.6, abs=0.1)
    # Birch pulses: after each big rain on dry soil the flux jumps above its pre-rain level
    i = int(np.flatnonzero(s.precip.values > 2)[0])
    assert s.rsoil.iloc[i:i + 6].max() > 1.5 * s.rsoil.iloc[i - 48:i].max()


def test_options_and_bad_parameters():
    hourly = synthetic_site(days=10, step_minutes=60, seed=3, tmean_end_c=27.0)
    assert hourly.attrs["step_seconds"] == 3600 and hourly.sizes["time"] == 240
    with pytest.raises(ValueError, match="unknown parameter.*q11"):
        synthetic_site(q11=2.0)
    with pytest.raises(ValueError, match="step_minutes=7 must divide a day"):
        synthetic_site(step_minutes=7)
