"""rsoil_couple.modelfile.schema / .identity and the C++ core's validator: one schema, one corpus, one verdict."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from rsoil_couple import _core
from rsoil_couple import variables as V
from rsoil_couple.errors import MetaError
from rsoil_couple.modelfile import schema

CORPUS = Path(__file__).parent / "bad_meta"
MANIFEST = json.loads((CORPUS / "cases.json").read_text())
BAD = sorted(MANIFEST["bad"].items())
GOOD = MANIFEST["good"]


def both_refuse(text: str) -> tuple[str, str]:
    """(Python's message, the core's message) for a metadata text both must refuse."""
    with pytest.raises(MetaError) as py:
        schema.parse_meta_text(text)
    with pytest.raises(ValueError) as cpp:
        _core.validate_meta_json(text)
    return str(py.value), str(cpp.value)


# ------------------------------------------------------------------------------------------------
# The corpus: every case refused by both validators, each naming the same field.
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, field", BAD, ids=[b[0] for b in BAD])
def test_corpus_refused_by_both_naming_the_field(name, field):
    py, cpp = both_refuse((CORPUS / name).read_text(encoding="utf-8"))
    assert f"rsoil_meta.json: {field}" in py, py
    assert f"rsoil_meta.json: {field}" in cpp, cpp


@pytest.mark.parametrize("name", GOOD)
def test_corpus_good_accepted_by_both(name):
    text = (CORPUS / name).read_text(encoding="utf-8")
    assert schema.parse_meta_text(text) == json.loads(text)
    _core.validate_meta_json(text)


def test_corpus_covers_the_rules():
    assert len(BAD) >= 30
    required = schema.schema()["required"]
    assert {f"missing_{k}.json" for k in required} <= set(MANIFEST["bad"])
    assert {f for f in CORPUS.glob("*.json") if f.name != "cases.json"} == {CORPUS / n for n in MANIFEST["bad"]}
    assert set(CORPUS.glob("good/*.json")) == {CORPUS / n for n in GOOD}


# ------------------------------------------------------------------------------------------------
# The schema file: valid draft 2020-12, its tables generated from variables.py.
# ------------------------------------------------------------------------------------------------
def test_schema_file_is_generated_from_variables():
    import jsonschema

    text = schema.SCHEMA_FILE.read_text(encoding="utf-8")
    jsonschema.Draft202012Validator.check_schema(json.loads(text))
    assert schema.render(schema.refreshed(json.loads(text))) == text, \
        "run: python3 -m rsoil_couple.modelfile.schema --write"
    defs = json.loads(text)["$defs"]
    assert defs["driver_name"]["enum"] == list(V.DRIVERS) and defs["q10_form"]["enum"] == list(V.Q10_FORMS)
    assert json.loads(text)["properties"]["schema_version"]["enum"][-1] == schema.SCHEMA_VERSION


def test_schema_refreshed_follows_a_new_variable(monkeypatch):
    """A variable added to the one table reaches the schema (and, by the generated header, the core)."""
    monkeypatch.setattr(V, "DRIVERS", V.DRIVERS + ("tair",))
    monkeypatch.setattr(V, "DRIVER_UNITS", {**V.DRIVER_UNITS, "tair": "degC"})
    doc = schema.refreshed(schema.schema())
    assert "tair" in doc["$defs"]["driver_name"]["enum"]
    assert any(c["then"]["properties"]["units"] == {"const": "degC"} and c["if"]["properties"]["name"]["const"] == "tair"
               for c in doc["$defs"]["driver"]["allOf"])


def test_validate_meta_python_objects(model):
    """Metadata built in Python (not parsed): non-finite floats and deep nesting are named too."""
    _, meta, _ = model
    m = copy.deepcopy(meta)
    m["envelope"]["tsoil"]["min"] = float("nan")
    with pytest.raises(MetaError, match=r"envelope\.tsoil\.min: nan is not a finite number"):
        schema.validate_meta(m)
    m = copy.deepcopy(meta)
    deep: list = []
    for _ in range(10_000):
        deep = [deep]
    m["training"]["sites"] = deep
    with pytest.raises(MetaError, match=r"training\.sites\[0\].*nested deeper than 32"):
        schema.validate_meta(m)
