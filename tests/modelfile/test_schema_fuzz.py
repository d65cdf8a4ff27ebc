"""Random field edits of a valid rsoil_meta.json: Python's and the core's validators give one verdict.

Issue 10's harness for metadata: every edited document ends in a clear error (MetaError / ValueError
naming a field) or is accepted, never a crash, and Python and C++ never disagree on accept vs refuse.
Profiles as in tests/test_adversarial_core.py (RSOIL_FUZZ_PROFILE=long for >= 100,000 cases).
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rsoil_couple import _core
from rsoil_couple.errors import MetaError
from rsoil_couple.modelfile import schema

pytestmark = pytest.mark.fuzz

# good/base.json plus a calibrated site_scale record, so that edits reach the optional record too (and
# deleting it is one of the edits).
BASE = json.loads((Path(__file__).parent / "bad_meta" / "good" / "site_scale_calibrated.json").read_text())
#: a streaming model's metadata (issue 12): the edits also reach the streaming record's fields
STREAMING = json.loads((Path(__file__).parent / "bad_meta" / "good" / "streaming.json").read_text())


def paths(doc, prefix=()):
    """Every path (tuple of keys / indices) into a JSON document, the root excluded."""
    out = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in items:
        out.append(prefix + (k,))
        out.extend(paths(v, prefix + (k,)))
    return out


PATHS = paths(BASE)
STREAMING_PATHS = paths(STREAMING)
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=70),
                    st.sampled_from(["tsoil", "swc", "precip", "degC", "mm", "q10", "percent", "rsoil",
                                     "m3 m-3", "umol m-2 s-1", "lstm", "0123456789abcdef", "",
                                     "trained", "training_median", "calibrated", "2020-05-01"]))
values = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=3),
                                                    st.dictionaries(st.text(max_size=8), c, max_size=3)),
                      max_leaves=6)
edits = st.lists(st.tuples(st.sampled_from(PATHS), st.sampled_from(["set", "delete"]), values),
                 min_size=1, max_size=3)
streaming_edits = st.lists(st.tuples(st.sampled_from(STREAMING_PATHS), st.sampled_from(["set", "delete"]),
                                     st.one_of(values, st.integers(-2, 12))), min_size=1, max_size=3)


def apply(doc, path, op, value):
    parent = doc
    for k in path[:-1]:
        if isinstance(parent, dict) and k in parent or isinstance(parent, list) and isinstance(k, int) \
                and k < len(parent):
            parent = parent[k]
        else:
            return
    k = path[-1]
    if isinstance(parent, dict):
        if op == "delete":
            parent.pop(k, None)
        else:
            parent[k] = value
    elif isinstance(parent, list) and isinstance(k, int) and k < len(parent):
        if op == "delete":
            del parent[k]
        else:
            parent[k] = value


@given(edits)
def test_edited_metadata_gets_one_verdict_from_both_validators(edit_list):
    one_verdict(BASE, edit_list)


@given(streaming_edits)
def test_edited_streaming_metadata_gets_one_verdict_from_both_validators(edit_list):
    one_verdict(STREAMING, edit_list)


def one_verdict(base: dict, edit_list) -> None:
    """Apply the edits to a copy of ``base``: both validators accept, or both refuse naming a field."""
    doc = copy.deepcopy(base)
    for path, op, value in edit_list:
        apply(doc, path, op, value)
    text = json.dumps(doc)
    try:
        schema.parse_meta_text(text)
        py_ok, py_msg = True, ""
    except MetaError as exc:
        py_ok, py_msg = False, str(exc)
    try:
        _core.validate_meta_json(text)
        cpp_ok, cpp_msg = True, ""
    except ValueError as exc:
        cpp_ok, cpp_msg = False, str(exc)
    assert py_ok == cpp_ok, f"Python {'accepts' if py_ok else 'refuses: ' + py_msg}; C++ " \
                            f"{'accepts' if cpp_ok else 'refuses: ' + cpp_msg}\n{text}"
    for msg in (py_msg, cpp_msg):
        assert not msg or msg.startswith("rsoil_meta.json: "), msg


@given(st.binary(min_size=0, max_size=64), st.integers(min_value=0, max_value=4000))
def test_byte_flips_of_the_metadata_text_never_crash(noise, at):
    raw = bytearray(json.dumps(BASE).encode())
    at = min(at, len(raw))
    raw[at:at + len(noise)] = noise
    text = raw.decode("utf-8", errors="replace")
    outcomes = []
    for check, err in ((schema.parse_meta_text, MetaError), (_core.validate_meta_json, ValueError)):
        try:
            check(text)
            outcomes.append(True)
        except err as exc:
            assert str(exc).startswith("rsoil_meta.json: "), str(exc)
            outcomes.append(False)
    assert outcomes[0] == outcomes[1], text


def test_base_document_is_valid_for_both():
    for doc in (BASE, STREAMING):
        schema.parse_meta_text(json.dumps(doc))
        _core.validate_meta_json(json.dumps(doc))
    assert len(PATHS) > 50   # the edits reach every field of a complete document
    assert ("streaming", "state_layout", 2, "size") in STREAMING_PATHS
