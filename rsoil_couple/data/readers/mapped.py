"""Reader of any CSV with an explicit column mapping ``{var: (column, units)}``."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import xarray as xr

from ...errors import DataError
from ...variables import CANONICAL_VARS
from ..canonical import _build
from ..timeaxis import _parse_time, _regular_step
from ._csv import _fields_from, _need, _read_csv


def _check_mapping(mapping: Mapping, path: Path) -> dict[str, tuple[str, str]]:
    out = {}
    for var, spec in mapping.items():
        if var == "time":
            continue
        if var not in CANONICAL_VARS:
            raise DataError(f"{path}: mapping key '{var}' is not a canonical variable; expected "
                            f"some of {sorted(CANONICAL_VARS)}")
        if not (isinstance(spec, (tuple, list)) and len(spec) == 2):
            raise DataError(f"{path}: mapping['{var}'] must be (column, units), got {spec!r}")
        out[var] = (str(spec[0]), str(spec[1]))
    return out


def read_csv_mapped(path: str | Path, mapping: Mapping[str, tuple[str, str]], *,
                    site: str | None = None, depth_m: float = float("nan"),
                    variables: Sequence[str] | None = None) -> xr.Dataset:
    """Read any CSV through an explicit `mapping` {canonical_name: (column, units)}.

    ``mapping["time"] = (column, "end" | "start")`` names the timestamp column and whether it
    marks the END (canonical) or the START of each step (shifted by one step to the END). ISO
    dates and YYYYMMDDHHMM numbers are understood. Empty cells, ``NA`` and ``-9999`` are missing.
    Every other key is a canonical variable (`CANONICAL_VARS`) whose values are converted from
    the given units. ``variables``: as `read_site`.
    """
    path = Path(path)
    if "time" not in mapping:
        raise DataError(f"{path}: mapping has no 'time' entry; expected "
                        "mapping['time'] = (column, 'end' | 'start')")
    tcol, anchor = mapping["time"]
    if anchor not in ("end", "start"):
        raise DataError(f"{path}: mapping['time'] anchor '{anchor}'; expected 'end' or 'start'")
    df = _read_csv(path)
    _need(df, path, [tcol], "timestamps")
    raw = df[tcol]
    fmt = "%Y%m%d%H%M" if raw.astype(str).str.fullmatch(r"\d{12}").all() else None
    t = _parse_time(raw, f"{path}: column '{tcol}'", fmt, df.attrs["lines"])
    if anchor == "start":
        t = t + _regular_step(t, f"{path}: column '{tcol}'")
    fields = _fields_from(df, path, _check_mapping(mapping, path), None, variables=variables)
    return _build(t, [site or path.stem], fields, path=path, site=site or path.stem,
                  depth_m=depth_m, attrs={"format": "CSV with explicit column mapping"},
                  time_source=tcol)
