"""One reader per file format; `read_site` detects the format and dispatches."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Mapping, Sequence

import xarray as xr

from ...errors import DataError
from ..sites import SITES, registered, site_path
from ._csv import _header_line, open_text
from .ameriflux import read_ameriflux_base
from .cosore import read_cosore
from .mapped import read_csv_mapped
from .netcdf import read_canonical_netcdf
from .us_bi1 import read_us_bi1
from .us_hn1 import HN1_RSOIL_COLUMNS, read_us_hn1

__all__ = ["read_site", "read_us_hn1", "read_us_bi1", "read_cosore", "read_ameriflux_base",
           "read_csv_mapped", "read_canonical_netcdf", "HN1_RSOIL_COLUMNS"]


# --------------------------------------------------------------------------------------------
# Autodetection
# --------------------------------------------------------------------------------------------
def _header(path: Path) -> list[str]:
    try:
        with open_text(path) as fh:
            text = [line.rstrip("\r\n") for line in itertools.islice(fh, 10_000)]
    except (OSError, EOFError) as exc:   # a broken .gz
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    return _header_line(path, text)[1]


def read_site(path: str | Path, *, mapping: Mapping[str, tuple[str, str]] | None = None,
              site: str | None = None, units: Mapping[str, str] | None = None,
              variables: Sequence[str] | None = None) -> xr.Dataset:
    """Read any supported file into the canonical Dataset, detecting its format.

    Parameters
    ----------
    path : path
        A file, or a key of `SITES` (e.g. ``"US-Hn1_2019"``).
    mapping : dict
        {canonical_name: (column, units)} plus ``"time": (column, "end"|"start")``
        for a generic CSV (with an AmeriFlux BASE file it picks or adds columns).
    site : str
        Site / column id (default: from the file).
    units : dict
        {canonical_name: units} overriding what a known format assumes.
    variables : list
        Canonical variables to read (default: all the file has; ``tsoil`` always). The columns of
        other variables are not read, so a fault in them (a junk value in a flag column batch
        prediction does not use) cannot fail the read.

    A registered file (by key, or by a path ending in its registered relative path) is read with
    the reader options of its `SITES` entry: SCI-Embudo's 4 cm soil drivers, ES-Agu's ancillary
    precipitation.

    Formats: US-Hn1 (``TS_15cm``...), US-Bi1 (``TS_F_MDS_4``...), COSORE (``TIMESTAMP_END_LST``,
    ``Rs_umol_m2_s``), AmeriFlux BASE (``TIMESTAMP_START``/``TIMESTAMP_END``), canonical NetCDF
    (``.nc``), any CSV with `mapping`.
    """
    if isinstance(path, str) and path in SITES:
        path = site_path(path)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    key = registered(path)
    options = dict(SITES[key].options) if key is not None and mapping is None else {}
    if path.suffix.lower() in (".nc", ".nc4", ".netcdf"):
        if mapping:
            raise DataError(f"{path}: a column mapping applies to CSV files only")
        return read_canonical_netcdf(path, units=units, variables=variables)
    cols = set(_header(path))
    if mapping is not None and "time" in mapping:
        if units:
            raise DataError(f"{path}: give units inside the mapping ({{var: (column, units)}}), "
                            "not as units=")
        return read_csv_mapped(path, mapping, site=site, variables=variables)
    if {"TIMESTAMP_START", "TIMESTAMP_END"} <= cols:
        return read_ameriflux_base(path, mapping=mapping, site=site, units=units,
                                   variables=variables)
    if mapping:
        raise DataError(f"{path}: mapping given without a 'time' entry; expected "
                        "mapping['time'] = (column, 'end' | 'start')")
    if {"TIMESTAMP_END", "TS_15cm"} <= cols:
        return read_us_hn1(path, site=site, units=units, variables=variables)
    if {"TIMESTAMP_END", "TS_F_MDS_4"} <= cols:
        return read_us_bi1(path, site=site, units=units, variables=variables)
    if {"TIMESTAMP_END_LST", "Rs_umol_m2_s"} <= cols:
        return read_cosore(path, site=site, units=units, variables=variables, **options)
    raise DataError(
        f"{path}: unrecognised format (columns {sorted(cols)[:20]}); known: US-Hn1 "
        "(TIMESTAMP_END, TS_15cm, SWC_15cm, P_mm), US-Bi1 (TS_F_MDS_4), COSORE "
        "(TIMESTAMP_END_LST, Rs_umol_m2_s), AmeriFlux BASE (TIMESTAMP_START, TIMESTAMP_END), "
        "canonical NetCDF (.nc); otherwise pass mapping={'time': (column, 'end'), "
        "'tsoil': (column, units), ...}")
