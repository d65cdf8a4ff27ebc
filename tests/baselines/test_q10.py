"""rsoil_couple.q10: equation 2, LM fits recovering known parameters, paper presets, CLM structure."""
from __future__ import annotations

import numpy as np
import pytest

from rsoil_couple.baselines import q10

RNG = np.random.default_rng(1)
T = RNG.uniform(0.0, 35.0, 600)
W = RNG.uniform(0.03, 0.30, 600)


def test_predict_matches_equation_2():
    t, w = np.array([10.0, 20.0]), np.array([0.1, 0.2])
    np.testing.assert_allclose(q10.predict("q10", {"a": 0.5, "b": 2.0}, t), [0.5, 1.0])
    np.testing.assert_allclose(q10.predict("q10_swc", {"a": 1.0, "b": 2.0, "c": 0.5}, t, w),
                               [0.1 ** 0.5, 2 * 0.2 ** 0.5])
    np.testing.assert_allclose(
        q10.predict("logistic_power", {"a": 2.0, "b": 0.3, "c": 10.0, "d": 1.0}, t, w),
        [2.0 / 2 * 0.1, 2.0 / (1 + np.exp(-3.0)) * 0.2])
    # percent parameters: swc argument stays in m3 m-3, converted inside
    np.testing.assert_allclose(q10.predict("q10_swc", {"a": 1.0, "b": 2.0, "c": 1.0}, t, w,
                                           swc_units="percent"), [10.0, 40.0])


@pytest.mark.parametrize("form,true", [
    ("q10", {"a": 0.8, "b": 2.3}),
    ("q10_swc", {"a": 1.7, "b": 1.9, "c": 0.6}),
    ("logistic_power", {"a": 3.0, "b": 0.25, "c": 12.0, "d": 0.7}),
])
@pytest.mark.parametrize("units", q10.SWC_UNITS)
def test_fit_recovers_known_parameters(form, true, units):
    r = q10.predict(form, true, T, W, swc_units=units)
    t, w = T.copy(), W.copy()
    t[5], r[9] = np.nan, np.nan  # NaNs are masked and counted
    fit = q10.fit(form, t, w, r, swc_units=units)
    assert fit.n == 598 and fit.n_masked == 2 and fit.swc_units == units
    for k, v in true.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-5), (k, fit.params)
    assert fit.rmse < 1e-8
    np.testing.assert_allclose(fit.predict(T, W), q10.predict(form, true, T, W, swc_units=units),
                               rtol=1e-6)


def test_to_meta_is_the_fallback_entry():
    fit = q10.fit("q10_swc", T, W, q10.predict("q10_swc", {"a": 1, "b": 2, "c": 0.5}, T, W))
    meta = fit.to_meta("training split")
    assert meta == {"form": "q10_swc", "params": fit.params, "tref_c": 10.0,
                    "swc_units": "m3 m-3", "fitted_on": "training split"}


def test_bad_input():
    with pytest.raises(ValueError, match="form 'q11' unknown"):
        q10.predict("q11", {}, T)
    with pytest.raises(ValueError, match=r"needs parameters \('a', 'b', 'c'\)"):
        q10.predict("q10_swc", {"a": 1, "b": 2}, T, W)
    with pytest.raises(ValueError, match="must be volumetric water content in m3 m-3"):
        q10.predict("q10_swc", q10.PAPER_PARAMS["q10_swc"], T, W * 100, swc_units="percent")
    with pytest.raises(ValueError, match="swc_units 'fraction' unknown"):
        q10.fit("q10_swc", T, W, T, swc_units="fraction")
    with pytest.raises(ValueError, match="only 2 valid"):
        q10.fit("q10", T[:2], None, T[:2])


def test_paper_parameters_only_make_sense_in_percent(shared_data):
    """PAPER.md: the published 2b/2c parameters give plausible magnitudes with SWC in percent
    and about ten times too little (here 15-23 times) with SWC in m3 m-3."""
    from rsoil_couple.data import read_site
    ds = read_site(shared_data / "US-Hn1" / "US-Hn1_2019_30min.csv").isel(column=0)
    t, w, r = ds.tsoil.values, ds.swc.values, ds.rsoil.values
    obs = np.nanmean(r)
    for form in ("q10_swc", "logistic_power"):
        pct = np.nanmean(q10.paper_fit(form).predict(t, w))
        m3 = np.nanmean(q10.predict(form, q10.PAPER_PARAMS[form], t, w, swc_units="m3 m-3"))
        assert 0.8 * obs < pct < 1.2 * obs, (form, pct, obs)
        assert m3 < obs / 10, (form, m3, obs)
    assert q10.paper_fit("q10").swc_units == "percent" == q10.PAPER_SWC_UNITS


def test_clm_scalars_hand_values():
    assert q10.clm_t_scalar(25.0) == pytest.approx(1.0)
    assert q10.clm_t_scalar(15.0) == pytest.approx(1 / 1.5)
    assert q10.clm_t_scalar(-10.0) == pytest.approx(1.5 ** -2.5 * 1.5 ** -1.0)
    # loamy sand: watsat 0.388, bsw 3.705, sucsat 10*10**0.832 mm
    watsat, bsw, sucsat = 0.489 - 0.00126 * 80, 2.91 + 0.159 * 5, 10 * 10 ** (1.88 - 0.0131 * 80)
    psi = -9.8e-6 * sucsat * (0.06 / watsat) ** (-bsw)
    expect = np.log(-2.0 / psi) / np.log(-2.0 / -0.002)
    assert q10.clm_w_scalar(0.06) == pytest.approx(expect)
    assert q10.clm_w_scalar(0.5) == pytest.approx(1.0)      # saturated: psi capped at maxpsi
    assert q10.clm_w_scalar(0.001) == 0.0                    # drier than -2 MPa
    assert np.isnan(q10.clm_w_scalar(np.nan))
    assert q10.clm_structure(25.0, 0.5, k=3.0) == pytest.approx(3.0)


def test_fit_clm_structure_recovers_k():
    r = q10.clm_structure(T, W, k=2.5)
    w = W.copy()
    w[0] = np.nan
    fit = q10.fit_clm_structure(T, w, r)
    assert fit.k == pytest.approx(2.5) and fit.n == 599 and fit.n_masked == 1
    np.testing.assert_allclose(fit.predict(T, W), r)


def test_physical_fit_recovers_and_respects_bounds():
    t = np.linspace(0.0, 30.0, 300)
    w = np.linspace(0.05, 0.30, 300)
    true = {"a": 0.8, "b": 2.0, "c": 0.5}
    fit = q10.fit("q10_swc", t, w, q10.predict("q10_swc", true, t, w), physical=True)
    for k, v in true.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-6)
    # "hot means dry": respiration falling with temperature and with soil water. The free fit
    # inverts the response (b < 1, c < 0: explodes as swc -> 0); the physical one stays bounded.
    r_inv = q10.predict("q10_swc", {"a": 0.05, "b": 0.6, "c": -1.2}, t, w)
    free = q10.fit("q10_swc", t, w, r_inv)
    phys = q10.fit("q10_swc", t, w, r_inv, physical=True)
    assert free.params["b"] < 1 and free.params["c"] < 0
    assert phys.params["b"] >= 1.0 and phys.params["c"] >= 0.0
    dry_cold = phys.predict(np.array([-5.0]), np.array([0.005]))[0]
    assert 0.0 <= dry_cold <= r_inv.max()
    for form in ("q10", "logistic_power"):
        p = q10.fit(form, t, w, r_inv, physical=True).params
        assert p["b"] >= (1.0 if form == "q10" else 0.0)
        assert p.get("d", 0.0) >= 0.0


def test_fit_family_is_the_individual_fits():
    t = np.linspace(5.0, 30.0, 200)
    w = np.linspace(0.05, 0.30, 200)
    r = q10.predict("q10_swc", {"a": 0.5, "b": 1.8, "c": 0.4}, t, w)
    fits = q10.fit_family(t, w, r)
    assert list(fits) == ["q10", "q10_swc", "logistic_power", "clm_structure"]
    for form in q10.FORMS:
        assert fits[form].params == q10.fit(form, t, w, r).params
    assert fits["clm_structure"].k == q10.fit_clm_structure(t, w, r).k
    assert list(q10.fit_family(t, None, r)) == ["q10"]
