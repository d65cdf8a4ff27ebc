"""The generated optional records of the model-file schema: ``ensemble``, ``site_scale``, ``streaming``.

`rsoil_couple.modelfile.schema` writes them into ``rsoil_meta.schema.json`` (``--write``) and checks their
cross-field rules; csrc/model_meta.cpp checks the same (docs/model_format.md).
"""
from __future__ import annotations

from .. import variables as V


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
