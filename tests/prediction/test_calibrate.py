"""rsoil_couple.prediction.calibrate (`rsoil-couple calibrate`): only the site scale is fitted, the new
file carries it in its buffer and its metadata, and the core runs it scaled."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rsoil_couple import cli
from rsoil_couple.core.emulate import emulate
from rsoil_couple.data import read_site, write_canonical
from rsoil_couple.data.synthetic import synthetic_site
from rsoil_couple.modelfile.export import load_model
from rsoil_couple.modelfile.identity import model_identity
from rsoil_couple.prediction.calibrate import calibrate, fit_factor

DAYS = 12


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The synthetic dryland site (12 days, 30 min) as a canonical NetCDF, and the dataset."""
    ds = synthetic_site(days=DAYS, seed=3)
    path = write_canonical(ds, tmp_path_factory.mktemp("site") / "SYN_site.nc")
    return path, read_site(path)


@pytest.fixture()
def model(tmp_path, scaled_q10):
    path = tmp_path / "scaled.pt"
    return path, scaled_q10(path, 0.8)


def _pred(path, ds):
    res = emulate(path, ds[["tsoil", "swc", "precip"]], policy="supplied", chunk_size=64)
    return res["rsoil"].values, res["status"].values


def test_factor_recovered_exactly_when_obs_are_a_multiple_of_the_model(tmp_path, site, model):
    path, meta0 = model
    _, ds = site
    pred, status = _pred(path, ds)
    usable = np.isin(status, (0, 1))
    obs = ds.copy()
    obs["rsoil"] = (("time", "column"), np.where(usable, 2.5 * pred, np.nan), ds["rsoil"].attrs)
    data = write_canonical(obs, tmp_path / "scaled_obs.nc")
    out = tmp_path / "cal.pt"
    res = calibrate(path, data, out, first_fraction=0.3)

    assert res["factor"] == pytest.approx(2.5, rel=1e-6)
    assert res["previous_site_scale"] == pytest.approx(0.8, rel=1e-7)
    assert res["calibration"]["after"]["nse"] == pytest.approx(1.0, abs=1e-9)
    assert res["rest"]["after"]["nse"] == pytest.approx(1.0, abs=1e-9)   # held out: the same site scale
    assert res["calibration"]["before"]["nse"] < 0.5
    n_cal = int(usable[:round(0.3 * ds.sizes["time"])].sum())
    assert res["calibration"]["after"]["n"] == n_cal
    assert res["rest"]["after"]["n"] == int(usable.sum()) - n_cal

    module, meta = load_model(out)
    assert float(module.site_scale) == np.float32(np.float32(0.8) * res["factor"])
    rec = meta["site_scale"]
    assert rec["method"] == "calibrated" and rec["sites"] == ["SYNTHETIC-DRY"] and rec["value"] == float(module.site_scale)
    cal = rec["calibration"]
    assert cal["data"] == "scaled_obs.nc" and cal["n_obs"] == n_cal and cal["factor"] == res["factor"]
    assert cal["previous"] == float(np.float32(0.8))
    assert cal["start"] == "2019-06-01T00:30:00" and cal["end"] < "2019-06-05"
    assert meta["model_id"] != meta0["model_id"] == res["model_id_before"]
    assert meta["model_id"] == model_identity(out)[:16] == res["model_id"]
    assert meta["training"] == meta0["training"] and meta["envelope"] == meta0["envelope"]
    # the core on the new file: 2.5 times the old output, same statuses
    pred2, status2 = _pred(out, ds)
    np.testing.assert_array_equal(status2, status)
    np.testing.assert_allclose(pred2[usable], 2.5 * pred[usable], rtol=1e-6)
    # the report on disk is what calibrate returned
    report = json.loads(out.with_suffix(".calibration.json").read_text())
    assert report["factor"] == res["factor"] and report["model_id"] == res["model_id"]


def test_factor_is_the_least_squares_scale_on_the_synthetic_site(tmp_path, site, model):
    path, _ = model
    data, ds = site
    res = calibrate(path, data, tmp_path / "cal.pt", start="2019-06-03", end="2019-06-06",
                    report=tmp_path / "r.json")
    pred, status = _pred(path, ds)
    t = ds["time"].to_index()
    period = (t >= "2019-06-03") & (t < "2019-06-07")
    obs = ds["rsoil"].values
    rows = period[:, None] & np.isin(status, (0, 1)) & np.isfinite(obs)
    k = np.sum(obs[rows] * pred[rows]) / np.sum(pred[rows] ** 2)
    assert res["factor"] == pytest.approx(k, rel=1e-9)
    assert res["calibration"]["after"]["n"] == int(rows.sum()) == 4 * 48
    assert res["period"] == {"start": "2019-06-03T00:00:00", "end": "2019-06-06T23:30:00", "steps": 4 * 48}
    # least squares through the origin: no other scale has a smaller error on these rows
    assert res["calibration"]["after"]["nse"] >= res["calibration"]["before"]["nse"]
    assert res["rest"]["after"]["n"] > 0 and (tmp_path / "r.json").is_file()


def test_calibrating_a_calibrated_file_again_changes_nothing(tmp_path, site, model):
    path, _ = model
    data, _ = site
    first = calibrate(path, data, tmp_path / "a.pt")
    second = calibrate(tmp_path / "a.pt", data, tmp_path / "b.pt")
    assert second["factor"] == pytest.approx(1.0, abs=1e-6)
    assert second["previous_site_scale"] == first["site_scale"]
    assert load_model(tmp_path / "b.pt")[1]["site_scale"]["calibration"]["previous"] == first["site_scale"]


def test_model_without_a_site_scale_buffer_is_refused_naming_the_file(tmp_path, site, scaled_q10):
    plain = tmp_path / "plain.pt"
    scaled_q10(plain, plain=True, record=None)
    with pytest.raises(ValueError, match=f"{plain}: the module has no site_scale buffer"):
        calibrate(plain, site[0], tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()


def test_too_few_rows_and_zero_predictions_are_refused(tmp_path, site, model):
    path, _ = model
    data, ds = site
    # 0.1 x 576 steps = 58, less 3 of spin-up (a window of 4 steps)
    with pytest.raises(ValueError, match=r"SYN_site\.nc \(2019-06-01T00:30:00 to .*\): 55 usable rows .* at least "
                                         r"100 are needed \(--min-rows\)"):
        calibrate(path, data, tmp_path / "out.pt", first_fraction=0.1, min_rows=100)
    dry = ds.copy()
    dry["swc"] = dry["swc"] * 0.0   # sqrt(swc / 0.1) = 0: the model predicts 0 everywhere
    zero = write_canonical(dry, tmp_path / "dry.nc")
    with pytest.raises(ValueError, match="the model predicts 0 on all 170 calibration rows"):
        calibrate(path, zero, tmp_path / "out.pt")
    with pytest.raises(ValueError, match="the fitted factor is -2.0 "):
        fit_factor(-2.0 * np.arange(1.0, 60.0), np.arange(1.0, 60.0))
    assert not (tmp_path / "out.pt").exists()


def test_bad_arguments_are_refused(tmp_path, site, model):
    path, _ = model
    data, _ = site
    with pytest.raises(ValueError, match="is the input model file"):
        calibrate(path, data, path)
    with pytest.raises(ValueError, match="not both"):
        calibrate(path, data, tmp_path / "o.pt", start="2019-06-02", first_fraction=0.5)
    with pytest.raises(ValueError, match=r"--first-fraction: 1.5 is not in \(0, 1\]"):
        calibrate(path, data, tmp_path / "o.pt", first_fraction=1.5)
    with pytest.raises(ValueError, match="holds no time step of the record"):
        calibrate(path, data, tmp_path / "o.pt", start="2021-01-01")


def test_cli_calibrate_by_pretrained_name(tmp_path, site, scaled_q10, monkeypatch, capsys):
    """`rsoil-couple calibrate --model NAME` (RSOIL_MODEL_PATH): prints the factor and a JSON line."""
    models = tmp_path / "models"
    models.mkdir()
    scaled_q10(models / "dryland-test.pt", 1.0)
    monkeypatch.setenv("RSOIL_MODEL_PATH", str(models))
    out = tmp_path / "cal.pt"
    assert cli.main(["calibrate", "--model", "dryland-test", "--data", str(site[0]), "--out", str(out),
                     "--first-fraction", "0.5"]) == 0
    text = capsys.readouterr().out
    last = json.loads(text.strip().splitlines()[-1])
    assert last["model_id"] == load_model(out)[1]["model_id"]
    assert f"calibrated {models / 'dryland-test.pt'} on {site[0]}" in text and "NSE" in text
    assert cli.main(["calibrate", "--model", "no-such-model", "--data", str(site[0]), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "rsoil-couple calibrate: error: model 'no-such-model'" in err and "dryland-test" in err


def test_fit_modulation_finds_the_physics_when_the_network_does_not_hold(tmp_path, site):
    """Observations = 0.7 x drylands-v2's physical base alone: --fit-modulation picks λ = 0 and the factor."""
    import torch

    from rsoil_couple.modelfile.export import export_model
    path, ds = site
    module, meta = load_model("drylands-v2")
    with torch.no_grad():
        for n, b in module.named_buffers():
            if n.endswith("modulation_weight"):
                b.fill_(0.0)
    base_file = tmp_path / "base_only.pt"
    export_model(module, {k: v for k, v in meta.items() if k != "model_id"}, base_file)
    pred, status = _pred(base_file, ds)
    obs = ds.copy()
    obs["rsoil"] = ds["rsoil"].copy(data=np.where(status <= 1, 0.7 * pred, np.nan).reshape(ds["rsoil"].shape))
    obs_path = write_canonical(obs, tmp_path / "SYN_base.nc")
    res = calibrate("drylands-v2", obs_path, tmp_path / "cal.pt", first_fraction=0.8, fit_modulation=True)
    assert res["modulation_weight"] == 0.0
    assert res["factor"] == pytest.approx(0.7, rel=1e-5)
    assert [t["modulation_weight"] for t in res["modulation_tried"]] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert res["modulation_tried"][-1]["sse"] > res["modulation_tried"][0]["sse"]
    cal_module, cal_meta = load_model(tmp_path / "cal.pt")
    assert all(float(b) == 0.0 for n, b in cal_module.named_buffers() if n.endswith("modulation_weight"))
    assert cal_meta["site_scale"]["calibration"]["modulation_weight"] == 0.0
    assert res["rest"]["after"]["nse"] == pytest.approx(1.0, abs=1e-6)
    # a file without the buffers is refused, naming it
    with pytest.raises(ValueError, match="modulation_weight buffers"):
        calibrate("drylands-v1", obs_path, tmp_path / "cal1.pt", first_fraction=0.8, fit_modulation=True)
