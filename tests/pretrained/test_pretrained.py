"""rsoil_couple.pretrained: a model by name, by every route (Python registry, the C++ core through
pybind11 and through the C ABI, predict, load_model, emulate), one rule and the same file."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tomllib

from rsoil_couple import _core, cli, pretrained
from rsoil_couple.core.capi import CapiCoupler, CapiError, lib
from rsoil_couple.core.coupler import Coupler
from rsoil_couple.core.emulate import emulate
from rsoil_couple.data import write_canonical
from rsoil_couple.data.synthetic import synthetic_site
from rsoil_couple.modelfile.export import load_model

NAME = "placeholder-v0"
#: the models the package ships (drylands-v1, ...): they are listed with the test folders' names
SHIPPED = sorted(p.stem for p in pretrained.PACKAGE_DIR.glob("*.pt"))
AVAILABLE = ", ".join(sorted(["other", NAME] + SHIPPED))


@pytest.fixture()
def model_dirs(tmp_path, scaled_q10, monkeypatch):
    """Two RSOIL_MODEL_PATH folders: ``first`` holds NAME (scale 2) and ``other`` (scale 1), ``second``
    holds NAME too (scale 3, shadowed); an empty entry in the variable is skipped."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    metas = {"first": scaled_q10(first / f"{NAME}.pt", 2.0), "second": scaled_q10(second / f"{NAME}.pt", 3.0),
             "other": scaled_q10(first / "other.pt", 1.0)}
    monkeypatch.setenv(pretrained.ENV, f"{first}::{second}")
    return first, second, metas


def test_resolve_a_name_in_the_first_folder_that_has_it(model_dirs):
    first, second, metas = model_dirs
    assert pretrained.resolve(NAME) == first / f"{NAME}.pt"
    assert pretrained.available() == sorted(["other", NAME] + SHIPPED)
    assert pretrained.directories()[:2] == [(first, "RSOIL_MODEL_PATH"), (second, "RSOIL_MODEL_PATH")]
    assert pretrained.directories()[-1] == (pretrained.PACKAGE_DIR, "installed models")
    assert load_model(NAME)[1]["model_id"] == metas["first"]["model_id"]


def test_paths_are_returned_as_given(model_dirs, tmp_path, monkeypatch):
    first, _, _ = model_dirs
    assert pretrained.resolve(first / "other.pt") == first / "other.pt"
    assert pretrained.resolve("missing/x.pt") == Path("missing/x.pt")   # not a bare name: opener reports
    assert pretrained.resolve("missing.pt") == Path("missing.pt")
    monkeypatch.chdir(first)
    (first / NAME).write_bytes(b"")          # an existing file of that exact name wins over the lookup
    assert pretrained.resolve(NAME) == Path(NAME)


def test_package_folder_is_searched_last(tmp_path, scaled_q10, monkeypatch):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    scaled_q10(pkg / "shipped-v1.pt", 1.0)
    monkeypatch.setattr(pretrained, "PACKAGE_DIR", pkg)
    monkeypatch.delenv(pretrained.ENV, raising=False)
    assert pretrained.resolve("shipped-v1") == pkg / "shipped-v1.pt"
    assert pretrained.available() == ["shipped-v1"]


def test_unknown_name_lists_the_folders_and_the_available_names(model_dirs):
    first, second, _ = model_dirs
    with pytest.raises(FileNotFoundError) as py:
        pretrained.resolve("drylands-v9")
    msg = str(py.value)
    assert msg.startswith("model 'drylands-v9': no such file, and no pretrained model of that name: "
                          "looked for drylands-v9.pt in ")
    assert f"{first} (RSOIL_MODEL_PATH), {second} (RSOIL_MODEL_PATH), {pretrained.PACKAGE_DIR} (installed models)" in msg
    assert msg.endswith("available names: " + AVAILABLE)


# ------------------------------------------------------------------------------------------------
# The core's lookup (csrc/model_path.cpp) is the same rule
# ------------------------------------------------------------------------------------------------
def test_core_searches_the_same_folders(model_dirs):
    py = [(os.path.realpath(d), why) for d, why in pretrained.directories()]
    core = [(os.path.realpath(d), why) for d, why in _core.model_search_dirs()]
    assert core == py   # in this (dev) build the library reads the source tree's rsoil_couple/pretrained


@pytest.mark.parametrize("arg", [NAME, "other", f"{NAME}.pt", "x/" + NAME, "", "drylands-v9", "a.pt.b"])
def test_core_and_python_resolve_alike(model_dirs, arg):
    try:
        py = pretrained.resolve(arg)
    except FileNotFoundError as exc:
        with pytest.raises(FileNotFoundError) as core:
            _core.resolve_model_path(arg)
        assert str(core.value) == str(exc)   # same folders, same names, same words
        return
    assert Path(_core.resolve_model_path(arg)) == py   # Path: "" is Path(".") in Python


def test_coupler_by_name_python_and_c_abi(model_dirs):
    """Coupler resolves in Python; CapiCoupler passes the name to rsc_coupler_create (the C lookup, what a
    Fortran host uses). Both open first/NAME.pt (scale 2), not the shadowed second/NAME.pt."""
    _, _, metas = model_dirs
    a, b = Coupler(NAME, 2), CapiCoupler(NAME, 2)
    assert a.model_id == b.model_id == metas["first"]["model_id"] != metas["second"]["model_id"]
    t, w = np.array([20.0, 25.0]), np.array([0.1, 0.2])
    for _ in range(4):
        ra = a.step(t, w, np.zeros(2))
        rb = b.step(t + 273.15, w, np.zeros(2))
    np.testing.assert_allclose(ra.rsoil, 2.0 * 0.25 * 2 ** ((t - 10) / 10) * np.sqrt(w / 0.1), rtol=1e-6)
    np.testing.assert_allclose(rb.rsoil, ra.rsoil, rtol=1e-12)


def test_c_abi_unknown_name_is_a_file_error_listing_where_it_looked(model_dirs):
    first, second, _ = model_dirs
    with pytest.raises(CapiError) as exc:
        CapiCoupler("drylands-v9", 2)
    assert exc.value.code == lib.RSC_E_FILE
    assert f"{first} (RSOIL_MODEL_PATH), {second} (RSOIL_MODEL_PATH)" in exc.value.message
    assert "(installed models); available names: " + AVAILABLE in exc.value.message
    with pytest.raises(FileNotFoundError, match="model 'drylands-v9'"):
        Coupler("drylands-v9", 2)


def test_emulate_and_predict_by_name(model_dirs, tmp_path, capsys):
    first, _, metas = model_dirs
    ds = synthetic_site(days=2, seed=0)
    res = emulate(NAME, ds[["tsoil", "swc", "precip"]])
    assert res.attrs["model_id"] == metas["first"]["model_id"]
    site = write_canonical(ds, tmp_path / "site.nc")
    out = tmp_path / "pred.nc"
    assert cli.main(["predict", "--model", NAME, "--input", str(site), "--output", str(out), "--no-progress"]) == 0
    import xarray as xr
    with xr.open_dataset(out) as p:
        assert p.attrs["model_path"] == str(first / f"{NAME}.pt")
        assert p.attrs["model_id"] == metas["first"]["model_id"]
        np.testing.assert_allclose(p["rsoil"].values, res["rsoil"].values, rtol=1e-6)
    capsys.readouterr()
    assert cli.main(["predict", "--model", "drylands-v9", "--input", str(site), "--output", str(out)]) == 2
    assert "available names: " + AVAILABLE in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# Packaging: the wheel carries rsoil_couple/pretrained/*.pt and *.md
# ------------------------------------------------------------------------------------------------
def test_wheel_rule_ships_pretrained_files_even_if_excluded(repo_root, tmp_path, monkeypatch):
    """scikit-build-core's own file selection with the settings of pyproject.toml: a .pt and the README in
    rsoil_couple/pretrained/ are packaged, also under an exclude rule for *.pt (sdist.include wins)."""
    pathutil = pytest.importorskip("scikit_build_core.build._pathutil")
    skb = tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["scikit-build"]
    include = skb["sdist"]["include"]
    assert {"rsoil_couple/pretrained/*.pt", "rsoil_couple/pretrained/*.md"} <= set(include)
    pkg = tmp_path / "src" / "rsoil_couple" / "pretrained"
    pkg.mkdir(parents=True)
    for f in ("__init__.py", "README.md", "some-model.pt"):
        (pkg / f).write_text("x")
    monkeypatch.chdir(tmp_path / "src")
    for exclude in ([], ["*.pt", "*.md"]):
        mapping = pathutil.packages_to_file_mapping(
            packages={"rsoil_couple": "rsoil_couple"}, platlib_dir=tmp_path / "wheel", include=include,
            src_exclude=exclude, target_exclude=[], build_dir="build", mode="default")
        assert {"rsoil_couple/pretrained/some-model.pt", "rsoil_couple/pretrained/README.md"} <= set(mapping), mapping
    # the rule is what keeps them: without it the exclude drops them
    mapping = pathutil.packages_to_file_mapping(
        packages={"rsoil_couple": "rsoil_couple"}, platlib_dir=tmp_path / "wheel", include=[],
        src_exclude=["*.pt"], target_exclude=[], build_dir="build", mode="default")
    assert "rsoil_couple/pretrained/some-model.pt" not in mapping
