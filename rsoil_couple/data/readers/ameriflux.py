"""Reader of AmeriFlux BASE half-hourly CSV files."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from ...errors import DataError
from ..canonical import _build
from ..timeaxis import _parse_time
from ._csv import _fields_from, _need, _read_csv
from .mapped import _check_mapping

# AmeriFlux BASE: variable -> (column prefix, units fixed by the AmeriFlux conventions).
_AMF_VARS = {"tsoil": ("TS", "degC"), "swc": ("SWC", "%"), "precip": ("P", "mm"),
             "tair": ("TA", "degC"), "rg": ("SW_IN", "W m-2"), "ppfd": ("PPFD_IN", "umol m-2 s-1")}


def _amf_column(cols: Sequence[str], prefix: str) -> str | None:
    """The shallowest plain column of an AmeriFlux variable. Qualifiers: ``TS`` (none),
    ``TS_<n>`` (layer n, averaged over positions), ``TS_<h>_<v>_<r>`` (horizontal position,
    vertical index — 1 is shallowest —, replicate). Preference: ``TS``, ``TS_1``, ``TS_2`` ...,
    then ``TS_<h>_<v>_<r>`` by (v, h, r). Gap-filled ``_F`` / ``_PI`` variants never match.
    """
    pat = re.compile(rf"^{re.escape(prefix)}((?:_\d+){{0,3}})$")
    ranked = []
    for c in cols:
        m = pat.match(c)
        if not m:
            continue
        q = [int(x) for x in m.group(1).split("_") if x]
        if len(q) == 3:
            h, v, r = q
            ranked.append(((1, v, h, r), c))
        elif len(q) <= 1:
            ranked.append(((0, q[0] if q else 0, 0, 0), c))
    return min(ranked)[1] if ranked else None


def read_ameriflux_base(path: str | Path, *, mapping: Mapping[str, tuple[str, str]] | None = None,
                        site: str | None = None, units: Mapping[str, str] | None = None,
                        depth_m: float = float("nan"), variables: Sequence[str] | None = None
                        ) -> xr.Dataset:
    """Read an AmeriFlux BASE half-hourly (or hourly) CSV.

    ``TIMESTAMP_START``/``TIMESTAMP_END`` are YYYYMMDDHHMM, ``-9999`` is missing; ``TS_*`` [degC],
    ``SWC_*`` [%], ``P`` [mm per step], ``TA`` [degC], ``SW_IN`` [W m-2], ``PPFD_IN``
    [umol m-2 s-1]. For each variable the shallowest plain column is used (``TS_1`` or
    ``TS_1_1_1`` ...; gap-filled ``_F`` columns are not observations and are not used);
    `mapping` {var: (column, units)} picks other columns or adds ``rsoil``, which BASE files do
    not have. BASE files do not state sensor depths: give `depth_m` [m]. ``variables``: as `read_site`.
    """
    path = Path(path)
    df = _read_csv(path)
    _need(df, path, ["TIMESTAMP_START", "TIMESTAMP_END"], "YYYYMMDDHHMM timestamps")
    spec = {}
    for var, (prefix, u) in _AMF_VARS.items():
        col = _amf_column(df.columns, prefix)
        if col is not None:
            spec[var] = (col, u)
    spec.update(_check_mapping(mapping or {}, path))
    if "tsoil" not in spec:
        raise DataError(f"{path}: no soil temperature column TS, TS_<n> or TS_<h>_<v>_<r> "
                        f"[degC]; columns present: {list(df.columns)[:30]}")
    fields = _fields_from(df, path, spec, units, variables=variables)
    t0 = _parse_time(df["TIMESTAMP_START"], f"{path}: column 'TIMESTAMP_START'", "%Y%m%d%H%M",
                     df.attrs["lines"])
    t = _parse_time(df["TIMESTAMP_END"], f"{path}: column 'TIMESTAMP_END'", "%Y%m%d%H%M",
                    df.attrs["lines"])
    d = np.unique(t.asi8 - t0.asi8)
    if len(d) != 1 or d[0] <= 0:
        raise DataError(f"{path}: column 'TIMESTAMP_END' minus 'TIMESTAMP_START' is not one "
                        "constant positive step; expected e.g. 30 min on every row")
    if site is None:
        m = re.match(r"^(?:AMF_)?([A-Z]{2}-[A-Za-z0-9]{3})", path.name)
        site = m.group(1) if m else path.stem
    return _build(t, [site], fields, path=path, site=site, depth_m=depth_m,
                  expected_step_seconds=int(d[0] // 1_000_000_000),
                  attrs={"format": "AmeriFlux BASE"}, time_source="TIMESTAMP_END")
