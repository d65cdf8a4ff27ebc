"""Write and read the model file: TorchScript with an embedded ``rsoil_meta.json`` (docs/model_format.md).

``export_model`` scripts the module, fills ``model_id``, ``torch_version`` and ``rsoil_couple_version``,
validates the metadata and writes one file; ``load_model`` reads it back and validates it again;
``example_model`` trains a small model on the synthetic site in seconds, for other parts' tests.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
from pathlib import Path
from typing import Any

import torch

from . import __version__

META_NAME = "rsoil_meta.json"
SCHEMA = "rsoil_meta"
SCHEMA_VERSION = 1
KINDS = ("lstm", "unilstm", "mlp", "kg_lstm")
UNITS = {"tsoil": "degC", "swc": "m3 m-3", "precip": "mm"}
Q10_FORMS = {"q10": ("a", "b"), "q10_swc": ("a", "b", "c"), "logistic_power": ("a", "b", "c", "d")}
REQUIRED = ("schema", "schema_version", "model_kind", "model_id", "step_seconds", "past_hours",
            "past_steps", "future_hours", "future_steps", "past_vars", "future_vars", "depth_m",
            "output", "envelope", "physical_range", "fallback_q10", "training", "test_metrics",
            "torch_version", "rsoil_couple_version")


class MetaError(ValueError):
    """Malformed ``rsoil_meta.json``; the message names the field."""


def _num(meta: dict, key: str, where: str | None = None, integer: bool = False) -> float:
    v = meta[key]
    name = where or key
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise MetaError(f"rsoil_meta.json: field '{name}' must be a finite number, got {v!r}")
    if integer and (not isinstance(v, int) and float(v) != int(v)):
        raise MetaError(f"rsoil_meta.json: field '{name}' must be an integer, got {v!r}")
    return v


def validate_meta(meta: Any) -> dict:
    """Check ``meta`` against schema version 1; raise :class:`MetaError` naming the bad field."""
    if not isinstance(meta, dict):
        raise MetaError(f"rsoil_meta.json: must be a JSON object, got {type(meta).__name__}")
    for k in REQUIRED:
        if k not in meta:
            raise MetaError(f"rsoil_meta.json: required field '{k}' is missing")
    if meta["schema"] != SCHEMA:
        raise MetaError(f"rsoil_meta.json: field 'schema' must be {SCHEMA!r}, got {meta['schema']!r}")
    if meta["schema_version"] != SCHEMA_VERSION:
        raise MetaError(f"rsoil_meta.json: field 'schema_version' = {meta['schema_version']!r} is not a "
                        f"known version (this library reads {SCHEMA_VERSION})")
    if meta["model_kind"] not in KINDS:
        raise MetaError(f"rsoil_meta.json: field 'model_kind' = {meta['model_kind']!r}; expected one of {KINDS}")
    for k in ("model_id", "torch_version", "rsoil_couple_version"):
        if not isinstance(meta[k], str) or not meta[k]:
            raise MetaError(f"rsoil_meta.json: field '{k}' must be a non-empty string")
    step = _num(meta, "step_seconds", integer=True)
    if step <= 0:
        raise MetaError(f"rsoil_meta.json: field 'step_seconds' must be > 0, got {step}")
    names: list[str] = []
    for which in ("past", "future"):
        hours = _num(meta, f"{which}_hours")
        steps = _num(meta, f"{which}_steps", integer=True)
        if steps < 0 or hours < 0:
            raise MetaError(f"rsoil_meta.json: field '{which}_steps'/'{which}_hours' must be >= 0")
        if steps != round(hours * 3600 / step):
            raise MetaError(f"rsoil_meta.json: field '{which}_steps' = {steps} != round({which}_hours "
                            f"* 3600 / step_seconds) = {round(hours * 3600 / step)}")
        vs = meta[f"{which}_vars"]
        if not isinstance(vs, list):
            raise MetaError(f"rsoil_meta.json: field '{which}_vars' must be a list")
        for i, v in enumerate(vs):
            if not isinstance(v, dict) or v.get("name") not in UNITS:
                raise MetaError(f"rsoil_meta.json: field '{which}_vars[{i}].name' must be one of {list(UNITS)}")
            if v.get("units") != UNITS[v["name"]]:
                raise MetaError(f"rsoil_meta.json: field '{which}_vars[{i}].units' for {v['name']} must be "
                                f"{UNITS[v['name']]!r}, got {v.get('units')!r}")
            names.append(v["name"])
    if meta["past_steps"] < 1 or not meta["past_vars"]:
        raise MetaError("rsoil_meta.json: field 'past_steps' must be >= 1 with non-empty 'past_vars'")
    if (meta["future_steps"] == 0) != (len(meta["future_vars"]) == 0):
        raise MetaError("rsoil_meta.json: field 'future_steps' must be 0 exactly when 'future_vars' is empty")
    out = meta["output"]
    if not isinstance(out, dict) or out.get("name") != "rsoil" or out.get("units") != "umol m-2 s-1":
        raise MetaError("rsoil_meta.json: field 'output' must be {'name': 'rsoil', 'units': 'umol m-2 s-1'}")
    _num(meta, "depth_m")
    for key in ("envelope", "physical_range"):
        env = meta[key]
        if not isinstance(env, dict):
            raise MetaError(f"rsoil_meta.json: field '{key}' must be an object")
        for n in set(names):
            e = env.get(n)
            if not isinstance(e, dict) or "min" not in e or "max" not in e:
                raise MetaError(f"rsoil_meta.json: field '{key}.{n}' must be {{'min': ..., 'max': ...}}")
            lo, hi = _num(e, "min", f"{key}.{n}.min"), _num(e, "max", f"{key}.{n}.max")
            if lo > hi:
                raise MetaError(f"rsoil_meta.json: field '{key}.{n}': min {lo} > max {hi}")
    fb = meta["fallback_q10"]
    if not isinstance(fb, dict) or fb.get("form") not in Q10_FORMS:
        raise MetaError(f"rsoil_meta.json: field 'fallback_q10.form' must be one of {list(Q10_FORMS)}")
    params = fb.get("params")
    if not isinstance(params, dict):
        raise MetaError("rsoil_meta.json: field 'fallback_q10.params' must be an object")
    for p in Q10_FORMS[fb["form"]]:
        if p not in params:
            raise MetaError(f"rsoil_meta.json: field 'fallback_q10.params.{p}' is missing "
                            f"(form {fb['form']!r})")
        _num(params, p, f"fallback_q10.params.{p}")
    if "tref_c" not in fb:
        raise MetaError("rsoil_meta.json: field 'fallback_q10.tref_c' is missing")
    _num(fb, "tref_c", "fallback_q10.tref_c")
    if fb.get("swc_units") not in ("m3 m-3", "percent"):
        raise MetaError("rsoil_meta.json: field 'fallback_q10.swc_units' must be 'm3 m-3' or 'percent'")
    for key, keys in (("training", ("sites", "periods", "n_train", "n_val", "seed")),
                      ("test_metrics", ("mse", "nse", "cc", "kge", "n"))):
        if not isinstance(meta[key], dict):
            raise MetaError(f"rsoil_meta.json: field '{key}' must be an object")
        for k in keys:
            if k not in meta[key]:
                raise MetaError(f"rsoil_meta.json: field '{key}.{k}' is missing")
    return meta


def check_module_var_names(module: torch.nn.Module, meta: dict) -> None:
    """The module names its inputs (DESIGN.md): where it carries ``past_var_names`` /
    ``future_var_names``, names and order must equal the metadata's ``past_vars`` / ``future_vars``
    (as the C++ core checks). A module without them (older files) is trusted on the metadata's order."""
    for which in ("past", "future"):
        names = getattr(module, f"{which}_var_names", None)
        if names is None:
            continue
        listed = [v.get("name") if isinstance(v, dict) else v for v in meta[f"{which}_vars"]]
        if list(names) != listed:
            raise MetaError(f"rsoil_meta.json: field '{which}_vars': metadata inconsistent with the module: "
                            f"the metadata lists {listed}, the module takes {list(names)} "
                            f"(module.{which}_var_names); names and order must match")


def _script(module: torch.nn.Module) -> torch.jit.ScriptModule:
    if isinstance(module, torch.jit.ScriptModule):
        return module
    module = module.eval()
    return torch.jit.script(module)


def export_model(module: torch.nn.Module, meta: dict, path: str | Path) -> dict:
    """Script ``module`` and write it with ``meta`` (completed and validated) to ``path``.

    Fills ``model_id`` (sha256 of the serialized module, first 16 hex), ``torch_version`` and
    ``rsoil_couple_version``, and ``schema``/``schema_version`` if absent. Returns the final meta.
    """
    scripted = _script(module)
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    meta = dict(meta)
    meta.setdefault("schema", SCHEMA)
    meta.setdefault("schema_version", SCHEMA_VERSION)
    meta["model_id"] = hashlib.sha256(buf.getvalue()).hexdigest()[:16]
    meta["torch_version"] = torch.__version__
    meta["rsoil_couple_version"] = __version__
    validate_meta(meta)
    check_module_var_names(scripted, meta)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(scripted, str(path), _extra_files={META_NAME: json.dumps(meta, indent=1)})
    return meta


def load_model(path: str | Path) -> tuple[torch.jit.ScriptModule, dict]:
    """Read a model file; returns ``(module, meta)``. Errors name the file and the bad field."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    extra = {META_NAME: ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except RuntimeError as exc:
        raise ValueError(f"{path}: not a TorchScript model file ({str(exc).splitlines()[0]})") from exc
    if not extra[META_NAME]:
        raise ValueError(f"{path}: {META_NAME} is missing from the model file")
    try:
        meta = json.loads(extra[META_NAME])
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: {META_NAME} is not valid JSON ({exc})") from exc
    try:
        validate_meta(meta)
        check_module_var_names(module, meta)
    except MetaError as exc:
        raise MetaError(f"{path}: {exc}") from exc
    return module.eval(), meta


def example_model(path: str | Path, kind: str = "lstm", past_hours: float = 24, future_hours: float = 24,
                  step_seconds: int = 1800, seed: int = 0) -> dict:
    """Train a SMALL model for a few seconds on the synthetic dryland site and export it to ``path``.

    For other parts' tests (C++ core, Fortran host, batch prediction): a real, honest model file —
    envelope from the training data, fallback Q10 fitted on the training data, test metrics measured
    — labelled as trained on SYNTHETIC data. ``future_hours`` is forced to 0 for ``unilstm``.
    Returns the metadata written. Deterministic for a given seed.
    """
    from .config import DataSection, ModelConfig, RunConfig, RunSection, SiteConfig, SplitSection, TrainSection
    from .train import synthetic_sites, train_run
    if kind == "unilstm":
        future_hours = 0
    cfg = RunConfig(
        data=DataSection(sites=[SiteConfig(path="synthetic")], past_hours=float(past_hours),
                         future_hours=float(future_hours), future_vars=["tsoil"] if future_hours else []),
        run=RunSection(name=f"example_{kind}", seed=seed),
        split=SplitSection(scenario="interpolation"),
        model=ModelConfig(kind=kind, hidden=16),
        train=TrainSection(epochs=3, batch_size=128, lr=3e-3, patience=3, max_train_samples=1500,
                           max_eval_samples=300, progress=False))
    res = train_run(cfg, synthetic_sites(step_seconds, days=40, seed=seed))
    return export_model(res.model, res.meta, path)
