"""Pretrained model files by name: ``drylands-v1`` instead of a path (docs/predict.md, docs/fortran.md).

A *bare name* (no ``/``, not ending in ``.pt``) that names no existing file is looked up as
``<dir>/<name>.pt`` in the folders of the environment variable ``RSOIL_MODEL_PATH`` (``:``-separated, in
order), then in this package folder, where the project's pretrained files ship (the wheel and a CMake
install both put them in ``rsoil_couple/pretrained/``). Anything else is a path and is returned as given.
The C API applies the same rule to its ``model_path`` argument (csrc/model_path.cpp, looking in
``<folder of librsoil_core.so>/../pretrained``, which is this folder), so Python, C and Fortran hosts open
the same file for the same name. This module imports nothing of the package (the lowest layer).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV", "PACKAGE_DIR", "SUFFIX", "available", "directories", "is_bare_name", "resolve"]

#: Environment variable: folders searched first, ``:``-separated.
ENV = "RSOIL_MODEL_PATH"
#: The folder of the shipped pretrained files (this package's folder).
PACKAGE_DIR = Path(__file__).resolve().parent
#: File name suffix of a model file.
SUFFIX = ".pt"


def is_bare_name(name_or_path: str | os.PathLike) -> bool:
    """True for a model name to look up: non-empty, no ``/``, not ending in ``.pt`` (csrc: is_bare_name)."""
    s = os.fspath(name_or_path)
    return bool(s) and "/" not in s and not s.endswith(SUFFIX)


def directories() -> list[tuple[Path, str]]:
    """The folders a bare name is looked up in, in order, each with where it comes from.

    Returns
    -------
    list of (Path, str)
        The non-empty entries of ``RSOIL_MODEL_PATH`` (labelled ``"RSOIL_MODEL_PATH"``; relative ones
        are relative to the working directory), then `PACKAGE_DIR` (labelled ``"installed models"``).
    """
    env = [(Path(d), ENV) for d in os.environ.get(ENV, "").split(":") if d]
    return env + [(PACKAGE_DIR, "installed models")]


def available() -> list[str]:
    """Names of the model files found in `directories` (sorted; a name in several folders listed once)."""
    names = set()
    for d, _ in directories():
        if d.is_dir():
            names.update(p.name[:-len(SUFFIX)] for p in d.glob(f"*{SUFFIX}") if p.is_file())
    return sorted(names)


def resolve(name_or_path: str | os.PathLike) -> Path:
    """The model file for ``name_or_path``: a path as given, or a bare name looked up in `directories`.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        A model file path, or the name of a pretrained model (``drylands-v1``).

    Returns
    -------
    Path
        ``name_or_path`` itself when it is an existing file or not a bare name (`is_bare_name`; a
        missing path is reported by whoever opens it); else the first ``<dir>/<name>.pt`` that exists.

    Raises
    ------
    FileNotFoundError
        For a bare name found nowhere: the message lists the folders looked in and the available names.
    """
    p = Path(name_or_path)
    if p.is_file() or not is_bare_name(name_or_path):
        return p
    name = os.fspath(name_or_path)
    dirs = directories()
    for d, _ in dirs:
        f = d / f"{name}{SUFFIX}"
        if f.is_file():
            return f
    names = available()
    raise FileNotFoundError(
        f"model {name!r}: no such file, and no pretrained model of that name: looked for {name}{SUFFIX} in "
        + ", ".join(f"{d} ({why})" for d, why in dirs)
        + f"; available names: {', '.join(names) if names else '(none)'}")
