"""rsoil_couple.metrics against values computed by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rsoil_couple import metrics

# obs mean 2.5, deviations -1.5 -0.5 0.5 1.5 (sum of squares 5); errors sim-obs: 0 1 -1 2
OBS = np.array([1.0, 2.0, 3.0, 4.0])
SIM = np.array([1.0, 3.0, 2.0, 6.0])


def test_hand_values():
    assert metrics.mse(OBS, SIM) == pytest.approx((0 + 1 + 1 + 4) / 4)            # 1.5
    assert metrics.rmse(OBS, SIM) == pytest.approx(math.sqrt(1.5))
    assert metrics.nse(OBS, SIM) == pytest.approx(1 - 6 / 5)                      # -0.2
    assert metrics.bias(OBS, SIM) == pytest.approx(2 / 4)                          # 0.5
    # sim mean 3, deviations -2 0 -1 3: cov sum = 3+0-0.5+4.5 = 7, ss_sim = 14
    r = 7 / math.sqrt(5 * 14)
    assert metrics.cc(OBS, SIM) == pytest.approx(r)
    alpha = math.sqrt(14 / 4) / math.sqrt(5 / 4)
    beta = 3 / 2.5
    assert metrics.kge(OBS, SIM) == pytest.approx(
        1 - math.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2))


def test_perfect_and_mean_model():
    assert metrics.nse(OBS, OBS) == 1.0 and metrics.kge(OBS, OBS) == pytest.approx(1.0)
    assert metrics.cc(OBS, OBS) == pytest.approx(1.0) and metrics.mse(OBS, OBS) == 0.0
    assert metrics.nse(OBS, np.full(4, OBS.mean())) == pytest.approx(0.0)


def test_nan_pairs_are_masked():
    obs = np.r_[OBS, np.nan, 7.0]
    sim = np.r_[SIM, 5.0, np.nan]
    out = metrics.all_metrics(obs, sim)
    assert out["n"] == 4
    assert out["mse"] == pytest.approx(1.5) and out["nse"] == pytest.approx(-0.2)
    assert set(out) == {"mse", "rmse", "nse", "kge", "cc", "bias", "n"}


def test_undefined_cases_give_nan():
    const = np.ones(4)
    assert math.isnan(metrics.nse(const, SIM)) and math.isnan(metrics.cc(const, SIM))
    assert math.isnan(metrics.kge(np.array([-1.0, 1.0, -1.0, 1.0]), SIM))  # zero mean


def test_bad_input():
    with pytest.raises(ValueError, match="different shapes"):
        metrics.mse(OBS, SIM[:3])
    with pytest.raises(ValueError, match="fewer than 2 valid"):
        metrics.nse(np.array([1.0, np.nan]), np.array([1.0, 2.0]))


def test_accepts_xarray():
    import xarray as xr
    assert metrics.mse(xr.DataArray(OBS), xr.DataArray(SIM)) == pytest.approx(1.5)


def test_origin_scale_and_best_scaled():
    from rsoil_couple.metrics import best_scaled, origin_scale

    obs = np.array([1.0, 2.0, 3.0, 4.0])
    assert origin_scale(obs, 2.0 * obs) == 0.5
    assert np.isnan(origin_scale(obs, np.zeros(4)))
    noisy = 2.0 * obs + np.array([0.3, -0.2, 0.1, -0.4])
    # the exact shape wins; of two equally good candidates the first (the smaller λ in calibrate)
    assert best_scaled([(obs, noisy), (obs, 3.0 * obs), (obs, 5.0 * obs)])[:2] == (1, 1.0 / 3.0)
    i, k, sse = best_scaled([(obs, noisy)])
    assert i == 0 and sse == pytest.approx(float(np.sum((obs - k * noisy) ** 2))) and sse > 0
