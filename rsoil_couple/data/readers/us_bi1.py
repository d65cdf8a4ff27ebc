"""Reader of the US-Bi1 (Bouldin Island alfalfa) CSV file."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import xarray as xr

from ..canonical import _build
from ..timeaxis import _parse_time
from ._csv import _fields_from, _need, _read_csv

_BI1_COLUMNS = {"tsoil": ("TS_F_MDS_4", "degC"), "swc": ("SWC_F_MDS_1", "m3 m-3"),
                "precip": ("P_F", "mm"), "rsoil": ("Rsoil", "umol m-2 s-1"),
                "tair": ("TA_F", "degC"), "rg": ("SW_IN_F", "W m-2")}


def read_us_bi1(path: str | Path, *, site: str | None = None,
                units: Mapping[str, str] | None = None,
                variables: Sequence[str] | None = None) -> xr.Dataset:
    """Read the US-Bi1 CSV (``TS_F_MDS_4`` [degC], ``SWC_F_MDS_1`` [m3 m-3], ``P_F`` [mm per
    30 min], ``Rsoil`` [umol m-2 s-1], ``TA_F`` [degC], ``SW_IN_F`` [W m-2]).

    The tower drivers are the FLUXNET marginal-distribution-sampling gap-filled series (``_F``);
    the file does not state the sensor depth, so ``depth_m`` is NaN. ``variables``: as `read_site`.
    """
    path = Path(path)
    df = _read_csv(path)
    _need(df, path, ["TIMESTAMP_END"], "END-of-interval timestamps")
    fields = _fields_from(df, path, _BI1_COLUMNS, units, optional=("tair", "rg"),
                          variables=variables)
    t = _parse_time(df["TIMESTAMP_END"], f"{path}: column 'TIMESTAMP_END'", "%Y-%m-%d %H:%M:%S",
                    df.attrs["lines"])
    site = site or "US-Bi1"
    return _build(t, [site], fields, path=path, site=site, depth_m=float("nan"),
                  attrs={"depth_note": "sensor depth not stated in the file"},
                  expected_step_seconds=1800, time_source="TIMESTAMP_END")
