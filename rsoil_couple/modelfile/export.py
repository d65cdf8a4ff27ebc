"""Write and read the model file: TorchScript with an embedded ``rsoil_meta.json`` (docs/model_format.md).

``export_model`` scripts the module, fills ``model_id``, ``torch_version`` and ``rsoil_couple_version``,
validates the metadata and writes one file; ``load_model`` reads it back and validates it again.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from .. import __version__
from ..errors import MetaError
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


def _script(module: torch.nn.Module) -> torch.jit.ScriptModule:
    if isinstance(module, torch.jit.ScriptModule):
        return module
    module = module.eval()
    return torch.jit.script(module)


def export_model(module: torch.nn.Module, meta: dict, path: str | Path) -> dict:
    """Script ``module`` and write it with ``meta`` (completed and validated) to ``path``.

    Fills ``model_id`` (the model identity of rsoil_couple.modelfile.identity, first 16 hex),
    ``schema_version`` (2), ``torch_version`` and ``rsoil_couple_version``, and ``schema`` if absent.
    Returns the final meta.
    """
    scripted = _script(module)
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    meta = dict(meta)
    meta.setdefault("schema", SCHEMA)
    meta["schema_version"] = SCHEMA_VERSION  # the identity below is the one of this version
    meta["model_id"] = model_identity(buf.getvalue())[:16]
    meta["torch_version"] = torch.__version__
    meta["rsoil_couple_version"] = __version__
    validate_meta(meta)
    check_module_var_names(scripted, meta)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(scripted, str(path), _extra_files={META_NAME: json.dumps(meta, indent=1, allow_nan=False)})
    check_identity(path, meta)  # torch wrote the same module bytes as into buf
    return meta


def read_meta(path: str | Path) -> dict:
    """The validated metadata of a model file without loading its module (a zip read; cheap).

    The module itself (and the ``model_id`` check against it) is `load_model`'s; use this where only the
    metadata decides what to do (e.g. whether the file is a streaming model).
    """
    import zipfile

    path = Path(path)
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

    The metadata is validated (rsoil_couple.modelfile.schema) and, from schema version 2, its
    ``model_id`` is checked against the module in the file (rsoil_couple.modelfile.identity).
    A model file is code (TorchScript): load only files you trust.
    """
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
        meta = schema.parse_meta_text(extra[META_NAME])
        check_identity(path, meta)
        check_module_var_names(module, meta)
    except MetaError as exc:
        raise MetaError(f"{path}: {exc}") from None
    return module.eval(), meta
