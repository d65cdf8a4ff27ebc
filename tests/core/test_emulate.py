"""rsoil_couple.emulate: a canonical Dataset through the core. `supplied` reproduces the offline
predictions of rsoil_couple.train, `lagged` is `supplied` delayed by future_steps exactly,
`persistence` equals the offline persistence ablation; statuses, mask and input checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from rsoil_couple import emulate
from rsoil_couple import training as train
from rsoil_couple.core import coupler as cp
from rsoil_couple.data.synthetic import synthetic_site


@pytest.fixture(scope="module")
def site():
    """Three synthetic columns (other seeds than the training data), canonical units."""
    cols = [synthetic_site(days=6, step_minutes=30, seed=s).assign_coords(column=[f"col{s}"]) for s in (3, 4, 5)]
    return xr.concat([c[["tsoil", "swc", "precip", "rsoil"]] for c in cols], dim="column",
                     combine_attrs="override")


def offline(module, meta, ds, column: int, future: str) -> tuple[np.ndarray, np.ndarray]:
    """rsoil_couple.train's own windows and predict: (time, prediction) of every valid sample."""
    s = train.site_from_dataset(ds, column=column)
    ws = train.WindowSet([s], [v["name"] for v in meta["past_vars"]], [v["name"] for v in meta["future_vars"]],
                         meta["past_hours"], meta["future_hours"])
    with torch.no_grad():
        pred = train.predict(module, ws, ws.valid, future=future)
    return ws.time[ws.valid], pred


@pytest.mark.parametrize("policy, future", [("supplied", "true"), ("persistence", "persistence")])
def test_reproduces_offline_predictions(model, site, policy, future):
    path, meta, module = model
    res = emulate(path, site, policy=policy)
    assert res.attrs["policy"] == policy and res.attrs["model_id"] == meta["model_id"]
    checked = 0
    for col in range(site.sizes["column"]):
        times, pred = offline(module, meta, site, col, future)
        got = res.isel(column=col).sel(time=times)
        ran = got["status"].values <= cp.EXTRAPOLATING
        assert ran.mean() > 0.9
        rel = np.abs(got["rsoil"].values[ran] - pred[ran]) / np.abs(pred[ran])
        assert rel.max() <= 1e-5, f"column {col}: max relative difference {rel.max():.2e}"
        checked += ran.sum()
    assert checked > 500


def test_lagged_is_supplied_shifted_exactly(model, site):
    path, meta, _ = model
    F = meta["future_steps"]
    sup = emulate(path, site, policy="supplied")
    lag = emulate(path, site, policy="lagged")
    assert lag.attrs["lag_steps"] == F and sup.attrs["lag_steps"] == 0
    for v in ("rsoil", "rsoil_gc", "resp_scalar", "status"):
        np.testing.assert_array_equal(lag[v].values[F:], sup[v].values[:-F])
    assert np.all(lag["status"].values[:meta["past_steps"] + F - 1] == cp.SPINUP)


def test_statuses_mask_and_counts(model, site):
    path, meta, _ = model
    P, F = meta["past_steps"], meta["future_steps"]
    ds = site.copy(deep=True)
    ds["tsoil"][100, 1] = np.nan
    res = emulate(path, ds, policy="supplied", mask=[True, True, False])
    st = res["status"].values
    assert np.all(st[:P - 1, :2] == cp.SPINUP) and np.all(st[:, 2] == cp.MASKED)
    assert np.all(st[100 - F:100 + P, 1] == cp.MISSING) and np.isnan(res["rsoil"].values[100, 1])
    # the record's last future_steps steps have no complete future: Q10 fallback, MISSING
    assert np.all(st[-F:, :2] == cp.MISSING) and np.all(np.isfinite(res["rsoil"].values[-F:, :2]))
    counts = np.bincount(st.ravel(), minlength=len(cp.STATUS_NAMES))
    assert [res.attrs[f"count_{n.lower()}"] for n in cp.STATUS_NAMES] == list(counts)
    assert list(res["status"].attrs["flag_values"]) == list(range(len(cp.STATUS_NAMES)))
    assert res["status"].attrs["flag_meanings"].split()[6] == "extrapolation_fallback"
    assert res["rsoil_gc"].attrs["units"] == "g m-2 s-1"  # UDUNITS (CF); "gC" is not a unit
    # a time-varying mask: column 0 switched to Q10 for 10 steps
    m = np.ones((ds.sizes["time"], 3), dtype=bool)
    m[150:160, 0] = False
    res2 = emulate(path, ds, mask=xr.DataArray(m, dims=("time", "column")))
    assert np.all(res2["status"].values[150:160, 0] == cp.MASKED)
    np.testing.assert_array_equal(res2["rsoil"].values[160:, 0], res["rsoil"].values[160:, 0])


def test_strict_turns_extrapolation_into_fallback(model, site):
    path, meta, _ = model
    ds = site.copy(deep=True)
    ds["tsoil"][120, 0] = meta["envelope"]["tsoil"]["max"] + 2.0
    loose = emulate(path, ds, strict=False)["status"].values[:, 0]
    strict = emulate(path, ds, strict=True)["status"].values[:, 0]
    assert np.sum(loose == cp.EXTRAPOLATING) > 0
    np.testing.assert_array_equal(strict == cp.EXTRAPOLATION_FALLBACK, loose == cp.EXTRAPOLATING)


def test_input_checks(model, site):
    path, meta, _ = model
    bad = site.copy()
    bad["tsoil"].attrs["units"] = "K"
    with pytest.raises(ValueError, match="'tsoil' has units 'K', expected 'degC'"):
        emulate(path, bad)
    with pytest.raises(ValueError, match="needs variable 'swc'"):
        emulate(path, site.drop_vars("swc"))
    with pytest.raises(ValueError, match="time step 3600 s at index 1"):
        emulate(path, site.isel(time=slice(None, None, 2)).assign_attrs(step_seconds=1800))
    with pytest.raises(ValueError, match="step_seconds = 3600"):
        emulate(path, site.assign_attrs(step_seconds=3600))
    with pytest.raises(ValueError, match="mask must have shape"):
        emulate(path, site, mask=[True])
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        emulate("nope.pt", site)
