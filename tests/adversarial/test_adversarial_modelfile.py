"""Issue 10, F9 and F20: the model file's metadata and identity, refused by Python and the core alike."""
from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

import rsoil_couple
from rsoil_couple import Coupler
from rsoil_couple.errors import MetaError
from rsoil_couple.modelfile.export import export_model, load_model
from rsoil_couple.modelfile.identity import check_identity, model_identity


# ------------------------------------------------------------------------------------------------
# F9: the validators agreed on nothing hard; now same verdict, field named, no traceback.
# ------------------------------------------------------------------------------------------------
def _resave(module, meta_text: str, path: Path) -> Path:
    torch.jit.save(module, str(path), _extra_files={"rsoil_meta.json": meta_text})
    return path


def _refused_by_both_loaders(path: Path, words: str) -> tuple[str, str]:
    with pytest.raises(MetaError) as py:
        load_model(path)
    with pytest.raises(ValueError) as cpp:
        Coupler(path, 2)
    for msg in (str(py.value), str(cpp.value)):
        assert path.name in msg and words in msg, msg
    return str(py.value), str(cpp.value)


def test_F9_model_id_65_characters_refused_by_both(model, tmp_path):
    _, meta, module = model
    m = dict(meta, model_id="a" * 65)
    _refused_by_both_loaders(_resave(module, json.dumps(m), tmp_path / "id65.pt"), "rsoil_meta.json: model_id:")


def test_F9_deep_nesting_no_recursion_error(model, tmp_path):
    _, meta, module = model
    text = json.dumps(meta).replace('"sites": [', '"sites": ' + "[" * 100_000 + "]" * 99_999 + "[", 1)
    path = _resave(module, text, tmp_path / "deep.pt")
    _refused_by_both_loaders(path, "rsoil_meta.json: training.sites[0][0]")
    # the command line reports it in one line (exit 2), not a RecursionError traceback (exit 1)
    from rsoil_couple.data import write_canonical
    from rsoil_couple.data.synthetic import synthetic_site
    drivers = write_canonical(synthetic_site(days=3), tmp_path / "drivers.nc")   # predict checks inputs first
    run = subprocess.run([sys.executable, "-m", "rsoil_couple.cli", "predict", "--model", str(path), "--input",
                          str(drivers), "--output", str(tmp_path / "out.nc")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False,
                         env=dict(os.environ, PYTHONPATH=str(Path(rsoil_couple.__file__).resolve().parents[1])))
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and "nested deeper than 32" in run.stderr


def test_F9_nan_in_envelope_named_by_both(model, tmp_path):
    _, meta, module = model
    m = copy.deepcopy(meta)
    m["envelope"]["tsoil"]["min"] = float("nan")
    path = _resave(module, json.dumps(m), tmp_path / "nan.pt")  # json.dumps writes the token NaN
    _refused_by_both_loaders(path, "rsoil_meta.json: envelope.tsoil.min: NaN is not a JSON number")
    # the writer refuses it naming the field, before writing anything
    fresh = {k: v for k, v in m.items() if k != "model_id"}
    with pytest.raises(MetaError, match=r"envelope\.tsoil\.min: nan is not a finite number"):
        export_model(module, fresh, tmp_path / "never.pt")
    assert not (tmp_path / "never.pt").exists()


# ------------------------------------------------------------------------------------------------
# F20: the model identity is checked by every consumer.
# ------------------------------------------------------------------------------------------------
class Tiny(torch.nn.Module):
    """A second, different module with the fixture model's interface (for swaps)."""

    def __init__(self, n_past: int):
        super().__init__()
        self.lin = torch.nn.Linear(n_past, 1)

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus(self.lin(past[:, -1, :]).squeeze(-1)) + 0.0 * future.sum()


@pytest.fixture(scope="module")
def two_models(model, tmp_path_factory):
    """(path A, meta A, path B, meta B): the fixture model and a different module with the same interface."""
    path_a, meta_a, _ = model
    d = tmp_path_factory.mktemp("f20")
    base = {k: v for k, v in meta_a.items() if k != "model_id"}
    torch.manual_seed(1)
    meta_b = export_model(Tiny(len(meta_a["past_vars"])), base, d / "b.pt")
    return Path(path_a), meta_a, d / "b.pt", meta_b


def test_F20_identity_is_recomputable(two_models, tmp_path):
    path_a, meta_a, path_b, meta_b = two_models
    assert meta_a["schema_version"] == 2 and meta_a["model_id"] == model_identity(path_a)[:16]
    assert meta_b["model_id"] != meta_a["model_id"]
    Coupler(path_a, 2)  # the core recomputes the same identity
    # a second save of the same module to another name: same identity (the folder, named after the file, left out)
    module_b, _ = load_model(path_b)
    copy_b = export_model(module_b, {k: v for k, v in meta_b.items() if k != "model_id"}, tmp_path / "other_name.pt")
    assert copy_b["model_id"] == model_identity(tmp_path / "other_name.pt")[:16]
    # torch's .data/serialization_id hashes every entry, the metadata included: the identity leaves it out
    ids = []
    for name in ("x.pt", "y.pt"):
        torch.jit.save(module_b, str(tmp_path / name), _extra_files={"rsoil_meta.json": name})
        with zipfile.ZipFile(tmp_path / name) as z:
            assert {n.split("/", 1)[1] for n in z.namelist()} >= {".data/serialization_id"}
            ids.append(z.read(f"{name[0]}/.data/serialization_id"))
    assert ids[0] != ids[1] and model_identity(tmp_path / "x.pt") == model_identity(tmp_path / "y.pt")
    buf = io.BytesIO()
    torch.jit.save(module_b, buf)
    assert model_identity(buf.getvalue()) == model_identity(tmp_path / "other_name.pt")


def _swap(meta_from: Path, module_from: Path, out: Path) -> Path:
    """A file with ``module_from``'s archive entries and ``meta_from``'s metadata, rewritten with zipfile."""
    with zipfile.ZipFile(meta_from) as za, zipfile.ZipFile(module_from) as zb, zipfile.ZipFile(out, "w") as zo:
        pa, pb = za.namelist()[0].split("/")[0], zb.namelist()[0].split("/")[0]
        for info in zb.infolist():
            if info.filename == f"{pb}/extra/rsoil_meta.json":
                zo.writestr(info, za.read(f"{pa}/extra/rsoil_meta.json"))
            else:
                zo.writestr(info, zb.read(info))
    return out


def test_F20_swapped_module_refused_by_both(two_models, tmp_path):
    path_a, meta_a, path_b, meta_b = two_models
    for meta_from, module_from, says, has in ((path_a, path_b, meta_a, meta_b), (path_b, path_a, meta_b, meta_a)):
        out = _swap(meta_from, module_from, tmp_path / f"swapped_{module_from.stem}.pt")
        torch.jit.load(str(out))  # torch itself loads the rewritten archive
        py, cpp = _refused_by_both_loaders(out, "rsoil_meta.json: model_id:")
        for msg in (py, cpp):
            assert f"metadata says {says['model_id']}" in msg and f"has identity {has['model_id']}" in msg, msg
    # the C API: RSC_E_METADATA with the same message
    from rsoil_couple.core import capi

    with pytest.raises(capi.CapiError, match=f"metadata says {meta_b['model_id']}.*has identity {meta_a['model_id']}") as e:
        capi.CapiCoupler(out, 2)
    assert e.value.code == capi.lib.RSC_E_METADATA


def test_F20_metadata_copied_onto_another_module_refused_by_both(two_models, tmp_path):
    _, meta_a, path_b, _ = two_models
    module_b, _ = load_model(path_b)
    out = _resave(module_b, json.dumps(meta_a), tmp_path / "copied.pt")
    buf = io.BytesIO()
    torch.jit.save(module_b, buf)
    py, cpp = _refused_by_both_loaders(out, "rsoil_meta.json: model_id:")
    for msg in (py, cpp):
        assert meta_a["model_id"] in msg and model_identity(buf.getvalue())[:16] in msg, msg


def test_F20_schema_version_1_loads_unchecked(model, tmp_path):
    """Version 1 ids hashed another, in-memory save of the module: such files load, their id unchecked."""
    _, meta, module = model
    m = dict(meta, schema_version=1, model_id="0123456789abcdef")
    path = _resave(module, json.dumps(m), tmp_path / "v1.pt")
    assert load_model(path)[1]["model_id"] == "0123456789abcdef"
    assert Coupler(path, 2).model_id == "0123456789abcdef"
    check_identity(path, m)
    with pytest.raises(MetaError, match="metadata says 0123456789abcdef"):
        check_identity(path, dict(m, schema_version=2))
