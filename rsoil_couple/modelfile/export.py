"""Write and read the model file: TorchScript with an embedded ``rsoil_meta.json`` (docs/model_format.md).

``export_model`` scripts the module, fills ``model_id``, ``torch_version`` and ``rsoil_couple_version``,
validates the metadata and writes one file; ``load_model`` reads it back and validates it again.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..errors import MetaError
from ..pretrained import resolve
from . import schema
from .identity import check_identity, model_identity

META_NAME = "rsoil_meta.json"
SCHEMA = schema.SCHEMA_NAME
SCHEMA_VERSION = schema.SCHEMA_VERSION
#: Check ``meta`` against the schema; raise `MetaError` naming the bad field (rsoil_couple.modelfile.schema).
validate_meta = schema.validate_meta


def check_module_var_names(module: torch.nn.Module, meta: dict) -> None:
    """Refuse a module whose input names differ from the metadata's (the core checks the same).

    The module names its inputs (DESIGN.md): where it carries ``past_var_names`` /
    ``future_var_names``, names and order must equal the metadata's ``past_vars`` / ``future_vars``.
    A module without them (files written before) is trusted on the metadata's order.
    """
    for which in ("past", "future"):
        names = getattr(module, f"{which}_var_names", None)
        if names is None:
            continue
        listed = [v.get("name") if isinstance(v, dict) else v for v in meta[f"{which}_vars"]]
        if list(names) != listed:
            raise MetaError(f"rsoil_meta.json: {which}_vars: metadata inconsistent with the module: the "
                            f"metadata lists {listed}, the module takes {list(names)} "
                            f"(module.{which}_var_names); names and order must match")


def check_module_site_scale(module: torch.nn.Module, meta: dict) -> None:
    """Refuse a module whose ``site_scale`` buffer differs from the metadata's ``site_scale.value``.

    The buffer (float32, 0-d) multiplies the module's output (DESIGN.md "Site scale vs shared response");
    where the metadata has a ``site_scale`` record, the two must be equal as float32 (the core checks the
    same). A module with the buffer and no record is accepted (the record is optional).
    """
    rec = meta.get("site_scale")
    if rec is None:
        return
    where = "rsoil_meta.json: site_scale.value: "
    buf = getattr(module, "site_scale", None)
    if buf is None:
        raise MetaError(f"{where}the metadata gives {rec['value']!r} but the module has no site_scale buffer")
    if not isinstance(buf, torch.Tensor) or buf.dim() != 0 or buf.dtype != torch.float32:
        what = f"{buf.dtype} {list(buf.shape)}" if isinstance(buf, torch.Tensor) else type(buf).__name__
        raise MetaError(f"{where}module.site_scale is not a float32 0-d tensor ({what})")
    got = float(buf.item())
    if float(np.float32(rec["value"])) != got:
        raise MetaError(f"{where}metadata inconsistent with the module: the metadata gives {rec['value']!r}, the "
                        f"module's site_scale buffer holds {got!r} (equal as float32 required)")
#: The scripted methods of a streaming model besides ``forward`` (the streaming contract, docs/model_format.md).
STREAMING_METHODS = ("initial_state", "step", "run")


def check_streaming_module(module: torch.nn.Module, meta: dict) -> None:
    """Refuse a streaming model file whose module does not stream as its ``streaming`` record says.

    When the record is present the module must have ``initial_state``, ``step`` and ``run``, and a dry
    ``initial_state(2)`` + ``step(state, drivers)`` on 2 columns of envelope-midpoint drivers must give
    a float32 state ``[2, state_size]`` and Rsoil ``[2]`` (the C++ core checks the same at load).
    Raises `MetaError` naming the field; a file without the record is left alone.
    """
    rec = meta.get("streaming")
    if rec is None:
        return
    missing = [name for name in STREAMING_METHODS if not hasattr(module, name)]
    if missing:
        raise MetaError(f"rsoil_meta.json: streaming: metadata inconsistent with the module: the record is present "
                        f"but the module has no method {', '.join(missing)} (a streaming model has "
                        f"{', '.join(STREAMING_METHODS)})")
    nb, size = 2, int(rec["state_size"])
    env = meta["envelope"]
    mid = [0.5 * (env[v["name"]]["min"] + env[v["name"]]["max"]) for v in meta["past_vars"]]
    drivers = torch.tensor([mid] * nb, dtype=torch.float32)
    what = f"initial_state({nb})"
    try:
        with torch.no_grad():
            state = module.initial_state(nb)
            problem = _tensor_problem(state, (nb, size), True)
            if not problem:
                what = f"step(state [{nb}, {size}], drivers [{nb}, {len(mid)}])"
                rsoil, new = module.step(state, drivers)
                problem = _tensor_problem(rsoil, (nb,), False) or _tensor_problem(new, (nb, size), True)
    except (RuntimeError, TypeError, ValueError) as exc:  # a TorchScript error, or step not returning 2 values
        problem = f"failed: {str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}"
    if problem:
        raise MetaError(f"rsoil_meta.json: streaming: metadata inconsistent with the module: {what} {problem}")


def _tensor_problem(x, shape: tuple, state: bool) -> str:
    """'' if ``x`` is a floating tensor of ``shape`` (float32 for a state), else what is wrong."""
    want = f"[{', '.join(map(str, shape))}]" + (" float32" if state else " floating point")
    if not isinstance(x, torch.Tensor):
        return f"returned {type(x).__name__}, expected a tensor {want}"
    ok = tuple(x.shape) == shape and (x.dtype == torch.float32 if state else x.is_floating_point())
    return "" if ok else f"returned {list(x.shape)} {str(x.dtype).replace('torch.', '')}, expected {want}"


class _SortedSet(set):
    """A set that iterates in sorted order (falls back to the set's own order for unsortable members)."""

    def __iter__(self):
        try:
            return iter(sorted(set.__iter__(self)))
        except TypeError:
            return set.__iter__(self)


def script(module: torch.nn.Module) -> torch.jit.ScriptModule:
    """``torch.jit.script(module)`` whose generated code does not depend on the Python hash seed.

    torch 2.13 collects a module's ``__constants__`` (nn.Linear's ``in_features``, nn.LSTM's sizes) in a
    ``set`` and emits them in its iteration order, which changes from process to process
    (``PYTHONHASHSEED``): the same weights then gave files whose code, and so ``model_id``, differed run to
    run. While scripting, that module's ``set`` iterates sorted.
    """
    from torch.jit import _recursive
    had = "set" in vars(_recursive)
    old = vars(_recursive).get("set")
    _recursive.set = _SortedSet
    try:
        return torch.jit.script(module)
    finally:
        if had:
            _recursive.set = old
        else:
            del _recursive.set


def _script(module: torch.nn.Module) -> torch.jit.ScriptModule:
    if isinstance(module, torch.jit.ScriptModule):
        return module
    return script(module.eval())


def export_model(module: torch.nn.Module, meta: dict, path: str | Path) -> dict:
    """Script ``module`` and write it with ``meta`` (completed and validated) to ``path``.

    Fills ``model_id`` (the model identity of rsoil_couple.modelfile.identity, first 16 hex),
    ``schema_version`` (2), ``torch_version`` and ``rsoil_couple_version``, and ``schema`` if absent;
    ``streaming`` from ``module.streaming_meta()`` when the module has that (Python, torch.jit.ignore'd)
    method, and then checks that the module streams (`check_streaming_module`).
    Returns the final meta.
    """
    streaming_meta = getattr(module, "streaming_meta", None)  # a Python (torch.jit.ignore'd) method
    scripted = _script(module)
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    meta = dict(meta)
    if callable(streaming_meta):
        meta["streaming"] = streaming_meta()
    meta.setdefault("schema", SCHEMA)
    meta["schema_version"] = SCHEMA_VERSION  # the identity below is the one of this version
    meta["model_id"] = model_identity(buf.getvalue())[:16]
    meta["torch_version"] = torch.__version__
    meta["rsoil_couple_version"] = __version__
    validate_meta(meta)
    check_module_var_names(scripted, meta)
    check_module_site_scale(scripted, meta)
    check_streaming_module(scripted, meta)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(scripted, str(path), _extra_files={META_NAME: json.dumps(meta, indent=1, allow_nan=False)})
    check_identity(path, meta)  # torch wrote the same module bytes as into buf
    return meta


def read_meta(path: str | Path) -> dict:
    """The validated metadata of a model file without loading its module (a zip read; cheap).

    The module itself (and the ``model_id`` check against it) is `load_model`'s; use this where only the
    metadata decides what to do (e.g. whether the file is a streaming model). ``path`` may be the name
    of a pretrained model (`rsoil_couple.pretrained.resolve`).
    """
    import zipfile

    path = Path(resolve(path))   # a pretrained model's name, as load_model
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.split("/", 1)[-1] == f"extra/{META_NAME}"]
            if not names:
                raise ValueError(f"{path}: {META_NAME} is missing from the model file")
            text = z.read(names[0])
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path}: not a TorchScript model file ({exc})") from None
    try:
        return schema.parse_meta_text(text)
    except MetaError as exc:
        raise MetaError(f"{path}: {exc}") from None


def load_model(path: str | Path) -> tuple[torch.jit.ScriptModule, dict]:
    """Read a model file; returns ``(module, meta)``. Errors name the file and the bad field.

    ``path`` may be the name of a pretrained model (``drylands-v1``, `rsoil_couple.pretrained.resolve`).
    The metadata is validated (rsoil_couple.modelfile.schema) and, from schema version 2, its
    ``model_id`` is checked against the module in the file (rsoil_couple.modelfile.identity); a
    streaming file's module is dry-run (`check_streaming_module`).
    A model file is code (TorchScript): load only files you trust.
    """
    path = resolve(path)
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
        meta = schema.parse_meta_text(extra[META_NAME])
        check_identity(path, meta)
        check_module_var_names(module, meta)
        check_module_site_scale(module, meta)
        check_streaming_module(module, meta)
    except MetaError as exc:
        raise MetaError(f"{path}: {exc}") from None
    return module.eval(), meta
