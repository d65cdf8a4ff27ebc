"""Running the CLM-like Fortran host (fortran_shim/host) from Python: its executable and its namelist."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["host_executable", "write_namelist"]


def host_executable() -> Path:
    """The host installed with the package (``rsoil_couple/bin/clm_like_host``), or ``$RSOIL_HOST``."""
    env = os.environ.get("RSOIL_HOST")
    path = Path(env) if env else Path(__file__).resolve().parents[1] / "bin" / "clm_like_host"
    if not path.is_file():
        raise FileNotFoundError(f"CLM-like host executable not found at {path}: install the package "
                                "with gfortran and netCDF-Fortran present, or set RSOIL_HOST")
    return path


def _fortran_value(v) -> str:
    if isinstance(v, bool):
        return ".true." if v else ".false."
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def write_namelist(path: str | os.PathLike, **values) -> Path:
    """Write the host's namelist group ``&rsoil_host`` (docs/fortran.md lists the keys) with `values`
    (str, bool, int, float) to `path`; returns the path."""
    lines = ["&rsoil_host"] + [f"  {k} = {_fortran_value(v)}" for k, v in values.items()] + ["/", ""]
    path = Path(path)
    path.write_text("\n".join(lines))
    return path
