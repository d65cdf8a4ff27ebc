"""The canonical Dataset: QC flags, the one builder every reader ends in, checks, writing, combining and the gap report."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import DataError
from ..variables import CANONICAL_VARS
from .timeaxis import _ns, _regular_step
from .units import convert_units

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
#: Auxiliary (non-physical) variables a canonical Dataset may carry: the count of fine values
#: averaged into a resampled Rsoil (rsoil_couple.data.resample).
AUX_VARS: tuple[str, ...] = ("rsoil_n",)
# Bits that readers derive from the data itself (recomputed whenever a Dataset is re-built).
_DERIVED_BITS = (QC_FLAGS["tsoil_missing"] | QC_FLAGS["swc_missing"] | QC_FLAGS["precip_missing"]
                 | QC_FLAGS["rsoil_missing"] | QC_FLAGS["rsoil_negative"])


def _bit(name: str) -> np.uint8:
    return np.uint8(QC_FLAGS[name])

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
        out = check_physical_range(vals, var, where=where, declared_units=field.units)
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


def check_physical_range(values: np.ndarray, var: str, *, where: str, declared_units: str) -> np.ndarray:
    """The mask of finite `values` of `var` [canonical unit] outside its physical range; raises
    `DataError` naming `where`, the declared unit and the range when they are more than
    `MAX_OUT_OF_RANGE_FRACTION` of the finite values: then the file's units are wrong, not a few
    readings. Every input path (site readers, canonical NetCDF and CLM inputs of predict) applies it.
    """
    spec = CANONICAL_VARS[var]
    lo, hi = spec.physical_range
    vals = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(vals)
    with np.errstate(invalid="ignore"):
        out = finite & ((vals < lo) | (vals > hi))
    if out.sum() > MAX_OUT_OF_RANGE_FRACTION * finite.sum():
        raise DataError(
            f"{where} ({var}): {int(out.sum())} of {int(finite.sum())} values outside the "
            f"physical range {lo}..{hi} {spec.units} after converting from '{declared_units}' "
            f"(e.g. {vals[out][0]:g}); wrong units?")
    return out


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
        if var == "qc" or var in AUX_VARS:
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
        if var in AUX_VARS:
            enc[var] = {"dtype": "int16"}
        elif var != "qc":
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
        aux = []
        if any("rsoil_n" in x.data_vars for x in datasets) and "rsoil" in variables:
            n = (r["rsoil_n"].fillna(0).values if "rsoil_n" in r.data_vars
                 else np.isfinite(r["rsoil"].values))
            r["rsoil_n"] = (("time", "column"), n.astype(np.int16), next(
                dict(x["rsoil_n"].attrs) for x in datasets if "rsoil_n" in x.data_vars))
            aux = ["rsoil_n"]
        parts.append(r[variables + aux + ["qc"]])
    out = xr.concat(parts, dim="column", data_vars="all", coords="different", compat="equals",
                    join="exact", combine_attrs="drop")
    for v in variables:
        src = next(d for d in datasets if v in d.data_vars)
        out[v].attrs = {k: val for k, val in src[v].attrs.items()
                        if k not in ("source_column", "source_units")}
    if "rsoil_n" in out.data_vars:
        out["rsoil_n"].attrs = next(dict(d["rsoil_n"].attrs) for d in datasets if "rsoil_n" in d.data_vars)
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
            if var == "qc" or var in AUX_VARS:
                continue
            miss = np.isnan(ds[var].values[:, j])
            runs = _runs(miss)
            per[var] = {"n_missing": int(miss.sum()), "n_gaps": len(runs),
                        "longest_gap_steps": max((b - a + 1 for a, b in runs), default=0),
                        "gaps": [(iso[a], iso[b], int(b - a + 1)) for a, b in runs]}
        report["columns"][str(col)] = per
    return report
