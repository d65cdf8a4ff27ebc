"""The model identity: a sha256 of a model file's module, recomputable from the file by Python and the
C++ core.

A TorchScript file is a zip archive ``<name>/...``. The identity hashes every entry except
``extra/rsoil_meta.json`` (the metadata, which carries the identity) and ``.data/serialization_id``
(torch's hash of all entries, the metadata included), in sorted entry-name order (the ``<name>/``
folder, which torch takes from the file name, left out), each as ``len(name)`` (8 bytes little-
endian), name (UTF-8), ``len(data)`` (8 bytes little-endian), data. ``model_id`` is its first 16 hex
digits (schema version 2; docs/model_format.md). ``csrc/model_identity.cpp`` computes the same with
torch's own archive reader.
"""
from __future__ import annotations

import hashlib
import io
import struct
import zipfile
from pathlib import Path

from ..errors import MetaError

__all__ = ["EXCLUDED", "check_identity", "model_identity"]

#: Entries left out of the identity.
EXCLUDED = ("extra/rsoil_meta.json", ".data/serialization_id")


def model_identity(source: str | Path | bytes) -> str:
    """The full identity (64 hex digits) of a model file, given as a path or as its bytes."""
    raw = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        with zipfile.ZipFile(raw) as z:
            infos = z.infolist()
            if not infos:
                raise MetaError("model_id: the archive is empty")
            prefix = infos[0].filename.split("/", 1)[0] + "/"  # as torch's reader: the first entry's folder
            names = []
            for info in infos:
                if not info.filename.startswith(prefix):
                    raise MetaError(f"model_id: archive entry {info.filename!r} is outside {prefix!r}")
                names.append(info.filename[len(prefix):])
            dup = sorted(n for n in set(names) if names.count(n) > 1)
            if dup:
                raise MetaError(f"model_id: the archive holds entry {dup[0]!r} twice; its identity is ambiguous")
            h = hashlib.sha256()
            for name in sorted(names, key=lambda n: n.encode()):
                if name in EXCLUDED:
                    continue
                data = z.read(prefix + name)
                key = name.encode()
                h.update(struct.pack("<Q", len(key)) + key + struct.pack("<Q", len(data)))
                h.update(data)
            return h.hexdigest()
    except zipfile.BadZipFile as exc:
        raise MetaError(f"model_id: cannot read the archive to compute the model identity ({exc})") from None


def check_identity(source: str | Path | bytes, meta: dict) -> None:
    """Refuse (`MetaError` naming both ids) a file whose module does not hash to its ``model_id``.

    Schema version 1 ids hashed a different save of the module (into memory, without the metadata, with
    its own serialization id); they cannot be recomputed from the file and are not checked
    (docs/model_format.md).
    """
    if meta["schema_version"] < 2:
        return
    got = model_identity(source)[:16]
    if got != meta["model_id"]:
        raise MetaError(f"rsoil_meta.json: model_id: the metadata says {meta['model_id']} but the module in "
                        f"this file has identity {got} (module swapped inside the file, or metadata copied "
                        "from another model file)")
