"""Reader of COSORE site files (Bond-Lamberty et al. 2020) as laid out in ``../shared/data/cosore``."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from ...errors import DataError
from ..canonical import _build, _Field
from ..timeaxis import _parse_time
from ._csv import _fields_from, _need, _numeric, _read_csv

_TIME = "TIMESTAMP_END_LST"
#: Depth [cm] of the soil drivers COSORE calls standard (``CSR_T5``, ``CSR_SM5``).
DEFAULT_DEPTH_CM = 5


def _columns(depth_cm: int) -> dict[str, tuple[str, str]]:
    return {"rsoil": ("Rs_umol_m2_s", "umol m-2 s-1"), "tsoil": (f"CSR_T{depth_cm}", "degC"),
            "swc": (f"CSR_SM{depth_cm}", "m3 m-3")}


def _depth_columns(cols) -> dict[str, list[int]]:
    """The depths [cm] of the soil-temperature and moisture columns a COSORE file has."""
    out: dict[str, list[int]] = {"CSR_T": [], "CSR_SM": []}
    for c in cols:
        m = re.fullmatch(r"(CSR_T|CSR_SM)(\d+)", c)
        if m:
            out[m.group(1)].append(int(m.group(2)))
    return {k: sorted(v) for k, v in out.items()}


def read_cosore(path: str | Path, *, site: str | None = None,
                units: Mapping[str, str] | None = None,
                variables: Sequence[str] | None = None, depth_cm: int | None = None,
                precip_file: str | Path | None = None) -> xr.Dataset:
    """Read a COSORE site CSV as prepared in ``shared/data/cosore`` (ports averaged on a grid).

    Parameters
    ----------
    path : path
        The CSV: ``TIMESTAMP_END_LST``, ``Rs_umol_m2_s`` [umol m-2 s-1] and the soil drivers
        ``CSR_T<d>`` [degC] and ``CSR_SM<d>`` [m3 m-3] at depth ``d`` cm.
    site : str
        Column id (default: from the file name, ``US-Wkg_60min.csv`` -> ``US-Wkg``).
    units : dict
        Override the units of a variable ({var: units}).
    variables : list
        As `read_site`.
    depth_cm : int
        Depth of the soil drivers to read (default 5: ``CSR_T5``/``CSR_SM5``). A file without
        5 cm columns (SCI-Embudo: 4, 12, 50 cm) is refused unless a depth is given, naming the
        depths it has: the reader never picks another depth by itself.
    precip_file : path
        A COSORE ancillary CSV with ``TIMESTAMP_END_LST`` and ``P_mm`` [mm per step] on exactly
        the same timestamps, row for row (ES-Agu); relative paths are taken beside `path`.
        Without it COSORE has no precipitation and ``precip`` is absent.

    Soil-temperature spikes (e.g. US-SRM's 54-66 degC readings at noon in March 2017) and
    negative fluxes (ES-Agu) are flagged and counted, see docs/data.md.
    """
    path = Path(path)
    df = _read_csv(path)
    _need(df, path, [_TIME], "END-of-interval timestamps, local standard time")
    given = depth_cm is not None
    depth_cm = int(depth_cm) if given else DEFAULT_DEPTH_CM
    have = _depth_columns(df.columns)
    if not given and (DEFAULT_DEPTH_CM not in have["CSR_T"]
                      or (DEFAULT_DEPTH_CM not in have["CSR_SM"]
                          and (variables is None or "swc" in variables))):
        raise DataError(f"{path}: no 5 cm soil driver columns (CSR_T5, CSR_SM5); the file has "
                        f"soil temperature at {have['CSR_T']} cm and moisture at {have['CSR_SM']} "
                        "cm; pass depth_cm= to choose one (read_cosore) or read the file by its "
                        "registry key (rsoil_couple.data.SITES)")
    fields = _fields_from(df, path, _columns(depth_cm), units, variables=variables)
    t = _parse_time(df[_TIME], f"{path}: column '{_TIME}'", "%Y-%m-%d %H:%M:%S", df.attrs["lines"])
    attrs = {"database": "COSORE (Bond-Lamberty et al. 2020, doi 10.1111/gcb.15353)"}
    if depth_cm != DEFAULT_DEPTH_CM:
        attrs["depth_note"] = (f"soil drivers read from CSR_T{depth_cm} and CSR_SM{depth_cm} "
                               f"({depth_cm} cm): the file has no 5 cm columns")
    if precip_file is not None and (variables is None or "precip" in variables):
        fields["precip"], pfile = _ancillary_precip(path, precip_file, t)
        attrs["precip_source"] = f"{pfile.name}, column P_mm, joined on {_TIME}"
    site = site or re.sub(r"_\d+min$", "", path.stem)
    return _build(t, [site], fields, path=path, site=site, depth_m=depth_cm / 100.0,
                  attrs=attrs, time_source=_TIME)


def _ancillary_precip(path: Path, precip_file: str | Path, t) -> tuple[_Field, Path]:
    """``P_mm`` of an ancillary file whose timestamps are, row for row, those of `path`."""
    pfile = Path(precip_file)
    if not pfile.is_absolute():
        pfile = path.parent / pfile
    pdf = _read_csv(pfile)
    _need(pdf, pfile, [_TIME, "P_mm"], "precipitation [mm per step] on the site file's grid")
    tp = _parse_time(pdf[_TIME], f"{pfile}: column '{_TIME}'", "%Y-%m-%d %H:%M:%S",
                     pdf.attrs["lines"])
    if len(tp) != len(t) or not np.array_equal(tp.asi8, t.asi8):
        n = min(len(tp), len(t))
        diff = np.flatnonzero(tp.asi8[:n] != t.asi8[:n])
        at = (f"first difference at data row {int(diff[0]) + 1}: {t[diff[0]]} vs {tp[diff[0]]}"
              if len(diff) else "the common rows agree")
        raise DataError(f"{pfile}: column '{_TIME}' does not match '{_TIME}' of {path} row for row "
                        f"({len(tp)} vs {len(t)} rows; {at}); the precipitation is joined on "
                        "identical timestamps only")
    return _Field(_numeric(pdf, "P_mm", pfile)[:, None], "mm", "P_mm"), pfile
