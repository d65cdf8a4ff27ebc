"""The metadata of a model file (``rsoil_meta.json``): its JSON Schema plus the cross-field rules a schema cannot state.

``rsoil_meta.schema.json`` (beside this module, shipped in the package) states every field's type, the
allowed names, units and Q10 forms; this module adds what JSON Schema cannot express — how fields relate
(``past_steps == round(past_hours * 3600 / step_seconds)``, ``min <= max``, no variable listed twice, a
range for every variable used), and what JSON parsers disagree on (nesting depth, keys given twice, NaN /
Infinity tokens). The C++ core (``csrc/model_meta.cpp``) checks the same rules; the corpus
``tests/data/bad_meta/`` holds both to the same verdict and the same field.

The schema's variable-dependent ``$defs`` are generated from `rsoil_couple.variables` (the one table):
``python3 -m rsoil_couple.modelfile.schema --write`` refreshes them, and a test fails when the shipped
file differs from what variables.py gives. A generated file (rather than filling the names in at load
time) is a complete JSON Schema that any tool or editor can use without this package.
"""
from __future__ import annotations

import argparse
import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from .. import variables as V
from ..errors import MetaError

__all__ = [
    "MAX_DEPTH",
    "MAX_STREAMING_COUNT",
    "SCHEMA_FILE",
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "generated_defs",
    "parse_meta_text",
    "schema",
    "streaming_property",
    "validate_meta",
]

#: The JSON Schema (draft 2020-12) of ``rsoil_meta.json``.
SCHEMA_FILE = Path(__file__).with_name("rsoil_meta.schema.json")
#: Value of the ``schema`` field.
SCHEMA_NAME = "rsoil_meta"
#: The version `rsoil_couple.export.export_model` writes (the schema file lists every version read).
SCHEMA_VERSION = 2
#: Deepest nesting of arrays/objects accepted (the top-level object is depth 1); csrc/model_meta.cpp's
#: kMaxDepth is the same, and the corpus tests both at the limit and one past it.
MAX_DEPTH = 32

# Tokens of the JSON text that shape its structure, plus the non-JSON constants Python's json accepts.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]|NaN|-?Infinity')


def field_name(path: list) -> str:
    """``['past_vars', 1, 'name']`` -> ``'past_vars[1].name'``; the empty path is ``'(top level)'``."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _error(path: list, what: str) -> MetaError:
    return MetaError(f"rsoil_meta.json: {field_name(path)}: {what}")


def _short(x: Any, n: int = 60) -> str:
    s = json.dumps(x) if isinstance(x, (str, int, float, bool)) or x is None else type(x).__name__
    return s if len(s) <= n else s[:n] + "..."


def generated_defs() -> dict:
    """The schema's ``$defs`` that come from `rsoil_couple.variables`: drivers, units, Q10 forms."""
    return {
        "driver_name": {"enum": list(V.DRIVERS)},
        "driver": {
            "type": "object", "required": ["name", "units"],
            "properties": {"name": {"$ref": "#/$defs/driver_name"}, "units": {"type": "string"}},
            "allOf": [{"if": {"required": ["name"], "properties": {"name": {"const": v}}},
                       "then": {"properties": {"units": {"const": V.DRIVER_UNITS[v]}}}} for v in V.DRIVERS]},
        "rsoil_units": {"const": V.RSOIL_UNITS},
        "q10_form": {"enum": list(V.Q10_FORMS)},
        "q10_params": {"allOf": [
            {"if": {"required": ["form"], "properties": {"form": {"const": form}}},
             "then": {"properties": {"params": {"required": list(names),
                                                "properties": {p: {"type": "number"} for p in names}}}}}
            for form, names in V.Q10_FORMS.items()]},
        "q10_swc_units": {"enum": list(V.Q10_SWC_UNITS)},
    }


def ensemble_property() -> dict:
    """The optional top-level ``ensemble`` record (``train.members > 1``, docs/model_format.md).

    Informational: the module's ``forward`` already returns the member mean, so the C++ core does not
    read it (it allows unknown top-level keys); Python checks its types.
    """
    stats = {"type": "object", "required": ["min", "max", "mean", "sd"],
             "properties": {k: {"type": "number"} for k in ("min", "max", "mean", "sd")}}
    return {
        "type": "object",
        "required": ["members", "combine", "seeds", "member_test_metrics", "spread"],
        "properties": {
            "members": {"type": "integer", "minimum": 2},
            "combine": {"const": "mean"},
            "seeds": {"type": "array", "items": {"type": "integer"}},
            "member_test_metrics": {"type": "array", "items": {"$ref": "#/properties/test_metrics"}},
            "spread": {"type": "object",
                       "required": ["test_mean_sd", "test_max_sd", "test_mean_rel_sd", "nse", "cc"],
                       "properties": {"test_mean_sd": {"type": "number", "minimum": 0},
                                      "test_max_sd": {"type": "number", "minimum": 0},
                                      "test_mean_rel_sd": {"type": "number", "minimum": 0},
                                      "nse": stats, "cc": stats}},
            "kg_q10": {"type": "array", "items": {"type": "number"}},
        },
    }


#: ``site_scale.calibration.start`` / ``.end`` begin with an ISO 8601 date (csrc/model_meta.cpp: iso_date).
ISO_DATE_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}"
#: ``site_scale.value`` must equal ``calibration.previous * calibration.factor`` within this relative
#: tolerance (the value is stored as float32 in the module: 6e-8 relative rounding).
SITE_SCALE_RTOL = 1e-6


def site_scale_property() -> dict:
    """The optional top-level ``site_scale`` record: which site scale the module carries, and how obtained.

    The module's float32 0-d buffer ``site_scale`` multiplies its output; ``value`` must equal it (checked
    by `rsoil_couple.modelfile.export.load_model` and the core). ``calibration`` is present exactly when
    ``method`` is ``"calibrated"`` (a cross-field rule, `_check_rules`); ``value`` is then ``previous *
    factor``. Checked by Python and the C++ core alike (docs/model_format.md).
    """
    positive = {"type": "number", "exclusiveMinimum": 0}
    return {
        "type": "object",
        "required": ["value", "method", "sites"],
        "properties": {
            "value": {**positive, "description": "the module's site_scale buffer [-] (float32)"},
            "method": {"enum": list(V.SITE_SCALE_METHODS)},
            "sites": {"type": "array", "items": {"type": "string"},
                      "description": "the sites the scale came from"},
            "calibration": {
                "type": "object",
                "required": ["data", "start", "end", "n_obs", "factor", "previous"],
                "properties": {
                    "data": {"type": "string", "description": "file name of the calibration record"},
                    "start": {"type": "string", "pattern": ISO_DATE_PATTERN},
                    "end": {"type": "string", "pattern": ISO_DATE_PATTERN},
                    "n_obs": {"type": "integer", "minimum": 1},
                    "factor": {**positive, "description": "sum(obs*pred)/sum(pred^2) on the record [-]"},
                    "previous": {**positive, "description": "the site scale before calibration [-]"},
                },
            },
        },
    }


#: Largest ``streaming.state_size``, ``spinup_steps`` and ``state_layout[i].size`` (as ``past_steps``):
#: csrc/model_meta.cpp has the same bound (kMaxStreamingCount).
MAX_STREAMING_COUNT = 1_000_000


def streaming_property() -> dict:
    """The optional top-level ``streaming`` record: present => a streaming model file.

    docs/model_format.md and the streaming contract: ``state_size`` floats of state per column,
    ``spinup_steps`` steps (status SPINUP) before the first network output, what a missing driver
    does to the state (``"hold"``: the model keeps the variable's last valid value), and the state's
    parts (informational). The C++ core reads it and checks the same rules (csrc/model_meta.cpp);
    the cross-field rules (no future window, layout sizes summing to ``state_size``) are in
    `_check_rules`.
    """
    count = {"type": "integer", "minimum": 1, "maximum": MAX_STREAMING_COUNT}
    return {
        "type": "object",
        "required": ["state_size", "spinup_steps", "missing", "state_layout"],
        "properties": {
            "state_size": count,
            "spinup_steps": {"type": "integer", "minimum": 0, "maximum": MAX_STREAMING_COUNT},
            "missing": {"const": "hold"},
            "state_layout": {
                "type": "array", "minItems": 1,
                "items": {"type": "object", "required": ["name", "size"],
                          "properties": {"name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}(?!\\n)$"},
                                         "size": count}}},
        },
    }


#: The schema file's ``$comment`` (generated with the rest).
COMMENT = ("$defs driver_name, driver, rsoil_units, q10_form, q10_params and q10_swc_units, and "
           "properties.ensemble, properties.site_scale and properties.streaming, are GENERATED by "
           "`python3 -m rsoil_couple.modelfile.schema --write` (the tables from rsoil_couple/variables.py, "
           "ensemble, site_scale and streaming from schema.ensemble_property / site_scale_property / "
           "streaming_property); edit those, not this file (tests/modelfile/test_schema.py fails when "
           "they differ).")


def render(doc: dict) -> str:
    """The schema file's text for ``doc`` (one format, so that regenerating is a no-op)."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def refreshed(doc: dict) -> dict:
    """``doc`` with its generated parts made anew: ``$defs`` (variables.py), ``ensemble``, ``site_scale``,
    ``streaming``.
    """
    out = json.loads(json.dumps(doc))
    out["$comment"] = COMMENT
    out["$defs"].update(generated_defs())
    out["properties"]["ensemble"] = ensemble_property()
    out["properties"]["site_scale"] = site_scale_property()
    out["properties"]["streaming"] = streaming_property()
    return out


@lru_cache(maxsize=1)
def schema() -> dict:
    """The shipped JSON Schema, as a dict."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator():
    import jsonschema  # only here: variables.py and the CLI stay importable without it

    cls = jsonschema.Draft202012Validator
    cls.check_schema(schema())
    return cls(schema())


# ------------------------------------------------------------------------------------------------
# The JSON text: what parsers disagree on, refused before parsing, naming the field.
# ------------------------------------------------------------------------------------------------
class _Frame:
    __slots__ = ("expect_key", "index", "is_object", "key", "keys")

    def __init__(self, is_object: bool):
        self.is_object, self.key, self.index, self.keys, self.expect_key = is_object, None, 0, set(), True


def _frames_path(stack: list[_Frame]) -> list:
    path: list = []
    for f in stack:
        if not f.is_object:
            path.append(f.index)
        elif f.key is not None:
            path.append(f.key)
        else:
            break
    return path


def _scan(text: str, stop: int | None = None) -> list:
    """Walk the structure of JSON ``text`` (not its values) and return the field path at ``stop``.

    Refuses, naming the field: nesting deeper than `MAX_DEPTH` (Python's json would raise
    RecursionError), a key twice in one object (parsers keep one silently), and the NaN / Infinity
    tokens (not JSON; Python's json accepts them, C++ parsers do not). Iterative: any depth is safe.
    """
    stack: list[_Frame] = []
    for m in _TOKENS.finditer(text):
        if stop is not None and m.start() >= stop:
            break
        t = m.group()
        top = stack[-1] if stack else None
        if t == "[" or t == "{":
            if len(stack) >= MAX_DEPTH:
                raise _error(_frames_path(stack), f"nested deeper than {MAX_DEPTH} levels of arrays/objects")
            stack.append(_Frame(t == "{"))
        elif t == "]" or t == "}":
            if stack:
                stack.pop()
        elif t == ",":
            if top is not None:
                if top.is_object:
                    top.expect_key = True
                else:
                    top.index += 1
        elif t[0] == '"':
            if top is not None and top.is_object and top.expect_key:
                try:
                    key = json.loads(t)
                except ValueError:  # a bad escape: json.loads below names it
                    continue
                top.key, top.expect_key = key, False
                if key in top.keys:
                    raise _error(_frames_path(stack), "key given twice in the same object")
                top.keys.add(key)
        else:
            raise _error(_frames_path(stack), f"{t} is not a JSON number (NaN and Infinity are not JSON)")
    return _frames_path(stack)


def parse_meta_text(text: str | bytes) -> dict:
    """Parse and validate the text of ``rsoil_meta.json``; raise `MetaError` naming the field."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _error([], f"not UTF-8 text ({exc})") from None
    _scan(text)

    def no_constant(name: str):  # never reached after _scan; kept so json.loads alone can never accept them
        raise _error([], f"{name} is not a JSON number")

    try:
        meta = json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise _error(_scan(text, exc.pos), f"invalid JSON at character {exc.pos}: {exc.msg}") from None
    return validate_meta(meta)


# ------------------------------------------------------------------------------------------------
# The parsed metadata.
# ------------------------------------------------------------------------------------------------
def _walk(meta: Any) -> None:
    """Depth, string keys and finite numbers of a metadata object built in Python (iterative)."""
    todo: list[tuple[Any, list, int]] = [(meta, [], 1)]
    while todo:
        x, path, depth = todo.pop()
        if isinstance(x, (dict, list)):
            if depth > MAX_DEPTH:
                raise _error(path, f"nested deeper than {MAX_DEPTH} levels of arrays/objects")
            items = x.items() if isinstance(x, dict) else enumerate(x)
            for k, v in items:
                if isinstance(x, dict) and not isinstance(k, str):
                    raise _error(path + [str(k)], "keys must be strings")
                todo.append((v, path + [k], depth + 1))
        elif isinstance(x, float) and not math.isfinite(x):
            raise _error(path, f"{x} is not a finite number")


_JSON_TYPE = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"),
              (dict, "object"), (type(None), "null"))


def _json_type(x: Any) -> str:
    return next((name for t, name in _JSON_TYPE if isinstance(x, t)), type(x).__name__)


def _describe(err) -> tuple[list, str]:
    """A jsonschema error -> (field path, what is wrong), in the words the C++ validator uses."""
    path = list(err.absolute_path)
    kind, want, got = err.validator, err.validator_value, err.instance
    if kind == "required":
        return path + [next(k for k in want if k not in got)], "required field is missing"
    if "propertyNames" in err.absolute_schema_path:
        return path + [got], f"unknown variable {_short(got)} (expected one of {', '.join(V.DRIVERS)})"
    if kind == "type":
        return path, f"expected {want if isinstance(want, str) else ' or '.join(want)}, found {_json_type(got)}"
    if path == ["schema_version"] and kind == "enum":
        return path, f"unknown schema version {_short(got)} (this library reads {', '.join(map(str, want))})"
    if kind == "enum":
        return path, f"unknown value {_short(got)} (expected one of {', '.join(map(_short, want))})"
    if kind == "const":
        return path, f"expected {_short(want)}, found {_short(got)}"
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[kind]
        return path, f"{_short(got)}: must be {op} {want}"  # as csrc/model_meta.cpp's within()
    if kind == "pattern":
        return path, f"{_short(got)} does not match the pattern {want}"
    return path, f"{_short(got)}: {kind} {want}"


def _check_rules(m: dict) -> None:
    """The cross-field rules (after the schema passed)."""
    used: list[str] = []
    for which in ("past", "future"):
        key = f"{which}_vars"
        for i, v in enumerate(m[key]):
            if any(u["name"] == v["name"] for u in m[key][:i]):
                raise _error([key, i, "name"], f"variable {_short(v['name'])} listed twice")
            used.append(v["name"])
        steps, hours = m[f"{which}_steps"], m[f"{which}_hours"]
        expect = math.floor(hours * 3600 / m["step_seconds"] + 0.5)  # round half up, as the C++ core
        if steps != expect:
            raise _error([f"{which}_steps"], f"{int(steps)} but {which}_hours*3600/step_seconds = {expect}")
    if (m["future_steps"] == 0) != (len(m["future_vars"]) == 0):
        raise _error(["future_vars"], "must be empty exactly when future_steps == 0 "
                                      f"(future_steps = {int(m['future_steps'])})")
    for table in ("envelope", "physical_range"):
        for name in dict.fromkeys(used):
            if name not in m[table]:
                raise _error([table, name], "required for an input variable but missing")
        for name, r in m[table].items():
            if not r["min"] <= r["max"]:
                raise _error([table, name], f"min {r['min']} > max {r['max']}")
    stream = m.get("streaming")
    if stream is not None:  # a streaming model has no future window; its state parts add up
        if m["future_vars"]:
            raise _error(["future_vars"], "must be [] for a streaming model (the streaming record is present)")
        if m["future_hours"] != 0:
            raise _error(["future_hours"], f"{m['future_hours']}: must be 0 for a streaming model "
                                           "(the streaming record is present)")
        total = sum(part["size"] for part in stream["state_layout"])
        if total != stream["state_size"]:
            raise _error(["streaming", "state_layout"], f"sizes sum to {int(total)} but streaming.state_size "
                                                        f"is {int(stream['state_size'])}")
    if "site_scale" in m:
        _check_site_scale(m["site_scale"])


def _check_site_scale(s: dict) -> None:
    """The cross-field rules of the ``site_scale`` record (csrc/model_meta.cpp: site_scale)."""
    path = ["site_scale", "calibration"]
    calibrated = s["method"] == "calibrated"
    if calibrated and "calibration" not in s:
        raise _error(path, 'required when method is "calibrated"')
    if not calibrated and "calibration" in s:
        raise _error(path, f'only for method "calibrated" (method is {_short(s["method"])})')
    if calibrated:
        c = s["calibration"]
        if c["end"] < c["start"]:
            raise _error(path + ["end"], f"{_short(c['end'])} is before start {_short(c['start'])}")
        want = c["previous"] * c["factor"]
        if abs(s["value"] - want) > SITE_SCALE_RTOL * s["value"]:
            raise _error(["site_scale", "value"], f"{s['value']!r} but calibration.previous * calibration.factor "
                                                  f"= {want!r} (relative tolerance {SITE_SCALE_RTOL:g})")


def validate_meta(meta: Any) -> dict:
    """Check ``meta`` (a parsed ``rsoil_meta.json``) against the schema and the cross-field rules.

    Returns ``meta`` unchanged; raises `rsoil_couple.errors.MetaError` whose message names the field as
    a dotted path (``rsoil_meta.json: fallback_q10.params.b: ...``, ``past_vars[1].name``).
    """
    _walk(meta)
    from jsonschema.exceptions import best_match

    err = best_match(_validator().iter_errors(meta))
    if err is not None:
        raise _error(*_describe(err))
    _check_rules(meta)
    return meta


def main(argv: list[str] | None = None) -> int:
    """``python3 -m rsoil_couple.modelfile.schema [--write | --check]``: regenerate / check the $defs."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help="rewrite the generated $defs of the schema file")
    args = p.parse_args(argv)
    text = SCHEMA_FILE.read_text(encoding="utf-8")
    new = render(refreshed(json.loads(text)))
    if new == text:
        print(f"{SCHEMA_FILE}: up to date")
        return 0
    if args.write:
        SCHEMA_FILE.write_text(new, encoding="utf-8")
        print(f"{SCHEMA_FILE}: rewritten (tables from rsoil_couple/variables.py, properties.ensemble, site_scale, "
              "properties.streaming)")
        return 0
    print(f"{SCHEMA_FILE}: differs from rsoil_couple/variables.py; run with --write")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
