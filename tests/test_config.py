"""rsoil_couple.config: TOML -> dataclasses, unknown keys and missing keys by name, case configs."""
from __future__ import annotations

import dataclasses

import pytest

from rsoil_couple.config import case_config, load_experiment_config, load_run_config

RUN = """
[run]
seed = 3
[data]
sites = [{ path = "x.csv" }]
past_hours = 12
future_hours = 24
[split]
scenario = "extrapolation"
test_start = "2019-08-20"
test_end = "2019-09-14"
[model]
kind = "kg_lstm"
hidden = 16
"""


def _write(tmp_path, text, name="c.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_run_config_reads_values(tmp_path):
    cfg = load_run_config(_write(tmp_path, RUN))
    assert cfg.run.seed == 3 and cfg.data.past_hours == 12.0 and cfg.model.kind == "kg_lstm"
    assert cfg.data.sites[0].path == "x.csv" and cfg.data.sites[0].depth_m == 0.15
    assert cfg.train.epochs > 0 and cfg.split.test_end == "2019-09-14"


@pytest.mark.parametrize("text, msg", [
    (RUN.replace("hidden = 16", "hiden = 16"), r"unknown key\(s\) model.hiden"),
    (RUN.replace('sites = [{ path = "x.csv" }]', 'sites = [{ path = "x.csv", colour = 1 }]'), r"data.sites\[0\].colour"),
    (RUN.replace('sites = [{ path = "x.csv" }]', ""), "data.sites"),
    (RUN.replace('[data]', '[dat]'), r"unknown key\(s\) dat"),
    (RUN.replace('test_end = "2019-09-14"', ""), "split.test_end"),
    (RUN.replace('kind = "kg_lstm"', 'kind = "gru"'), "model.kind = 'gru'"),
    (RUN.replace("past_hours = 12", "past_hours = -1"), "data.past_hours"),
    (RUN.replace("past_hours = 12", "past_hours = 'twelve'"), "data.past_hours must be a number"),
    (RUN.replace("future_hours = 24", "future_hours = 0"), "data.future_hours"),
    (RUN.replace('[model]', '[data2]\n[model]'), r"unknown key\(s\) data2"),
    (RUN + '\n[train]\nepochs = 2.5\n', "train.epochs must be an integer"),
    (RUN + '\n[train]\nmodulation_choice = "median"\n', "train.modulation_choice = 'median'"),
    (RUN + '\n[train]\nmodulation_block_hours = 0\n', "train.modulation_block_hours must be > 0"),
    (RUN + '\n[train]\nsite_weighting = "equal"\n', "train.site_weighting = 'equal'"),
    (RUN + '\n[train]\nbase_in_joint = "fixed"\n', "train.base_in_joint = 'fixed'"),
    (RUN + '\n[train]\nsite_normalization = "sd"\n', "train.site_normalization = 'sd'"),
    (RUN.replace('[split]', '[split]\nval_block_days = -7'), "split.val_block_days must be >= 0"),
    (RUN.replace('scenario = "extrapolation"', 'scenario = "random"'), "split.scenario = 'random'"),
])
def test_bad_run_configs_name_file_and_key(tmp_path, text, msg):
    p = _write(tmp_path, text)
    with pytest.raises(ValueError, match=msg) as exc:
        load_run_config(p)
    assert "c.toml" in str(exc.value)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        load_run_config(tmp_path / "nope.toml")
    with pytest.raises(ValueError, match="bad.toml: not valid TOML"):
        load_run_config(_write(tmp_path, "[run\n", "bad.toml"))


EXP = """
[experiment]
models = ["lstm", "unilstm", "kg_lstm"]
scenarios = ["interpolation", "extrapolation"]
past_hours = [12, 48]
seeds = [0, 1, 2]
""" + RUN.replace("[run]\nseed = 3\n", "") + """
[models.kg_lstm.model]
q10_init = 2.5
[models.unilstm.train]
epochs = 3
"""


def test_experiment_config_and_cases(tmp_path):
    e = load_experiment_config(_write(tmp_path, EXP))
    assert e.experiment.seeds == [0, 1, 2]
    c = case_config(e, "unilstm", "interpolation", 48, 2)
    assert c.data.future_vars == [] and c.data.future_hours == 0.0 and c.data.past_hours == 48.0
    assert c.train.epochs == 3 and c.run.seed == 2 and c.split.scenario == "interpolation"
    k = case_config(e, "kg_lstm", "extrapolation", 12, 0)
    assert k.model.q10_init == 2.5 and k.data.future_vars == ["tsoil"] and k.data.future_hours == 24.0
    assert case_config(e, "lstm", "extrapolation", 12, 0).model.q10_init == 2.0


@pytest.mark.parametrize("old, new, msg", [
    ('models = ["lstm", "unilstm", "kg_lstm"]', 'models = ["lstm", "gru"]', "experiment.models: unknown model 'gru'"),
    ("seeds = [0, 1, 2]", "", "experiment.seeds"),
    ("q10_init = 2.5", "q10_start = 2.5", "models.kg_lstm.model.q10_start"),
    ('scenarios = ["interpolation", "extrapolation"]', 'scenarios = ["winter"]', "unknown scenario 'winter'"),
])
def test_bad_experiment_configs(tmp_path, old, new, msg):
    with pytest.raises(ValueError, match=msg):
        load_experiment_config(_write(tmp_path, EXP.replace(old, new)))


def test_shipped_configs_parse(repo_root):
    for p in sorted((repo_root / "configs").glob("*.toml")):
        if "[experiment]" in p.read_text():
            e = load_experiment_config(p)
            assert len(e.experiment.seeds) >= 3
        else:
            load_run_config(p)


def test_benchmark_configs_parse(repo_root):
    """configs/benchmarks/*.toml (issue 11's benchmarks and their variants) load, model options included."""
    from rsoil_couple.training.stream_bench import load_benchmark

    loaded = {p.stem: load_benchmark(p) for p in sorted((repo_root / "configs" / "benchmarks").glob("*.toml"))}
    assert {"a_us_hn1_extrapolation", "b_cross_season", "c_leave_one_site_out", "d_own_site_split"} <= set(loaded)
    assert loaded["d_own_site_split_sees_level"].model.sees_level
    assert loaded["d_own_site_split_lstm16"].model.hidden == 16 and not loaded["d_own_site_split"].model.sees_level
    assert loaded["d_own_site_split_recent24"].model.recent_hours == 24.0 and loaded["d_own_site_split"].model.recent_hours == 0
    # since stop 24 (d) chooses per site between no LSTM and 16 units by cross-validation; its stop 23 form
    # (d_own_site_split_h0) and the LSTM everywhere (_h16) are the same but for that
    d, h0, h16 = loaded["d_own_site_split"], loaded["d_own_site_split_h0"], loaded["d_own_site_split_h16"]
    assert d.options.pop("choose_hidden") == [0, 16] and (h0.model.hidden, h16.model.hidden) == (0, 16)
    assert dataclasses.replace(d, name=h0.name) == h0
    assert dataclasses.replace(h16, name=h0.name, model=dataclasses.replace(h16.model, hidden=0)) == h0
    # since stop 23 the four benchmarks cross-validate and refit (λ = 1); their previous form is *_shared
    for name in ("a_us_hn1_extrapolation", "b_cross_season", "c_leave_one_site_out", "d_own_site_split_h0"):
        now, before = loaded[name].train, loaded[name.removesuffix("_h0") + "_shared"].train
        assert (now.member_validation, now.refit, now.modulation_choice) == ("slide", True, "none"), name
        assert (before.member_validation, before.refit, before.modulation_choice) == ("shared", False, "one_se"), name
        assert dataclasses.replace(now, member_validation="shared", refit=False, modulation_choice="one_se") == before
        shared = loaded[name.removesuffix("_h0") + "_shared"]
        assert (loaded[name].model, loaded[name].sites, loaded[name].options) == (shared.model, shared.sites, shared.options)
