"""Running the CLM-like Fortran host (fortran_shim/host) from Python: its executable and its namelist."""
from __future__ import annotations

import os
from pathlib import Path

import f90nml

__all__ = ["host_executable", "write_namelist"]


def host_executable() -> Path:
    """The host installed with the package (``rsoil_couple/bin/clm_like_host``), or ``$RSOIL_HOST``."""
    env = os.environ.get("RSOIL_HOST")
    path = Path(env) if env else Path(__file__).resolve().parents[1] / "bin" / "clm_like_host"
    if not path.is_file():
        raise FileNotFoundError(f"CLM-like host executable not found at {path}: install the package "
                                "with gfortran and netCDF-Fortran present, or set RSOIL_HOST")
    return path


def write_namelist(path: str | os.PathLike, **values) -> Path:
    """Write the host's namelist group ``&rsoil_host`` (docs/fortran.md lists the keys) to `path`.

    Parameters
    ----------
    path : path
        The namelist file to write (overwritten).
    **values : str, bool, int, float or a list of them
        One entry per key; written by `f90nml`
        (lists as Fortran arrays, strings quoted, logicals as ``.true.``/``.false.``).

    Returns
    -------
    Path  `path`.
    """
    path = Path(path)
    nml = f90nml.Namelist({"rsoil_host": {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()}})
    nml.float_format = ".17g"  # round-trips every float64 exactly
    nml.write(str(path), force=True)
    return path
