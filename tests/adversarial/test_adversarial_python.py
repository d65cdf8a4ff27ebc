"""Adversarial cases of the Python tools (issue 10), each named after the finding it breaks."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from rsoil_couple import prediction as P
from rsoil_couple.cli import main as cli_main
from rsoil_couple.data import read_site
from rsoil_couple.data.synthetic import synthetic_site
from rsoil_couple.errors import DataError
from rsoil_couple.prediction import run as predict_run

DAYS = 4  # 192 steps of 30 min: enough for the session model's 24 h + 12 h window


def _canonical(path, ncol=3, names=True, change=None):
    """A canonical NetCDF of `ncol` copies of the synthetic site; string column ids (NC_STRING,
    as xarray writes them) when `names`, else integers; `change(ds) -> ds` before writing."""
    ds = synthetic_site(days=DAYS)
    ds = xr.concat([ds.assign_coords(column=[f"c{i}" if names else i]) for i in range(ncol)], dim="column")
    if change is not None:
        ds = change(ds)
    ds.to_netcdf(path)
    return path


def _cli(*args):
    return cli_main(["predict", *map(str, args), "--no-progress"])


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


# ---------------------------------------------------------------------------------------------
# F10: one physical-range rule for every input path
def test_F10_netcdf_kelvin_label_holding_celsius_is_refused(model, tmp_path, capsys):
    src = _canonical(tmp_path / "mislabelled.nc",
                     change=lambda d: d.assign(tsoil=d["tsoil"].assign_attrs(units="K")))
    assert _cli("--model", model[0], "--input", src, "--output", tmp_path / "o.nc") == 2
    err = _one_line_error(capsys)
    assert "mislabelled.nc: variable 'tsoil'" in err and "from 'K'" in err
    assert "physical range -50.0..70.0 degC" in err and "wrong units?" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mislabelled.nc"]  # no output, no partial


def test_F10_clm_tsoi_in_celsius_labelled_kelvin_is_refused(model, tmp_path, capsys):
    n, lev = DAYS * 48, np.array([0.01, 0.04, 0.09, 0.16, 0.26], "f4")
    hour = np.arange(n) / 2 % 24
    tsoi = 25.0 + 4 * np.sin(2 * np.pi * (hour - 9) / 24)[:, None, None] + np.zeros((1, 5, 2))
    src = tmp_path / "h.nc"
    xr.Dataset({"TSOI": (("time", "levgrnd", "column"), tsoi.astype("f4"), {"units": "K"}),
                "H2OSOI": (("time", "levsoi", "column"), np.full((n, 5, 2), 0.08, "f4"), {"units": "mm3/mm3"}),
                "RAIN": (("time", "column"), np.zeros((n, 2), "f4"), {"units": "mm/s"})},
               coords={"levgrnd": lev, "levsoi": lev, "time": ("time", np.arange(1, n + 1) / 48,
                       {"units": "days since 2019-06-01", "calendar": "noleap"})}).to_netcdf(src)
    assert _cli("--model", model[0], "--input", src, "--output", tmp_path / "o.nc") == 2
    err = _one_line_error(capsys)
    assert "h.nc: variable 'TSOI'" in err and "from 'K'" in err and "-50.0..70.0 degC" in err


# ---------------------------------------------------------------------------------------------
# F11 / F12: the output is checked before any work
@pytest.fixture
def no_work(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("predict started the work before refusing the output")
    monkeypatch.setattr(predict_run, "predict_block", fail)


@pytest.mark.parametrize("where", ["empty", "under_a_file", "proc", "directory"])
def test_F11_unwritable_output_is_refused_before_any_work(model, tmp_path, capsys, no_work, where):
    src = _canonical(tmp_path / "in.nc")
    (tmp_path / "file.txt").write_text("x")
    out = {"empty": "", "under_a_file": tmp_path / "file.txt" / "o.nc", "proc": "/proc/o.nc",
           "directory": tmp_path}[where]
    assert _cli("--model", model[0], "--input", src, "--output", out) == 2
    err = _one_line_error(capsys)
    assert "--output is empty" in err if where == "empty" else "cannot write the output" in err or \
        "is a directory" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a mode-555 directory; the other "
                    "cases of test_F11 (/proc, a path under a file) cover root")
def test_F11_read_only_directory_is_refused_before_any_work(model, tmp_path, capsys, no_work):
    src = _canonical(tmp_path / "in.nc")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert _cli("--model", model[0], "--input", src, "--output", ro / "o.nc") == 2
    finally:
        ro.chmod(0o755)
    assert "cannot create a file in" in _one_line_error(capsys)


@pytest.mark.parametrize("how", ["same_path", "symlink", "hard_link", "relative", "model"])
def test_F12_output_that_is_an_input_is_refused(model, tmp_path, capsys, no_work, how, monkeypatch):
    src = _canonical(tmp_path / "in.nc")
    before = src.read_bytes()
    out = {"same_path": src, "symlink": tmp_path / "link.nc", "hard_link": tmp_path / "hard.nc",
           "relative": "in.nc", "model": model[0]}[how]
    if how == "symlink":
        out.symlink_to(src)
    if how == "hard_link":
        os.link(src, out)
    monkeypatch.chdir(tmp_path)
    assert _cli("--model", model[0], "--input", src, "--output", out) == 2
    assert f"the output is the {'model' if how == 'model' else 'input'} file" in _one_line_error(capsys)
    assert src.read_bytes() == before


# ---------------------------------------------------------------------------------------------
# F13: every float of a config is finite
_CONFIG = """
[data]
sites = [{{path = "site.csv"}}]
past_hours = 24.0
[split]
fractions = {fractions}
[train]
lr = {lr}
"""


@pytest.mark.parametrize("lr, fractions, key", [
    ("inf", "[0.8, 0.1, 0.1]", "train.lr = inf"), ("nan", "[0.8, 0.1, 0.1]", "train.lr = nan"),
    ("-inf", "[0.8, 0.1, 0.1]", "train.lr = -inf"), ("1e-3", "[0.8, nan, 0.1]", "split.fractions[1] = nan")])
def test_F13_non_finite_config_float_is_refused_naming_the_key(tmp_path, capsys, lr, fractions, key):
    from rsoil_couple.config import load_run_config

    cfg = tmp_path / "run.toml"
    cfg.write_text(_CONFIG.format(lr=lr, fractions=fractions))
    with pytest.raises(ValueError, match=rf"run.toml: {key.replace('[', '.').replace(']', '.')}: must be a finite number"):
        load_run_config(cfg)
    assert cli_main(["train", str(cfg), "--out", str(tmp_path / "m.pt")]) == 2
    assert f"{key}: must be a finite number" in _one_line_error(capsys)
    assert not (tmp_path / "m.pt").exists()


def test_F13_config_built_in_code_and_metadata_are_checked_too():
    from rsoil_couple.config import (
        DataSection,
        RunConfig,
        SiteConfig,
        TrainSection,
        check_finite,
        check_run,
    )

    cfg = RunConfig(data=DataSection(sites=[SiteConfig(path="x")]), train=TrainSection(lr=float("inf")))
    with pytest.raises(ValueError, match=r"^train.lr = inf: must be a finite number"):
        check_run(cfg)
    with pytest.raises(ValueError, match=r"rsoil_meta.test_metrics.nse = nan: must be a finite number"):
        check_finite({"test_metrics": {"mse": 1.0, "nse": float("nan")}}, "rsoil_meta")


# ---------------------------------------------------------------------------------------------
# F14: CSV errors name the file line and the column
_HN1 = ("TIMESTAMP_END", "TS_15cm", "SWC_15cm", "P_mm", "Tair", "Rg", "Rsoil_chamber_raw30", "Rsoil",
        "Rsoil_gapfilled_flag")


def _hn1_csv(path, edit=None):
    """The synthetic site in the US-Hn1 CSV layout (two comment lines, then the header: data row i is
    on line i + 4); `edit(lines)` changes the text lines before writing."""
    ds = synthetic_site(days=DAYS).isel(column=0)
    t = ds["time"].dt.strftime("%Y-%m-%d %H:%M:%S").values
    rows = [",".join([t[i]] + [f"{ds[v].values[i]:.4f}" for v in ("tsoil", "swc", "precip", "tsoil")]
                     + ["0.0"] + [f"{ds['rsoil'].values[i]:.4f}"] * 2 + ["0"]) for i in range(len(t))]
    lines = ["# synthetic site in the US-Hn1 layout", "# units: degC, m3 m-3, mm", ",".join(_HN1)] + rows
    if edit is not None:
        lines = edit(lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def _replace_line(n, text):
    def edit(lines):
        lines[n - 1] = text(lines[n - 1]) if callable(text) else text
        return lines
    return edit


@pytest.mark.parametrize("edit, pattern", [
    (_replace_line(10, "this line is junk"), r"line 10: 1 field\(s\) but the header \(line 3\) has 9: a short"),
    (_replace_line(10, lambda s: ",".join(s.split(",")[:4])), r"line 10: 4 field\(s\) .* a short"),
    (_replace_line(10, lambda s: s.replace(",", ";")), r"line 10: 1 field\(s\) .* separated by ';', not ','"),
    (_replace_line(10, lambda s: s + ",7"), r"line 10: 10 field\(s\) .* too many fields"),
    (lambda lines: [s.replace(",", ";") for s in lines], r"line 3 \(the header\) is separated by ';', not ','"),
    (_replace_line(10, lambda s: s.replace(s.split(",")[1], "x1", 1)), r"line 10: column 'TS_15cm': non-numeric value 'x1'"),
    (_replace_line(10, lambda s: "2019-13-45 99:00:00" + s[19:]), r"column 'TIMESTAMP_END': .*'2019-13-45 99:00:00' at line 10"),
    (_replace_line(10, lambda s: s[:-1] + "7"), r"line 10: column 'Rsoil_gapfilled_flag': value 7.0; expected 0"),
])
def test_F14_csv_errors_name_the_file_line_and_column(tmp_path, edit, pattern):
    src = _hn1_csv(tmp_path / "site.csv", edit)
    with pytest.raises(DataError, match=rf"site.csv: .*{pattern}"):
        read_site(src)


@pytest.mark.parametrize("column", ["Tair", "Rsoil_chamber_raw30", "Rsoil", "Rsoil_gapfilled_flag"])
def test_F14_columns_prediction_does_not_read_cannot_fail_it(model, tmp_path, column):
    # a junk value on line 10 in a column training reads and prediction does not
    def edit(lines):
        f = lines[9].split(",")
        f[_HN1.index(column)] = "junk"
        lines[9] = ",".join(f)
        return lines
    src = _hn1_csv(tmp_path / "site.csv", edit)
    with pytest.raises(DataError, match=rf"site.csv: line 10: column '{column}': non-numeric value 'junk'"):
        read_site(src)
    assert set(read_site(src, variables=("tsoil", "swc", "precip")).data_vars) == {"tsoil", "swc", "precip", "qc"}
    res = P.predict(model[0], src, tmp_path / "o.nc", progress=False)
    assert res.n_time == DAYS * 48


# ---------------------------------------------------------------------------------------------
# F17: only the variables the model reads are required
@pytest.fixture(scope="module")
def model_without_precip(tmp_path_factory):
    from rsoil_couple.config import (
        DataSection,
        ModelConfig,
        RunConfig,
        RunSection,
        SiteConfig,
        SplitSection,
        TrainSection,
    )
    from rsoil_couple.modelfile.export import export_model
    from rsoil_couple.training.run import synthetic_sites, train_run

    cfg = RunConfig(data=DataSection(sites=[SiteConfig(path="synthetic")], past_vars=["tsoil", "swc"],
                                     past_hours=12.0, future_hours=6.0),
                    run=RunSection(name="no_precip"), split=SplitSection(scenario="interpolation"),
                    model=ModelConfig(kind="lstm", hidden=8),
                    train=TrainSection(epochs=1, max_train_samples=300, max_eval_samples=100, progress=False))
    path = tmp_path_factory.mktemp("model") / "no_precip.pt"
    res = train_run(cfg, synthetic_sites(days=20))
    export_model(res.model, res.meta, path)
    return path


def test_F17_site_without_rain_record_is_predicted_by_a_model_without_precip(model_without_precip, model,
                                                                             tmp_path):
    src = _canonical(tmp_path / "no_rain.nc", change=lambda d: d.drop_vars("precip"))
    res = P.predict(model_without_precip, src, tmp_path / "o.nc", progress=False)
    assert res.n_columns == 3 and res.status_counts["active"] + res.status_counts["extrapolating"] > 0
    with pytest.raises(ValueError, match=r"no_rain.nc: missing variable 'precip', which the model reads"):
        P.predict(model[0], src, tmp_path / "o2.nc", progress=False)


# ---------------------------------------------------------------------------------------------
# F18: no numpy warning for the user; partial files of dead runs are removed
def test_F18_all_nan_depth_gives_no_runtime_warning(model, tmp_path):
    src = _canonical(tmp_path / "nodepth.nc",
                     change=lambda d: d.assign_coords(depth=d["depth"] * np.nan).assign_attrs(depth_m=np.nan))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", category=RuntimeWarning)
        P.predict(model[0], src, tmp_path / "o.nc", progress=False)
    with netCDF4.Dataset(tmp_path / "o.nc") as nc:
        assert "input depth unknown" in nc.comment


def test_F18_partial_files_of_dead_runs_are_removed(model, tmp_path):
    src = _canonical(tmp_path / "in.nc")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for pid in (dead.pid, alive.pid):
            (tmp_path / f"o.nc.partial-{pid}").write_text("left by a killed run")
        P.predict(model[0], src, tmp_path / "o.nc", progress=False)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.nc", "o.nc", f"o.nc.partial-{alive.pid}"]
    finally:
        alive.kill()
        alive.wait()


def _env() -> dict:
    """The environment of a subprocess that must import the same rsoil_couple as the tests (installed
    in CI; the source tree has no compiled parts there)."""
    import rsoil_couple
    return dict(os.environ, PYTHONPATH=str(Path(rsoil_couple.__file__).resolve().parents[1]))


# ---------------------------------------------------------------------------------------------
# F19: string column names over several blocks (HDF5 vlen-string segfault on re-open)
@pytest.mark.parametrize("names", [True, False])
def test_F19_string_column_names_over_several_blocks_do_not_crash(model, tmp_path, names):
    src = _canonical(tmp_path / "cols.nc", ncol=5, names=names)
    out = tmp_path / "o.nc"
    r = subprocess.run([sys.executable, "-X", "faulthandler", "-W", "ignore::DeprecationWarning", "-m",
                        "rsoil_couple.cli", "predict", "--model", str(model[0]), "--input", str(src),
                        "--output", str(out), "--chunk-columns", "2", "--no-progress"],
                       capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path, env=_env())
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr[-3000:]}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cols.nc", "o.nc"]
    with xr.open_dataset(out) as o, xr.open_dataset(src) as i:
        assert list(o["column"].values) == list(i["column"].values)
        assert o["rsoil"].shape == (DAYS * 48, 5) and np.isfinite(o["rsoil"].values).any()
