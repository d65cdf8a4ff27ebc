"""Reader of the US-Hn1 CSV files (the site of Jiang et al. 2022)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from ...errors import DataError
from ..canonical import _bit, _build
from ..timeaxis import _parse_time
from ._csv import _fields_from, _line, _need, _numeric, _read_csv

# --------------------------------------------------------------------------------------------
# The specific readers
# --------------------------------------------------------------------------------------------
_HN1_COLUMNS = {"tsoil": ("TS_15cm", "degC"), "swc": ("SWC_15cm", "m3 m-3"),
                "precip": ("P_mm", "mm"), "tair": ("Tair", "degC"), "rg": ("Rg", "W m-2")}
HN1_RSOIL_COLUMNS = ("Rsoil_chamber_raw30", "Rsoil")


def read_us_hn1(path: str | Path, *, site: str | None = None, units: Mapping[str, str] | None = None,
                rsoil_column: str = "Rsoil_chamber_raw30",
                variables: Sequence[str] | None = None) -> xr.Dataset:
    """Read a US-Hn1 CSV (``US-Hn1_2019_30min.csv`` or the forcing-only 2016-2017 file).

    Parameters
    ----------
    path : path
        The CSV file (``TIMESTAMP_END``, ``TS_15cm`` [degC], ``SWC_15cm`` [m3 m-3],
        ``P_mm`` [mm per 30 min], ``Tair`` [degC], ``Rg`` [W m-2] and, in the 2019 file, the
        chamber columns).
    site : str
        Column id and site name (default ``"US-Hn1"``).
    units : dict
        Override the units of a variable ({var: units}).
    rsoil_column : str
        ``"Rsoil_chamber_raw30"`` (default: the chamber's 30-min mean at the
        interval's END) or ``"Rsoil"`` (the file's gap-filled series, which is shifted one step
        earlier than its own flag and the raw mean, see docs/data.md).
    variables : canonical variables to read (default: all the file has); the columns of others are
        not read, so their faults do not matter (batch prediction reads only the model's drivers).

    Returns
    -------
    Dataset  Canonical; ``rsoil`` [umol m-2 s-1] only for the 2019 file. Rows with
    ``Rsoil_gapfilled_flag == 1`` are not observations: rsoil is NaN there and flagged
    ``rsoil_gapfilled_removed`` (55 rows in the 2019 file).
    """
    path = Path(path)
    df = _read_csv(path)
    _need(df, path, ["TIMESTAMP_END"], "END-of-interval timestamps")
    spec = dict(_HN1_COLUMNS)
    has_rsoil = ("Rsoil" in df.columns or "Rsoil_chamber_raw30" in df.columns) and (
        variables is None or "rsoil" in variables)
    extra = {}
    qc = None
    if has_rsoil:
        if rsoil_column not in HN1_RSOIL_COLUMNS:
            raise DataError(f"{path}: rsoil_column '{rsoil_column}' is not one of "
                            f"{HN1_RSOIL_COLUMNS}")
        _need(df, path, [rsoil_column, "Rsoil_gapfilled_flag"], "chamber Rsoil [umol m-2 s-1]")
        spec["rsoil"] = (rsoil_column, "umol m-2 s-1")
    fields = _fields_from(df, path, spec, units, optional=("tair", "rg"), variables=variables)
    if has_rsoil:
        flag = _numeric(df, "Rsoil_gapfilled_flag", path)
        bad = ~np.isin(flag, (0.0, 1.0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path}: {_line(df, i)}: column 'Rsoil_gapfilled_flag': value "
                            f"{float(flag[i])!r}; expected 0 (observed) or 1 (gap-filled)")
        gf = flag == 1
        fields["rsoil"].values[gf, 0] = np.nan
        qc = np.where(gf, _bit("rsoil_gapfilled_removed"), np.uint8(0))[:, None]
        extra["rsoil_gapfilled_rows_in_file"] = int(gf.sum())
        if "Rsoil" in df.columns and "Rsoil_chamber_raw30" in df.columns:
            r, raw = _numeric(df, "Rsoil", path), _numeric(df, "Rsoil_chamber_raw30", path)
            ok = ~gf
            extra["n_Rsoil_equal_raw30_same_step"] = int(np.sum(ok & np.isclose(r, raw)))
            extra["n_Rsoil_equal_raw30_next_step"] = int(
                np.sum(ok[:-1] & np.isclose(r[:-1], raw[1:])))
        extra["rsoil_column"] = rsoil_column
    t = _parse_time(df["TIMESTAMP_END"], f"{path}: column 'TIMESTAMP_END'", "%Y-%m-%d %H:%M:%S",
                    df.attrs["lines"])
    site = site or "US-Hn1"
    return _build(t, [site], fields, path=path, site=site, depth_m=0.15, extra_qc=qc,
                  attrs=extra, expected_step_seconds=1800, time_source="TIMESTAMP_END")
