"""Reader of COSORE site files (Bond-Lamberty et al. 2020) as laid out in ``../shared/data/cosore``."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

import xarray as xr

from ..canonical import _build
from ..timeaxis import _parse_time
from ._csv import _fields_from, _need, _read_csv

_COSORE_COLUMNS = {"rsoil": ("Rs_umol_m2_s", "umol m-2 s-1"), "tsoil": ("CSR_T5", "degC"),
                   "swc": ("CSR_SM5", "m3 m-3")}


def read_cosore(path: str | Path, *, site: str | None = None,
                units: Mapping[str, str] | None = None,
                variables: Sequence[str] | None = None) -> xr.Dataset:
    """Read a COSORE site CSV as prepared in ``shared/data/cosore`` (ports averaged on a grid).

    Columns: ``TIMESTAMP_END_LST``, ``Rs_umol_m2_s`` [umol m-2 s-1], ``CSR_T5`` [degC, 5 cm],
    ``CSR_SM5`` [m3 m-3, 5 cm]. COSORE has no precipitation: ``precip`` is absent. The site id
    is taken from the file name (``US-Wkg_60min.csv`` -> ``US-Wkg``) unless `site` is given.
    Soil-temperature spikes (e.g. US-SRM's 54-66 degC readings at noon in March 2017) and
    negative fluxes (ES-Agu) are flagged and counted, see docs/data.md. ``variables``: as `read_site`.
    """
    path = Path(path)
    df = _read_csv(path)
    _need(df, path, ["TIMESTAMP_END_LST"], "END-of-interval timestamps, local standard time")
    fields = _fields_from(df, path, _COSORE_COLUMNS, units, variables=variables)
    t = _parse_time(df["TIMESTAMP_END_LST"], f"{path}: column 'TIMESTAMP_END_LST'",
                    "%Y-%m-%d %H:%M:%S", df.attrs["lines"])
    site = site or re.sub(r"_\d+min$", "", path.stem)
    return _build(t, [site], fields, path=path, site=site, depth_m=0.05,
                  attrs={"database": "COSORE (Bond-Lamberty et al. 2020, doi 10.1111/gcb.15353)"},
                  time_source="TIMESTAMP_END_LST")
