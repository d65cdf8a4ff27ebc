"""Readers that turn soil-respiration observation files into one canonical xarray Dataset.

The canonical Dataset (see ``docs/data.md``):

- dims ``time`` (regular; the coordinate is the END of each step) and ``column`` (string site ids);
- float64 variables on ``(time, column)``: ``tsoil`` [degC], ``swc`` [m3 m-3], ``precip`` [mm per
  step], ``rsoil`` [umol m-2 s-1] (absent for forcing-only files), optional extra drivers
  ``tair`` [degC], ``rg`` [W m-2], ``ppfd`` [umol m-2 s-1];
- ``qc`` uint8 ``(time, column)``: a CF bitmask (``flag_masks``/``flag_meanings``), see `QC_FLAGS`;
- coordinate ``depth`` (column) [m] and attrs ``step_seconds``, ``depth_m``, ``site``, ``source``,
  ``synthetic``, ``title``, ``Conventions`` plus ``n_*`` counts of everything the reader removed,
  flagged or inserted.

Readers never fill values. A driver that a file does not have is absent, not zeros. Timestamps
missing from a file are inserted on the regular axis as NaN and flagged; everything else odd
(unknown units, wrong columns, duplicated / non-monotonic / irregular time, an all-missing
variable, values that only make sense in other units) raises `DataError` naming the file, the
field and what was expected.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "DataError", "CANONICAL_VARS", "DRIVERS", "QC_FLAGS", "SITES", "SiteInfo",
    "read_site", "read_us_hn1", "read_us_bi1", "read_cosore", "read_ameriflux_base",
    "read_csv_mapped", "read_canonical_netcdf", "write_canonical", "check_canonical",
    "concat_sites", "gap_report", "shared_data_dir", "site_path", "convert_units",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
#: 1 umol CO2 m-2 s-1 = 12.011e-6 gC m-2 s-1 (DESIGN.md).
GC_PER_UMOL_CO2 = 12.011e-6


class DataError(ValueError):
    """Bad input data; the message names the file, the field and the expected unit or range."""


# --------------------------------------------------------------------------------------------
# Canonical variables, units and QC flags
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VarSpec:
    """One canonical variable: its unit, CF names and the range a real value can lie in."""

    units: str
    standard_name: str | None
    long_name: str
    physical_range: tuple[float, float]


CANONICAL_VARS: dict[str, VarSpec] = {
    "tsoil": VarSpec("degC", "soil_temperature", "soil temperature at depth", (-50.0, 70.0)),
    "swc": VarSpec("m3 m-3", "volume_fraction_of_condensed_water_in_soil",
                   "volumetric soil water content at depth", (0.0, 1.0)),
    "precip": VarSpec("mm", "lwe_thickness_of_precipitation_amount",
                      "precipitation amount during the step", (0.0, 500.0)),
    "rsoil": VarSpec("umol m-2 s-1", None, "soil respiration (soil-surface CO2 efflux)",
                     (-20.0, 100.0)),
    "tair": VarSpec("degC", "air_temperature", "air temperature", (-80.0, 65.0)),
    "rg": VarSpec("W m-2", "surface_downwelling_shortwave_flux_in_air",
                  "global (incoming shortwave) radiation", (-50.0, 1600.0)),
    "ppfd": VarSpec("umol m-2 s-1", "surface_downwelling_photosynthetic_photon_flux_in_air",
                    "incoming photosynthetic photon flux density", (-50.0, 3000.0)),
}
#: Drivers of the respiration models, in the order models use them.
DRIVERS = ("tsoil", "swc", "precip")
#: More than this fraction of a variable outside its physical range means the units are wrong.
MAX_OUT_OF_RANGE_FRACTION = 0.01
#: A soil temperature this far [K] from the median of the surrounding 8 hours is a spike.
TSOIL_SPIKE_K = 20.0
TSOIL_SPIKE_WINDOW_HOURS = 8.0

QC_FLAGS: dict[str, int] = {
    "tsoil_missing": 1,
    "swc_missing": 2,
    "precip_missing": 4,
    "rsoil_missing": 8,
    "rsoil_gapfilled_removed": 16,   # the file's value was gap-filled, not observed -> set NaN
    "value_removed_out_of_range": 32,  # some variable outside its physical range or a spike -> NaN
    "rsoil_negative": 64,            # negative efflux, kept (a measurement, see docs/data.md)
    "time_inserted": 128,            # timestamp absent from the file, inserted as NaN
}
# Bits that readers derive from the data itself (recomputed whenever a Dataset is re-built).
_DERIVED_BITS = (QC_FLAGS["tsoil_missing"] | QC_FLAGS["swc_missing"] | QC_FLAGS["precip_missing"]
                 | QC_FLAGS["rsoil_missing"] | QC_FLAGS["rsoil_negative"])


def _bit(name: str) -> np.uint8:
    return np.uint8(QC_FLAGS[name])


# Units: accepted spellings -> converter(values, step_seconds) into the canonical unit.
def _identity(x, step_s):
    return x


_UNIT_TABLE: dict[str, dict[str, Callable]] = {
    "degC": {
        **{u: _identity for u in ("degc", "deg c", "°c", "c", "celsius", "degree_celsius",
                                   "degrees_celsius", "deg_c", "degrees c")},
        **{u: (lambda x, s: x - 273.15) for u in ("k", "kelvin")},
        **{u: (lambda x, s: (x - 32.0) * 5.0 / 9.0) for u in ("degf", "deg f", "°f", "f",
                                                              "fahrenheit")},
    },
    "m3 m-3": {
        **{u: _identity for u in ("m3 m-3", "m3/m3", "m^3 m^-3", "m3.m-3", "m3 m**-3", "1",
                                   "fraction", "-", "cm3 cm-3", "cm3/cm3", "v/v")},
        **{u: (lambda x, s: x / 100.0) for u in ("%", "percent", "pct", "% vol", "%vol")},
    },
    "mm": {
        **{u: _identity for u in ("mm", "kg m-2", "mm per step", "mm/step", "mm step-1")},
        "m": lambda x, s: x * 1000.0,
        **{u: (lambda x, s: x * 25.4) for u in ("in", "inch", "inches")},
        **{u: (lambda x, s: x * s) for u in ("mm s-1", "mm/s", "kg m-2 s-1", "mm s^-1")},
        **{u: (lambda x, s: x * s / 3600.0) for u in ("mm h-1", "mm/h", "mm hr-1", "mm/hr")},
        **{u: (lambda x, s: x * s / 86400.0) for u in ("mm d-1", "mm/d", "mm day-1", "mm/day")},
    },
    "umol m-2 s-1": {
        **{u: _identity for u in ("umol m-2 s-1", "umol co2 m-2 s-1", "umolco2 m-2 s-1",
                                   "umol/m2/s", "umol m^-2 s^-1", "micromol m-2 s-1",
                                   "umol_m2_s")},
        **{u: (lambda x, s: x / GC_PER_UMOL_CO2) for u in ("gc m-2 s-1", "g c m-2 s-1",
                                                           "gc/m2/s")},
        **{u: (lambda x, s: x / GC_PER_UMOL_CO2 / 86400.0) for u in ("gc m-2 d-1",
                                                                     "g c m-2 d-1",
                                                                     "gc m-2 day-1")},
        **{u: (lambda x, s: x * 1e-3 / 44.0095 * 1e6) for u in ("mg co2 m-2 s-1",
                                                                 "mgco2 m-2 s-1")},
    },
    "W m-2": {u: _identity for u in ("w m-2", "w/m2", "w m^-2")},
}
_UNITS_OF_VAR = {name: spec.units for name, spec in CANONICAL_VARS.items()}
_UNITS_OF_VAR["ppfd"] = "umol m-2 s-1"


def _norm_unit(units: str) -> str:
    u = str(units).strip().replace("µ", "u").replace("μ", "u").replace("²", "2").replace("³", "3")
    return re.sub(r"\s+", " ", u).lower()


def convert_units(values: np.ndarray, units: str, var: str, *, step_seconds: float,
                  where: str) -> np.ndarray:
    """Convert `values` of canonical variable `var` from `units` to its canonical unit.

    Parameters
    ----------
    values : array  Values in `units`.
    units : str  The unit the file or mapping declares (e.g. ``"K"``, ``"%"``, ``"mm s-1"``).
    var : str  Canonical variable name (``tsoil``, ``swc``, ``precip``, ``rsoil`` ...).
    step_seconds : float  Step length [s]; converts precipitation rates to amounts per step.
    where : str  ``"<file>: column '<name>'"`` used in error messages.

    Returns
    -------
    array  float64 values in ``CANONICAL_VARS[var].units``.
    """
    if var not in CANONICAL_VARS:
        raise DataError(f"{where}: unknown canonical variable '{var}'; "
                        f"expected one of {sorted(CANONICAL_VARS)}")
    table = _UNIT_TABLE[_UNITS_OF_VAR[var]]
    conv = table.get(_norm_unit(units))
    if conv is None:
        raise DataError(f"{where} ({var}): unknown unit '{units}'; expected one of "
                        f"{sorted(table)} (converted to {CANONICAL_VARS[var].units})")
    return np.asarray(conv(np.asarray(values, dtype=np.float64), float(step_seconds)),
                      dtype=np.float64)


# --------------------------------------------------------------------------------------------
# The shared data folder and the registry of real files
# --------------------------------------------------------------------------------------------
def shared_data_dir() -> Path:
    """The real-data folder: ``$RSOIL_SHARED_DATA``, else ``../shared/data`` beside the source
    tree, else (an installed package) ``../shared/data`` beside the working directory."""
    if "RSOIL_SHARED_DATA" in os.environ:
        return Path(os.environ["RSOIL_SHARED_DATA"])
    candidates = [REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    return next((c for c in candidates if (c / "README.md").is_file()), candidates[0])


@dataclass(frozen=True)
class SiteInfo:
    """One real file of ``shared_data_dir()``: where it is and what it holds."""

    path: str            # relative to shared_data_dir()
    site: str
    depth_m: float       # depth of tsoil/swc [m]; NaN where the file does not say
    step_seconds: int
    reader: str          # name of the reader function in this module
    has_rsoil: bool
    description: str


SITES: dict[str, SiteInfo] = {
    "US-Hn1_2019": SiteInfo("US-Hn1/US-Hn1_2019_30min.csv", "US-Hn1", 0.15, 1800, "read_us_hn1",
                            True, "US-Hn1 sagebrush steppe, 2019-06-01..2019-09-14, chamber Rsoil"),
    "US-Hn1_2016-2017": SiteInfo("US-Hn1/US-Hn1_2016-2017_forcing_30min.csv", "US-Hn1", 0.15,
                                 1800, "read_us_hn1", False,
                                 "US-Hn1 drivers only, 2016-06-01..2017-06-30"),
    "US-Bi1": SiteInfo("US-Bi1/US-Bi1_2018-07_2021-12_30min.csv", "US-Bi1", float("nan"), 1800,
                       "read_us_bi1", True,
                       "US-Bi1 irrigated alfalfa, 2018-07..2021-12 (gap-filled tower drivers)"),
    "US-Wkg": SiteInfo("cosore/US-Wkg/US-Wkg_60min.csv", "US-Wkg", 0.05, 3600, "read_cosore",
                       True, "COSORE Walnut Gulch Kendall grassland, 2017-01..2019-05"),
    "US-SRM": SiteInfo("cosore/US-SRM/US-SRM_60min.csv", "US-SRM", 0.05, 3600, "read_cosore",
                       True, "COSORE Santa Rita mesquite savanna, 2017-03..2018-06"),
    "ES-Agu": SiteInfo("cosore/ES-Agu/ES-Agu_30min.csv", "ES-Agu", 0.05, 1800, "read_cosore",
                       True, "COSORE Agua Amarga grassland, 2011-06..2013-11"),
    "Haibei": SiteInfo("cosore/Haibei/Haibei_60min.csv", "Haibei", 0.05, 3600, "read_cosore",
                       True, "COSORE Haibei alpine grassland, 2008-06..2013-09"),
}


def site_path(name: str) -> Path:
    """Absolute path of registered file `name` (a key of `SITES`)."""
    if name not in SITES:
        raise KeyError(f"unknown site file '{name}'; registered: {sorted(SITES)}")
    return shared_data_dir() / SITES[name].path


# --------------------------------------------------------------------------------------------
# Time axis
# --------------------------------------------------------------------------------------------
def _ns(t) -> pd.DatetimeIndex:
    """A DatetimeIndex in nanoseconds (pandas may pick s/us resolution; arithmetic here is ns)."""
    return pd.DatetimeIndex(t).as_unit("ns")


def _parse_time(raw: pd.Series, where: str, fmt: str | None) -> pd.DatetimeIndex:
    try:
        t = pd.to_datetime(raw.astype(str) if fmt == "%Y%m%d%H%M" else raw, format=fmt)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{where}: cannot parse timestamps ({exc}); expected "
                        f"{fmt or 'ISO dates like 2019-06-01 00:30:00'}") from None
    t = _ns(t)
    if t.tz is not None:  # keep the clock time as written; the file's offset goes unused
        t = t.tz_localize(None)
    if t.isna().any():
        i = int(np.flatnonzero(t.isna())[0])
        raise DataError(f"{where}: empty or unparsable timestamp in data row {i + 1}")
    return t


def _regular_step(t: pd.DatetimeIndex, where: str) -> pd.Timedelta:
    """The step of a sorted, unique time axis; every difference must be a multiple of it."""
    if len(t) < 2:
        raise DataError(f"{where}: {len(t)} timestamp(s); need at least 2 to know the step")
    dup = t.duplicated()
    if dup.any():
        first = t[dup][0]
        raise DataError(f"{where}: duplicated timestamp {first} ({int(dup.sum())} duplicates); "
                        "expected one row per step")
    d = np.diff(t.asi8)
    if (d < 0).any():
        i = int(np.flatnonzero(d < 0)[0])
        raise DataError(f"{where}: time is not monotonic: {t[i + 1]} follows {t[i]} "
                        f"(data row {i + 2}); expected increasing END-of-step timestamps")
    values, counts = np.unique(d, return_counts=True)
    step = int(values[np.argmax(counts)])
    bad = d % step != 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where}: irregular time step: {t[i]} -> {t[i + 1]} is "
                        f"{pd.Timedelta(int(d[i]), 'ns')}, not a multiple of the usual step "
                        f"{pd.Timedelta(step, 'ns')}")
    return pd.Timedelta(step, "ns")


# --------------------------------------------------------------------------------------------
# The one place where a Dataset is built (every reader ends here)
# --------------------------------------------------------------------------------------------
@dataclass
class _Field:
    """One variable as read from a file: values [time, column] already in `units`."""

    values: np.ndarray
    units: str
    source: str          # column / variable name in the file, for messages and attrs


def _build(time: pd.DatetimeIndex, columns: Sequence[str], fields: Mapping[str, _Field], *,
           path: str | Path, site: str, depth_m: Sequence[float] | float,
           extra_qc: np.ndarray | None = None, attrs: Mapping | None = None,
           expected_step_seconds: int | None = None, time_source: str = "time") -> xr.Dataset:
    """Validate, convert, QC and re-grid raw fields into the canonical Dataset."""
    fname = Path(path).name
    where_t = f"{path}: column '{time_source}'"
    time = _ns(time)
    if "tsoil" not in fields:
        raise DataError(f"{path}: no soil temperature (tsoil) found; every file needs one "
                        f"[{CANONICAL_VARS['tsoil'].units}]")
    step = _regular_step(time, where_t)  # raises on duplicates / non-monotonic / irregular
    step_s = int(step.total_seconds())
    if step_s <= 0 or step.value % 1_000_000_000:
        raise DataError(f"{where_t}: step {step} is not a whole number of seconds")
    if expected_step_seconds is not None and step_s != expected_step_seconds:
        raise DataError(f"{where_t}: step is {step_s} s; this file format has "
                        f"{expected_step_seconds} s steps")
    full = pd.date_range(time[0], time[-1], freq=step)
    pos = ((time.asi8 - full.asi8[0]) // step.value).astype(np.int64)
    ncol = len(columns)
    nt = len(full)
    qc = np.zeros((nt, ncol), dtype=np.uint8)
    inserted = np.ones(nt, dtype=bool)
    inserted[pos] = False
    qc[inserted, :] |= _bit("time_inserted")
    if extra_qc is not None:
        qc[pos, :] |= extra_qc.astype(np.uint8) & ~np.uint8(_DERIVED_BITS)
    counts: dict[str, int] = {"n_time": nt, "n_time_inserted": int(
        ((qc & _bit("time_inserted")) > 0).any(axis=1).sum())}
    data_vars: dict[str, xr.DataArray] = {}
    rank = {v: i for i, v in enumerate(CANONICAL_VARS)}
    for var, field in sorted(fields.items(), key=lambda kv: rank.get(kv[0], -1)):
        spec = CANONICAL_VARS.get(var)
        where = f"{path}: column '{field.source}'"
        if spec is None:
            raise DataError(f"{where}: unknown canonical variable '{var}'; expected one of "
                            f"{sorted(CANONICAL_VARS)}")
        raw = np.asarray(field.values, dtype=np.float64).reshape(len(time), ncol)
        vals = np.full((nt, ncol), np.nan)
        vals[pos] = convert_units(raw, field.units, var, step_seconds=step_s, where=where)
        vals[~np.isfinite(vals)] = np.nan
        finite = np.isfinite(vals)
        if not finite.any(axis=0).all():
            c = columns[int(np.flatnonzero(~finite.any(axis=0))[0])]
            raise DataError(f"{where} ({var}, column id '{c}'): all values missing; expected "
                            f"{var} in {spec.units}")
        lo, hi = spec.physical_range
        out = finite & ((vals < lo) | (vals > hi))
        if out.sum() > MAX_OUT_OF_RANGE_FRACTION * finite.sum():
            ex = vals[out][0]
            raise DataError(
                f"{where} ({var}): {int(out.sum())} of {int(finite.sum())} values outside the "
                f"physical range {lo}..{hi} {spec.units} after converting from '{field.units}' "
                f"(e.g. {ex:g}); wrong units?")
        removed = out.copy()
        if var == "tsoil":
            spike = _tsoil_spikes(vals, step_s) & ~out
            counts["n_tsoil_spike_removed"] = int(spike.sum())
            removed |= spike
        counts[f"n_{var}_out_of_range_removed"] = int(out.sum())
        vals[removed] = np.nan
        qc[removed] |= _bit("value_removed_out_of_range")
        if var == "rsoil":
            neg = vals < 0
            qc[neg] |= _bit("rsoil_negative")
            counts["n_rsoil_negative"] = int(neg.sum())
        miss = np.isnan(vals)
        if miss.all(axis=0).any():
            raise DataError(f"{where} ({var}): no valid value left after removing "
                            f"out-of-range values; expected {lo}..{hi} {spec.units}")
        if f"{var}_missing" in QC_FLAGS:
            qc[miss] |= _bit(f"{var}_missing")
        counts[f"n_{var}_missing"] = int(miss.sum())
        attrs_v = {"units": spec.units, "long_name": spec.long_name,
                   "source_column": field.source, "source_units": field.units,
                   "valid_min": lo, "valid_max": hi}
        if spec.standard_name:
            attrs_v["standard_name"] = spec.standard_name
        data_vars[var] = xr.DataArray(vals, dims=("time", "column"), attrs=attrs_v)
    counts["n_rsoil_gapfilled_removed"] = int(
        ((qc & _bit("rsoil_gapfilled_removed")) > 0).sum())
    data_vars["qc"] = xr.DataArray(qc, dims=("time", "column"), attrs=_qc_attrs())
    depth = np.broadcast_to(np.asarray(depth_m, dtype=np.float64), (ncol,)).copy()
    ds = xr.Dataset(
        data_vars,
        coords={"time": ("time", full.values, {"long_name": "end of averaging interval",
                                               "standard_name": "time",
                                               "comment": "local standard time as in the file"}),
                "column": ("column", np.asarray(columns, dtype=object),
                           {"long_name": "site / column id"}),
                "depth": ("column", depth, {"units": "m", "long_name": "depth of tsoil and swc",
                                            "positive": "down"})})
    a = {"title": f"{site} soil respiration and drivers", "Conventions": "CF-1.8",
         "site": site, "source": fname, "synthetic": "no", "step_seconds": step_s,
         "depth_m": float(depth[0]) if np.all(depth == depth[0]) or np.isnan(depth).all()
         else float("nan"),
         "time_convention": "END of each averaging interval",
         "history": "read by rsoil_couple.data"}
    a.update(counts)
    a.update(attrs or {})
    ds.attrs = a
    return ds


def _tsoil_spikes(t: np.ndarray, step_s: int) -> np.ndarray:
    """Soil temperatures more than `TSOIL_SPIKE_K` from the median of the surrounding 8 h."""
    w = max(3, int(round(TSOIL_SPIKE_WINDOW_HOURS * 3600 / step_s)) + 1)
    med = pd.DataFrame(t).rolling(w, center=True, min_periods=3).median().to_numpy()
    with np.errstate(invalid="ignore"):
        return np.isfinite(t) & (np.abs(t - med) > TSOIL_SPIKE_K)


def _qc_attrs() -> dict:
    return {"long_name": "quality flags", "standard_name": "status_flag",
            "flag_masks": np.array(list(QC_FLAGS.values()), dtype=np.uint8),
            "flag_meanings": " ".join(QC_FLAGS)}


# --------------------------------------------------------------------------------------------
# CSV helpers
# --------------------------------------------------------------------------------------------
def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    skip = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("#"):
                skip += 1
            else:
                break
    try:
        df = pd.read_csv(path, skiprows=skip, na_values=["-9999", "-9999.0", "NA", "NaN", "nan"],
                         keep_default_na=True, low_memory=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _need(df: pd.DataFrame, path: Path, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(f"{path}: column(s) {missing} not found ({what}); columns present: "
                        f"{list(df.columns)[:30]}")


def _numeric(df: pd.DataFrame, col: str, path: Path) -> np.ndarray:
    s = pd.to_numeric(df[col], errors="coerce")
    bad = s.isna() & df[col].notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path}: column '{col}': non-numeric value {df[col].iloc[i]!r} in data "
                        f"row {i + 1}")
    return np.array(s.to_numpy(dtype=np.float64), copy=True)


def _fields_from(df: pd.DataFrame, path: Path, spec: Mapping[str, tuple[str, str]],
                 units_override: Mapping[str, str] | None, optional: Sequence[str] = ()
                 ) -> dict[str, _Field]:
    """`spec` {var: (column, units)} -> fields; `optional` vars are skipped when absent."""
    units_override = dict(units_override or {})
    unknown = set(units_override) - set(CANONICAL_VARS)
    if unknown:
        raise DataError(f"{path}: units given for unknown variable(s) {sorted(unknown)}; "
                        f"expected some of {sorted(CANONICAL_VARS)}")
    fields = {}
    for var, (col, units) in spec.items():
        if col not in df.columns:
            if var in optional:
                continue
            _need(df, path, [col], f"{var} [{CANONICAL_VARS[var].units}]")
        fields[var] = _Field(_numeric(df, col, path)[:, None], units_override.get(var, units),
                             col)
    return fields


# --------------------------------------------------------------------------------------------
# The specific readers
# --------------------------------------------------------------------------------------------
_HN1_COLUMNS = {"tsoil": ("TS_15cm", "degC"), "swc": ("SWC_15cm", "m3 m-3"),
                "precip": ("P_mm", "mm"), "tair": ("Tair", "degC"), "rg": ("Rg", "W m-2")}
HN1_RSOIL_COLUMNS = ("Rsoil_chamber_raw30", "Rsoil")


def read_us_hn1(path: str | Path, *, site: str | None = None, units: Mapping[str, str] | None = None,
                rsoil_column: str = "Rsoil_chamber_raw30") -> xr.Dataset:
    """Read a US-Hn1 CSV (``US-Hn1_2019_30min.csv`` or the forcing-only 2016-2017 file).

    Parameters
    ----------
    path : path  The CSV file (``TIMESTAMP_END``, ``TS_15cm`` [degC], ``SWC_15cm`` [m3 m-3],
        ``P_mm`` [mm per 30 min], ``Tair`` [degC], ``Rg`` [W m-2] and, in the 2019 file, the
        chamber columns).
    site : str  Column id and site name (default ``"US-Hn1"``).
    units : dict  Override the units of a variable ({var: units}).
    rsoil_column : str  ``"Rsoil_chamber_raw30"`` (default: the chamber's 30-min mean at the
        interval's END) or ``"Rsoil"`` (the file's gap-filled series, which is shifted one step
        earlier than its own flag and the raw mean, see docs/data.md).

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
    has_rsoil = "Rsoil" in df.columns or "Rsoil_chamber_raw30" in df.columns
    extra = {}
    qc = None
    if has_rsoil:
        if rsoil_column not in HN1_RSOIL_COLUMNS:
            raise DataError(f"{path}: rsoil_column '{rsoil_column}' is not one of "
                            f"{HN1_RSOIL_COLUMNS}")
        _need(df, path, [rsoil_column, "Rsoil_gapfilled_flag"], "chamber Rsoil [umol m-2 s-1]")
        spec["rsoil"] = (rsoil_column, "umol m-2 s-1")
    fields = _fields_from(df, path, spec, units, optional=("tair", "rg"))
    if has_rsoil:
        flag = _numeric(df, "Rsoil_gapfilled_flag", path)
        bad = ~np.isin(flag, (0.0, 1.0))
        if bad.any():
            raise DataError(f"{path}: column 'Rsoil_gapfilled_flag': value {flag[bad][0]!r}; "
                            "expected 0 (observed) or 1 (gap-filled)")
        gf = flag == 1
        fields["rsoil"].values[gf, 0] = np.nan
        qc = np.where(gf, _bit("rsoil_gapfilled_removed"), np.uint8(0))[:, None]
        extra["rsoil_gapfilled_rows_in_file"] = int(gf.sum())
        if "Rsoil" in df.columns and "Rsoil_chamber_raw30" in df.columns:
            r, raw = df["Rsoil"].to_numpy(float), df["Rsoil_chamber_raw30"].to_numpy(float)
            ok = ~gf
            extra["n_Rsoil_equal_raw30_same_step"] = int(np.sum(ok & np.isclose(r, raw)))
            extra["n_Rsoil_equal_raw30_next_step"] = int(
                np.sum(ok[:-1] & np.isclose(r[:-1], raw[1:])))
        extra["rsoil_column"] = rsoil_column
    t = _parse_time(df["TIMESTAMP_END"], f"{path}: column 'TIMESTAMP_END'", "%Y-%m-%d %H:%M:%S")
    site = site or "US-Hn1"
    return _build(t, [site], fields, path=path, site=site, depth_m=0.15, extra_qc=qc,
                  attrs=extra, expected_step_seconds=1800, time_source="TIMESTAMP_END")


_BI1_COLUMNS = {"tsoil": ("TS_F_MDS_4", "degC"), "swc": ("SWC_F_MDS_1", "m3 m-3"),
                "precip": ("P_F", "mm"), "rsoil": ("Rsoil", "umol m-2 s-1"),
                "tair": ("TA_F", "degC"), "rg": ("SW_IN_F", "W m-2")}


def read_us_bi1(path: str | Path, *, site: str | None = None,
                units: Mapping[str, str] | None = None) -> xr.Dataset:
    """Read the US-Bi1 CSV (``TS_F_MDS_4`` [degC], ``SWC_F_MDS_1`` [m3 m-3], ``P_F`` [mm per
    30 min], ``Rsoil`` [umol m-2 s-1], ``TA_F`` [degC], ``SW_IN_F`` [W m-2]).

    The tower drivers are the FLUXNET marginal-distribution-sampling gap-filled series (``_F``);
    the file does not state the sensor depth, so ``depth_m`` is NaN.
    """
    path = Path(path)
    df = _read_csv(path)
    _need(df, path, ["TIMESTAMP_END"], "END-of-interval timestamps")
    fields = _fields_from(df, path, _BI1_COLUMNS, units, optional=("tair", "rg"))
    t = _parse_time(df["TIMESTAMP_END"], f"{path}: column 'TIMESTAMP_END'", "%Y-%m-%d %H:%M:%S")
    site = site or "US-Bi1"
    return _build(t, [site], fields, path=path, site=site, depth_m=float("nan"),
                  attrs={"depth_note": "sensor depth not stated in the file"},
                  expected_step_seconds=1800, time_source="TIMESTAMP_END")


_COSORE_COLUMNS = {"rsoil": ("Rs_umol_m2_s", "umol m-2 s-1"), "tsoil": ("CSR_T5", "degC"),
                   "swc": ("CSR_SM5", "m3 m-3")}


def read_cosore(path: str | Path, *, site: str | None = None,
                units: Mapping[str, str] | None = None) -> xr.Dataset:
    """Read a COSORE site CSV as prepared in ``shared/data/cosore`` (ports averaged on a grid).

    Columns: ``TIMESTAMP_END_LST``, ``Rs_umol_m2_s`` [umol m-2 s-1], ``CSR_T5`` [degC, 5 cm],
    ``CSR_SM5`` [m3 m-3, 5 cm]. COSORE has no precipitation: ``precip`` is absent. The site id
    is taken from the file name (``US-Wkg_60min.csv`` -> ``US-Wkg``) unless `site` is given.
    Soil-temperature spikes (e.g. US-SRM's 54-66 degC readings at noon in March 2017) and
    negative fluxes (ES-Agu) are flagged and counted, see docs/data.md.
    """
    path = Path(path)
    df = _read_csv(path)
    _need(df, path, ["TIMESTAMP_END_LST"], "END-of-interval timestamps, local standard time")
    fields = _fields_from(df, path, _COSORE_COLUMNS, units)
    t = _parse_time(df["TIMESTAMP_END_LST"], f"{path}: column 'TIMESTAMP_END_LST'",
                    "%Y-%m-%d %H:%M:%S")
    site = site or re.sub(r"_\d+min$", "", path.stem)
    return _build(t, [site], fields, path=path, site=site, depth_m=0.05,
                  attrs={"database": "COSORE (Bond-Lamberty et al. 2020, doi 10.1111/gcb.15353)"},
                  time_source="TIMESTAMP_END_LST")


# AmeriFlux BASE: variable -> (column prefix, units fixed by the AmeriFlux conventions).
_AMF_VARS = {"tsoil": ("TS", "degC"), "swc": ("SWC", "%"), "precip": ("P", "mm"),
             "tair": ("TA", "degC"), "rg": ("SW_IN", "W m-2"), "ppfd": ("PPFD_IN", "umol m-2 s-1")}


def _amf_column(cols: Sequence[str], prefix: str) -> str | None:
    """The shallowest plain column of an AmeriFlux variable. Qualifiers: ``TS`` (none),
    ``TS_<n>`` (layer n, averaged over positions), ``TS_<h>_<v>_<r>`` (horizontal position,
    vertical index — 1 is shallowest —, replicate). Preference: ``TS``, ``TS_1``, ``TS_2`` ...,
    then ``TS_<h>_<v>_<r>`` by (v, h, r). Gap-filled ``_F`` / ``_PI`` variants never match."""
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
                        depth_m: float = float("nan")) -> xr.Dataset:
    """Read an AmeriFlux BASE half-hourly (or hourly) CSV.

    ``TIMESTAMP_START``/``TIMESTAMP_END`` are YYYYMMDDHHMM, ``-9999`` is missing; ``TS_*`` [degC],
    ``SWC_*`` [%], ``P`` [mm per step], ``TA`` [degC], ``SW_IN`` [W m-2], ``PPFD_IN``
    [umol m-2 s-1]. For each variable the shallowest plain column is used (``TS_1`` or
    ``TS_1_1_1`` ...; gap-filled ``_F`` columns are not observations and are not used);
    `mapping` {var: (column, units)} picks other columns or adds ``rsoil``, which BASE files do
    not have. BASE files do not state sensor depths: give `depth_m` [m].
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
    fields = _fields_from(df, path, spec, units)
    t0 = _parse_time(df["TIMESTAMP_START"], f"{path}: column 'TIMESTAMP_START'", "%Y%m%d%H%M")
    t = _parse_time(df["TIMESTAMP_END"], f"{path}: column 'TIMESTAMP_END'", "%Y%m%d%H%M")
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
                    site: str | None = None, depth_m: float = float("nan")) -> xr.Dataset:
    """Read any CSV through an explicit `mapping` {canonical_name: (column, units)}.

    ``mapping["time"] = (column, "end" | "start")`` names the timestamp column and whether it
    marks the END (canonical) or the START of each step (shifted by one step to the END). ISO
    dates and YYYYMMDDHHMM numbers are understood. Empty cells, ``NA`` and ``-9999`` are missing.
    Every other key is a canonical variable (`CANONICAL_VARS`) whose values are converted from
    the given units.
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
    t = _parse_time(raw, f"{path}: column '{tcol}'", fmt)
    if anchor == "start":
        t = t + _regular_step(t, f"{path}: column '{tcol}'")
    fields = _fields_from(df, path, _check_mapping(mapping, path), None)
    return _build(t, [site or path.stem], fields, path=path, site=site or path.stem,
                  depth_m=depth_m, attrs={"format": "CSV with explicit column mapping"},
                  time_source=tcol)


def read_canonical_netcdf(path: str | Path, *, units: Mapping[str, str] | None = None
                          ) -> xr.Dataset:
    """Read a canonical NetCDF (as `write_canonical` writes it, or any file with the same
    variable names and dims ``time``/``column``); units are converted from each variable's
    ``units`` attribute, and the whole Dataset is re-validated."""
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
        if var not in src.data_vars:
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
    # values removed when the file was first read are NaN now: keep those counts
    for k, v in src.attrs.items():
        if re.fullmatch(r"n_\w+_(out_of_range|spike)_removed", k):
            ds.attrs[k] = int(v) + int(ds.attrs.get(k, 0))
    return ds


# --------------------------------------------------------------------------------------------
# Autodetection, writing, combining, reporting
# --------------------------------------------------------------------------------------------
def _header(path: Path) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.startswith("#"):
                return [c.strip().strip('"') for c in line.strip().split(",")]
    return []


def read_site(path: str | Path, *, mapping: Mapping[str, tuple[str, str]] | None = None,
              site: str | None = None, units: Mapping[str, str] | None = None) -> xr.Dataset:
    """Read any supported file into the canonical Dataset, detecting its format.

    Parameters
    ----------
    path : path  A file, or a key of `SITES` (e.g. ``"US-Hn1_2019"``).
    mapping : dict  {canonical_name: (column, units)} plus ``"time": (column, "end"|"start")``
        for a generic CSV (with an AmeriFlux BASE file it picks or adds columns).
    site : str  Site / column id (default: from the file).
    units : dict  {canonical_name: units} overriding what a known format assumes.

    Formats: US-Hn1 (``TS_15cm``...), US-Bi1 (``TS_F_MDS_4``...), COSORE (``TIMESTAMP_END_LST``,
    ``Rs_umol_m2_s``), AmeriFlux BASE (``TIMESTAMP_START``/``TIMESTAMP_END``), canonical NetCDF
    (``.nc``), any CSV with `mapping`.
    """
    if isinstance(path, str) and path in SITES:
        path = site_path(path)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() in (".nc", ".nc4", ".netcdf"):
        if mapping:
            raise DataError(f"{path}: a column mapping applies to CSV files only")
        return read_canonical_netcdf(path, units=units)
    cols = set(_header(path))
    if mapping is not None and "time" in mapping:
        if units:
            raise DataError(f"{path}: give units inside the mapping ({{var: (column, units)}}), "
                            "not as units=")
        return read_csv_mapped(path, mapping, site=site)
    if {"TIMESTAMP_START", "TIMESTAMP_END"} <= cols:
        return read_ameriflux_base(path, mapping=mapping, site=site, units=units)
    if mapping:
        raise DataError(f"{path}: mapping given without a 'time' entry; expected "
                        "mapping['time'] = (column, 'end' | 'start')")
    if {"TIMESTAMP_END", "TS_15cm"} <= cols:
        return read_us_hn1(path, site=site, units=units)
    if {"TIMESTAMP_END", "TS_F_MDS_4"} <= cols:
        return read_us_bi1(path, site=site, units=units)
    if {"TIMESTAMP_END_LST", "Rs_umol_m2_s"} <= cols:
        return read_cosore(path, site=site, units=units)
    raise DataError(
        f"{path}: unrecognised format (columns {sorted(cols)[:20]}); known: US-Hn1 "
        "(TIMESTAMP_END, TS_15cm, SWC_15cm, P_mm), US-Bi1 (TS_F_MDS_4), COSORE "
        "(TIMESTAMP_END_LST, Rs_umol_m2_s), AmeriFlux BASE (TIMESTAMP_START, TIMESTAMP_END), "
        "canonical NetCDF (.nc); otherwise pass mapping={'time': (column, 'end'), "
        "'tsoil': (column, units), ...}")


def check_canonical(ds: xr.Dataset, where: str = "dataset") -> None:
    """Raise `DataError` unless `ds` is a canonical Dataset (dims, units, regular time, qc)."""
    for dim in ("time", "column"):
        if dim not in ds.dims:
            raise DataError(f"{where}: dimension '{dim}' missing; dims are {tuple(ds.dims)}")
    for key in ("step_seconds", "site", "source", "synthetic"):
        if key not in ds.attrs:
            raise DataError(f"{where}: attribute '{key}' missing")
    if "tsoil" not in ds.data_vars or "qc" not in ds.data_vars:
        raise DataError(f"{where}: variables 'tsoil' and 'qc' are required")
    for var in ds.data_vars:
        if var == "qc":
            continue
        if var not in CANONICAL_VARS:
            raise DataError(f"{where}: variable '{var}' is not canonical; expected some of "
                            f"{sorted(CANONICAL_VARS)}")
        if ds[var].attrs.get("units") != CANONICAL_VARS[var].units:
            raise DataError(f"{where}: variable '{var}' has units {ds[var].attrs.get('units')!r}; "
                            f"expected '{CANONICAL_VARS[var].units}'")
    t = _ns(ds["time"].values)
    step = _regular_step(t, f"{where}: time")
    if len(np.unique(np.diff(t.asi8))) != 1 or int(step.total_seconds()) != int(
            ds.attrs["step_seconds"]):
        raise DataError(f"{where}: time is not regular with step_seconds="
                        f"{ds.attrs['step_seconds']}")


def write_canonical(ds: xr.Dataset, path: str | Path) -> Path:
    """Write a canonical Dataset as CF NetCDF-4 (readable back with `read_canonical_netcdf`)."""
    path = Path(path)
    check_canonical(ds, str(path))
    out = ds.copy()
    out["column"] = out["column"].astype(str)
    enc = {"time": {"units": "minutes since 1970-01-01 00:00:00", "calendar": "proleptic_gregorian",
                    "dtype": "int64"},
           "qc": {"dtype": "uint8"}}
    for var in out.data_vars:
        if var != "qc":
            enc[var] = {"dtype": "float64", "_FillValue": np.nan, "zlib": True}
    out.attrs = {k: (v if not isinstance(v, (bool, np.bool_)) else str(v))
                 for k, v in out.attrs.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_netcdf(path, encoding=enc, engine="netcdf4")
    return path


def concat_sites(datasets: Sequence[xr.Dataset]) -> xr.Dataset:
    """Combine single- or multi-column Datasets along ``column`` on the union of their times.

    All must have the same ``step_seconds`` and timestamps on one common grid, and distinct
    column ids; otherwise `DataError`. Times a column lacks are NaN and flagged
    ``time_inserted``; a variable one column lacks is NaN there (and flagged missing).
    """
    if not datasets:
        raise DataError("concat_sites: no datasets given")
    steps = {int(d.attrs["step_seconds"]) for d in datasets}
    names = [f"{d.attrs.get('source', '?')} (step_seconds={d.attrs['step_seconds']})"
             for d in datasets]
    if len(steps) != 1:
        raise DataError(f"concat_sites: steps differ: {names}; resample to one step first")
    step_ns = steps.pop() * 1_000_000_000
    cols = [str(c) for d in datasets for c in d["column"].values]
    if len(set(cols)) != len(cols):
        raise DataError(f"concat_sites: column ids are not unique: {cols}")
    t0 = min(int(pd.Timestamp(d["time"].values[0]).value) for d in datasets)
    for d, n in zip(datasets, names):
        if (int(pd.Timestamp(d["time"].values[0]).value) - t0) % step_ns:
            raise DataError(f"concat_sites: {n}: times are not on the common grid of the others")
    t1 = max(int(pd.Timestamp(d["time"].values[-1]).value) for d in datasets)
    full = pd.date_range(pd.Timestamp(t0), pd.Timestamp(t1), freq=pd.Timedelta(step_ns, "ns"))
    variables = [v for v in CANONICAL_VARS if any(v in d.data_vars for d in datasets)]
    parts = []
    for d in datasets:
        r = d.reindex(time=full)
        new = ~np.isin(full.values, d["time"].values)
        qc = r["qc"].fillna(0).astype(np.uint8).values
        qc[new, :] |= _bit("time_inserted")
        for v in variables:
            if v not in r.data_vars:
                r[v] = (("time", "column"), np.full(qc.shape, np.nan), dict(datasets[0][v].attrs)
                        if v in datasets[0].data_vars else {})
            if f"{v}_missing" in QC_FLAGS:
                qc[np.isnan(r[v].values)] |= _bit(f"{v}_missing")
        r["qc"] = (("time", "column"), qc, _qc_attrs())
        parts.append(r[variables + ["qc"]])
    out = xr.concat(parts, dim="column", data_vars="all", coords="different", compat="equals",
                    join="exact", combine_attrs="drop")
    for v in variables:
        src = next(d for d in datasets if v in d.data_vars)
        out[v].attrs = {k: val for k, val in src[v].attrs.items()
                        if k not in ("source_column", "source_units")}
    depth = out["depth"].values
    sites = [str(d.attrs["site"]) for d in datasets]
    out.attrs = {
        "title": "soil respiration and drivers: " + ", ".join(sites),
        "Conventions": "CF-1.8", "site": ",".join(sites),
        "source": ",".join(str(d.attrs["source"]) for d in datasets),
        "synthetic": "yes" if any(d.attrs.get("synthetic") == "yes" for d in datasets) else "no",
        "step_seconds": int(datasets[0].attrs["step_seconds"]),
        "depth_m": float(depth[0]) if np.all(depth == depth[0]) else float("nan"),
        "time_convention": "END of each averaging interval",
    }
    for key in sorted({k for d in datasets for k in d.attrs if k.startswith("n_")}):
        out.attrs[key] = int(sum(int(d.attrs.get(key, 0)) for d in datasets))
    out.attrs["n_time"] = len(full)
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True in a 1-D boolean array."""
    m = np.r_[False, mask, False].astype(np.int8)
    d = np.diff(m)
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1))


def gap_report(ds: xr.Dataset) -> dict:
    """Missing values per variable and column, and each gap as (start, end, n_steps).

    Returns
    -------
    dict  ``{"step_seconds", "n_time", "start", "end", "counts": {attr n_*},
    "columns": {column: {var: {"n_missing", "n_gaps", "longest_gap_steps",
    "gaps": [(start_iso, end_iso, n_steps), ...]}}}}``; start/end are END timestamps of the
    first and last missing step.
    """
    t = _ns(ds["time"].values)
    iso = [s.isoformat() for s in t]
    report = {"step_seconds": int(ds.attrs["step_seconds"]), "n_time": len(t),
              "start": iso[0], "end": iso[-1],
              "counts": {k: int(v) for k, v in ds.attrs.items() if k.startswith("n_")},
              "columns": {}}
    for j, col in enumerate(ds["column"].values):
        per = {}
        for var in ds.data_vars:
            if var == "qc":
                continue
            miss = np.isnan(ds[var].values[:, j])
            runs = _runs(miss)
            per[var] = {"n_missing": int(miss.sum()), "n_gaps": len(runs),
                        "longest_gap_steps": max((b - a + 1 for a, b in runs), default=0),
                        "gaps": [(iso[a], iso[b], int(b - a + 1)) for a, b in runs]}
        report["columns"][str(col)] = per
    return report
