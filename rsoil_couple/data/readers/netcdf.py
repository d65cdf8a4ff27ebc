"""Reader of canonical NetCDF files (as `write_canonical` writes them)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from ...errors import DataError
from ...variables import CANONICAL_VARS, DRIVERS
from ..canonical import _build, _Field
from ..timeaxis import _ns


def read_canonical_netcdf(path: str | Path, *, units: Mapping[str, str] | None = None,
                          variables: Sequence[str] | None = None) -> xr.Dataset:
    """Read a canonical NetCDF (as `write_canonical` writes it, or any file with the same
    variable names and dims ``time``/``column``); units are converted from each variable's
    ``units`` attribute, and the whole Dataset is re-validated. ``variables``: as `read_site`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        src = xr.load_dataset(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable NetCDF file ({exc})") from None
    if "tsoil" not in src.data_vars:
        hint = (" (this looks like a CLM history file: it has TSOI but no carbon fluxes)"
                if "TSOI" in src.data_vars else "")
        raise DataError(f"{path}: variable 'tsoil' not found{hint}; a canonical file has "
                        f"{list(DRIVERS) + ['rsoil']} on dims (time, column)")
    for dim in ("time", "column"):
        if dim not in src.dims:
            raise DataError(f"{path}: dimension '{dim}' not found; dims are {tuple(src.dims)}")
    if not np.issubdtype(src["time"].dtype, np.datetime64):
        raise DataError(f"{path}: variable 'time' is not a CF time coordinate "
                        "(expected units like 'minutes since 1970-01-01')")
    units = dict(units or {})
    fields = {}
    for var in CANONICAL_VARS:
        if var not in src.data_vars or (variables is not None and var not in variables
                                        and var != "tsoil"):
            continue
        da = src[var]
        if set(da.dims) != {"time", "column"}:
            raise DataError(f"{path}: variable '{var}' has dims {da.dims}; expected "
                            "('time', 'column')")
        u = units.get(var, da.attrs.get("units"))
        if u is None:
            raise DataError(f"{path}: variable '{var}' has no 'units' attribute; expected "
                            f"{CANONICAL_VARS[var].units}")
        fields[var] = _Field(da.transpose("time", "column").values, str(u), var)
    qc = src["qc"].transpose("time", "column").values if "qc" in src.data_vars else None
    keep = {k: v for k, v in src.attrs.items() if not k.startswith("n_")
            and k not in ("Conventions", "step_seconds", "depth_m")}
    depth = (src["depth"].values if "depth" in src.coords
             else src.attrs.get("depth_m", float("nan")))
    cols = [str(c) for c in src["column"].values]
    ds = _build(_ns(src["time"].values), cols, fields, path=path,
                site=str(src.attrs.get("site", path.stem)), depth_m=depth, extra_qc=qc,
                attrs=keep)
    ds.attrs["source"] = str(src.attrs.get("source", path.name))
    if "rsoil_n" in src.data_vars and "rsoil" in ds.data_vars:   # a resampled Dataset's counts
        n = src["rsoil_n"].transpose("time", "column").reindex(time=ds["time"].values, fill_value=0)
        ds["rsoil_n"] = (("time", "column"), n.values.astype(np.int16), dict(src["rsoil_n"].attrs))
    # values removed when the file was first read are NaN now: keep those counts
    for k, v in src.attrs.items():
        if k == "n_rsoil_partial" or re.fullmatch(r"n_\w+_(out_of_range|spike)_removed", k):
            ds.attrs[k] = int(v) + int(ds.attrs.get(k, 0))
    return ds
