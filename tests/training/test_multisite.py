"""Several sites of different steps in one config: each resampled to the model's step
(data.step_minutes) by rsoil_couple.data.resample, refused when coarser or lacking a variable the
model reads, and recorded (name, file, original step, depth) in its arrays."""
from __future__ import annotations

import re

import numpy as np
import pytest

from rsoil_couple import data
from rsoil_couple.config import load_run_config
from rsoil_couple.data.synthetic import synthetic_site
from rsoil_couple.training.records import load_data
from rsoil_couple.training.run import train_run


def _nc(tmp_path, minutes, seed, drop=()):
    ds = synthetic_site(days=8, step_minutes=minutes, seed=seed).drop_vars(list(drop))
    return data.write_canonical(ds, tmp_path / f"s{minutes}_{seed}.nc")


def _config(tmp_path, sites, extra="", past_vars='["tsoil", "swc", "precip"]'):
    rows = ",\n".join(f'  {{ path = "{p.as_posix()}", name = "{n}" }}' for p, n in sites)
    text = f"""[data]
sites = [
{rows}
]
past_vars = {past_vars}
future_vars = ["tsoil"]
past_hours = 12
future_hours = 6
{extra}
[split]
scenario = "interpolation"
[model]
kind = "lstm"
hidden = 8
[train]
epochs = 1
max_train_samples = 200
max_eval_samples = 100
progress = false
"""
    path = tmp_path / "cfg.toml"
    path.write_text(text)
    return load_run_config(path)


def test_two_sites_30_and_60_min_resampled_to_60(tmp_path):
    a, b = _nc(tmp_path, 30, 0), _nc(tmp_path, 60, 1)
    cfg = _config(tmp_path, [(a, "A30"), (b, "B60")], "step_minutes = 60")
    sites = load_data(cfg.data)
    assert [s.step_seconds for s in sites] == [3600, 3600]
    assert [s.origin()["original_step_seconds"] for s in sites] == [1800, 3600]
    assert [s.name for s in sites] == ["A30", "B60"] and sites[0].source == a.as_posix()
    assert [s.depth_m for s in sites] == [0.15, 0.15]
    want = data.resample(data.read_site(a), 3600)
    np.testing.assert_array_equal(sites[0].drivers["precip"], want.precip.values[:, 0])
    np.testing.assert_array_equal(sites[0].target, want.rsoil.values[:, 0])
    np.testing.assert_array_equal(sites[1].drivers["tsoil"], data.read_site(b).tsoil.values[:, 0])
    # a short run: the windows are counted in the model's step (12 h = 12 steps)
    res = train_run(cfg, sites)
    assert res.meta["step_seconds"] == 3600 and res.meta["past_steps"] == 12
    assert res.meta["training"]["sites"] == ["A30", "B60"]


def test_default_step_is_the_first_sites_and_coarser_sites_are_refused(tmp_path):
    a, b = _nc(tmp_path, 30, 0), _nc(tmp_path, 60, 1)
    sites = load_data(_config(tmp_path, [(b, "B60"), (a, "A30")]).data)   # default: 60 min
    assert [s.step_seconds for s in sites] == [3600, 3600]
    with pytest.raises(ValueError, match=re.escape("data.sites[1] 'B60'") + ".*step 3600 s is coarser "
                       "than the model's step 1800 s"):
        load_data(_config(tmp_path, [(a, "A30"), (b, "B60")]).data)
    with pytest.raises(ValueError, match="step 1800 s is coarser than the model's step 900 s"):
        load_data(_config(tmp_path, [(a, "A30")], "step_minutes = 15").data)
    with pytest.raises(ValueError, match=r"1800 s to step 2700 s: 2700 s is not a whole multiple"):
        load_data(_config(tmp_path, [(a, "A30")], "step_minutes = 45").data)


def test_site_lacking_a_model_variable_is_refused_unless_omitted(tmp_path):
    a, b = _nc(tmp_path, 30, 0), _nc(tmp_path, 60, 1, drop=("precip",))
    cfg = _config(tmp_path, [(a, "A30"), (b, "NoRain")], "step_minutes = 60")
    with pytest.raises(ValueError, match=re.escape("data.sites[1] 'NoRain'") + r".*has no 'precip' but "
                       "the model uses it"):
        load_data(cfg.data)
    ok = load_data(_config(tmp_path, [(a, "A30"), (b, "NoRain")], "step_minutes = 60",
                           past_vars='["tsoil", "swc"]').data)
    assert "precip" not in ok[1].drivers and "precip" in ok[0].drivers


@pytest.mark.parametrize("value, msg", [("-30", "data.step_minutes must be >= 0"),
                                        ("0.001", "whole number of seconds")])
def test_bad_step_minutes(tmp_path, value, msg):
    a = _nc(tmp_path, 30, 0)
    with pytest.raises(ValueError, match=msg):
        _config(tmp_path, [(a, "A")], f"step_minutes = {value}")


def test_depth_in_config_must_match_the_file(tmp_path):
    a = _nc(tmp_path, 30, 0)
    path = tmp_path / "d.toml"
    path.write_text(f'[data]\nsites = [{{ path = "{a.as_posix()}", depth_m = 0.05 }}]\n')
    with pytest.raises(ValueError, match=r"depth_m = 0.05 m in the config, but the file's soil drivers "
                       r"are at 0.15 m"):
        load_data(load_run_config(path).data)


@pytest.mark.shared_data
def test_us_hn1_30min_and_us_wkg_60min_at_60min(shared_data, tmp_path):
    cfg = _config(tmp_path, [(shared_data / "US-Hn1" / "US-Hn1_2019_30min.csv", "US-Hn1"),
                             (shared_data / "cosore" / "US-Wkg" / "US-Wkg_60min.csv", "US-Wkg")],
                  "step_minutes = 60", past_vars='["tsoil", "swc"]')
    cfg.data.sites[1].depth_m = 0.05
    hn1, wkg = load_data(cfg.data)
    assert (hn1.step_seconds, hn1.original_step_seconds, hn1.depth_m) == (3600, 1800, 0.15)
    assert (wkg.step_seconds, wkg.original_step_seconds, wkg.depth_m) == (3600, 3600, 0.05)
    assert len(hn1.time) == 2545 and "precip" in hn1.drivers and "precip" not in wkg.drivers
    # the US-Hn1 hourly Rsoil is the mean of its half-hourly chamber values
    raw = data.read_site(shared_data / "US-Hn1" / "US-Hn1_2019_30min.csv").rsoil.values[:, 0]
    assert hn1.target[1] == pytest.approx(np.nanmean(raw[1:3]))
    with pytest.raises(ValueError, match=re.escape("data.sites[1] 'US-Wkg'") + r".*has no 'precip'"):
        load_data(_config(tmp_path, [
            (shared_data / "US-Hn1" / "US-Hn1_2019_30min.csv", "US-Hn1"),
            (shared_data / "cosore" / "US-Wkg" / "US-Wkg_60min.csv", "US-Wkg")], "step_minutes = 60").data)


def test_multisite_example_config(repo_root, shared_data, monkeypatch):
    cfg = load_run_config(repo_root / "configs" / "multisite_example.toml")
    assert cfg.data.step_minutes == 60 and len(cfg.data.sites) == 3
    monkeypatch.chdir(repo_root)
    sites = load_data(cfg.data)
    assert [(s.name, s.original_step_seconds, s.step_seconds, s.depth_m) for s in sites] == [
        ("US-Hn1", 1800, 3600, 0.15), ("US-Wkg", 3600, 3600, 0.05), ("ES-Agu", 1800, 3600, 0.05)]


def test_single_site_config_is_unchanged(tmp_path):
    from rsoil_couple.training.records import site_from_dataset
    a = _nc(tmp_path, 30, 0)
    (s,) = load_data(_config(tmp_path, [(a, "A")]).data)
    old = site_from_dataset(data.read_site(a), name="A", source=a.as_posix())
    assert s.step_seconds == old.step_seconds == s.original_step_seconds == 1800
    np.testing.assert_array_equal(s.time, old.time)
    np.testing.assert_array_equal(s.target, old.target)
    for v in old.drivers:
        np.testing.assert_array_equal(s.drivers[v], old.drivers[v])
