"""Read CLM (CLM5/CTSM) history files into the canonical (time, column) drivers and fluxes.

What is read and how (facts from CTSM's `histFileMod.F90` and `initVerticalMod.F90`, see
`../shared/CLM.md` and `docs/predict.md`):

- one or many history files, concatenated along `time` in file order, each file's `time` decoded
  with its own `units` and `calendar` (cftime); `noleap`, `360_day`, ... stay cftime objects, the
  standard calendars become `datetime64`; the time stamp is the END of the averaging interval, which
  is what the canonical data use, so it is kept as it is; without `time`, `mcdate`/`mcsec` are used;
- layouts: a `column` dimension (`hist_dov2xy = .false.`, with `cols1d_lon`/`cols1d_lat` when
  present), `lndgrid` (single-point and unstructured runs) or `lat`/`lon` (gridded, stacked to
  columns row by row, land cells only when `landmask` is present) all become `column`;
- `TSOI` [K] on `levgrnd`, linearly interpolated in depth between the two node depths that bracket
  the requested depth;
- soil water: `H2OSOI` [mm3/mm3] on `levsoi` when present (CLM's volumetric water, liquid + ice);
  otherwise the LIQUID volumetric content `SOILLIQ / (rho_w * dz)` [kg m-2 -> m3 m-3] (`SOILICE/(rho_i dz)`
  added only with `include_ice=True`) — liquid water is what the dielectric probes the models were
  trained on measure; `dz` comes from the file's `DZSOI` when present, else from CLM's own layer
  structure: CLM5 node depths are layer mid-points, `zsoi(j) = (zisoi(j-1) + zisoi(j))/2`, so the
  interfaces follow from the nodes exactly (`zisoi(j) = 2 zsoi(j) - zisoi(j-1)`, `zisoi(0) = 0`);
- `RAIN` (+ `SNOW` with `include_snow=True`) [mm s-1] times each record's interval length (from
  `time_bounds` when present, else from successive time stamps) = mm per step;
- `SR`, `HR` [gC m-2 s-1] divided by 12.011e-6 = µmol CO2 m-2 s-1.

Anything missing or in units not listed here is refused with an error naming file, variable and the
expected unit.
"""
from __future__ import annotations

import datetime
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import cftime
import numpy as np
import xarray as xr

from ..variables import GC_PER_UMOL_CO2
from .ncopen import open_netcdf

#: 1 µmol CO2 m-2 s-1 in gC m-2 s-1 (molar mass of carbon, g mol-1, times 1e-6).
GC_PER_UMOL = GC_PER_UMOL_CO2
RHO_WATER = 1000.0  # kg m-3, CLM's denh2o
RHO_ICE = 917.0  # kg m-3, CLM's denice
STANDARD_CALENDARS = {"standard", "gregorian", "proleptic_gregorian"}

# Accepted spellings of the units each variable may declare, after removing blanks and '^'.
_K = {"k", "kelvin"}
_C = {"degc", "c", "celsius", "degreesc", "degree_celsius", "degrees_celsius"}
_MM_S = {"mm/s", "mms-1", "mm/sec", "kg/m2/s", "kgm-2s-1", "kg/m2s", "kg/m**2/s"}
_VOLUMETRIC = {"mm3/mm3", "m3/m3", "m3m-3", "mm3mm-3", "1", "fraction"}
_KG_M2 = {"kg/m2", "kgm-2", "kg/m**2", "mm"}
_GC = {"gc/m2/s", "gcm-2s-1", "gc/m**2/s", "gc/m2s"}
_UMOL = {"umolm-2s-1", "umol/m2/s", "µmolm-2s-1", "umolco2m-2s-1"}


def _norm_units(units: str) -> str:
    return str(units).strip().lower().replace(" ", "").replace("^", "")


def _units(da: xr.DataArray, file: str, name: str) -> str:
    if "units" not in da.attrs:
        raise ValueError(f"{file}: variable '{name}' has no 'units' attribute")
    return _norm_units(da.attrs["units"])


def _src(h: xr.Dataset, name: str) -> dict:
    """Attrs naming the history variable a driver comes from and its declared units (for messages)."""
    return {"source_variable": name, "source_units": str(h[name].attrs.get("units", "?"))}


def _unknown_units(file: str, name: str, units: str, expected: str) -> ValueError:
    return ValueError(f"{file}: variable '{name}' has units {units!r}; expected {expected}")


# ---------------------------------------------------------------------------------------------
# time
def decode_time(ds: xr.Dataset, file: str, calendar: str | None = None) -> np.ndarray:
    """Decoded time stamps (END of each record) of one history file.

    ds : a history file opened with `decode_times=False`.
    calendar : overrides the file's `calendar` attribute (for files whose declaration is wrong).
    Returns datetime64[ns] for the standard calendars, an object array of cftime dates otherwise.
    """
    if "time" in ds.variables:
        tv = ds["time"]
        units = tv.attrs.get("units")
        cal = calendar or tv.attrs.get("calendar", "standard")
        if not units:
            raise ValueError(f"{file}: variable 'time' has no 'units' attribute "
                             "(expected e.g. 'days since 2000-01-01')")
        values = np.asarray(tv.values, dtype="float64")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{file}: variable 'time' holds missing values")
        try:
            dates = cftime.num2date(values, units, calendar=cal, only_use_cftime_datetimes=True)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{file}: variable 'time': cannot decode units {units!r} with "
                             f"calendar {cal!r} ({exc}); expected CF units 'days since ...' and "
                             "a CF calendar (noleap, gregorian, ...)") from None
        dates = np.atleast_1d(dates)
    elif "mcdate" in ds.variables and "mcsec" in ds.variables:
        cal = calendar or ds["mcdate"].attrs.get("calendar", "noleap")
        ymd = np.asarray(ds["mcdate"].values).astype("int64")
        sec = np.asarray(ds["mcsec"].values).astype("int64")
        try:
            dates = np.array([cftime.datetime(int(d // 10000), int(d // 100 % 100), int(d % 100),
                                              calendar=cal) + datetime.timedelta(seconds=int(s))
                              for d, s in zip(ymd, sec)], dtype=object)
        except ValueError as exc:
            raise ValueError(f"{file}: variables 'mcdate'/'mcsec': cannot decode ({exc})") from None
    else:
        raise ValueError(f"{file}: no time variable: expected 'time' (days since ...) or "
                         "'mcdate' (YYYYMMDD) and 'mcsec' (s)")
    if cal.lower() in STANDARD_CALENDARS:
        return np.array([np.datetime64(d.isoformat(), "ns") for d in dates], dtype="datetime64[ns]")
    return dates


def interval_seconds(time: np.ndarray, bounds: np.ndarray | None = None) -> np.ndarray:
    """Length of each record's averaging interval [s].

    From `time_bounds` [days, shape (time, 2)] when given, else the distance to the previous stamp
    (the first record takes the second's length).
    """
    if bounds is not None:  # days -> s, rounded to ms (bounds in float days carry ~1e-10 s noise)
        return np.round(np.asarray((bounds[:, 1] - bounds[:, 0]) * 86400.0, dtype="float64"), 3)
    if len(time) < 2:
        raise ValueError("one time record and no time_bounds: the step length is unknown")
    if np.issubdtype(np.asarray(time).dtype, np.datetime64):
        d = np.diff(time) / np.timedelta64(1, "s")
    else:
        d = np.array([(b - a).total_seconds() for a, b in zip(time[:-1], time[1:])])
    return np.round(np.concatenate([d[:1], d]), 3)


def regular_step(seconds: np.ndarray, what: str) -> float:
    """The common step [s] of `seconds`, or ValueError naming `what` when the steps differ."""
    step = float(np.median(seconds))
    if step <= 0 or not np.allclose(seconds, step, rtol=0, atol=1.0):
        raise ValueError(f"{what}: time steps are irregular ({sorted(set(seconds.tolist()))[:5]} s); "
                         "expected one fixed step")
    return step


# ---------------------------------------------------------------------------------------------
# vertical structure
def layer_interfaces(nodes: Sequence[float]) -> np.ndarray:
    """Interface depths `zisoi(0:n)` [m] of CLM soil layers from their node depths `zsoi(1:n)` [m].

    CLM5's layer structures define nodes as layer mid-points (`initVerticalMod.F90`:
    `zsoi(j) = 0.5*(zisoi(j-1) + zisoi(j))`), so `zisoi(j) = 2 zsoi(j) - zisoi(j-1)` recovers them.
    CLM4.5's exponential nodes (`zsoi(j) = 0.025*(exp(0.5*(j-0.5)) - 1)`) are not mid-points; they
    are recognised and their interfaces put half-way between nodes, as CLM4.5 does.
    """
    z = np.asarray(nodes, dtype="float64")
    zi = np.zeros(len(z) + 1)
    clm45 = 0.025 * (np.exp(0.5 * (np.arange(1, len(z) + 1) - 0.5)) - 1.0)
    if len(z) > 1 and np.allclose(z, clm45, rtol=1e-3, atol=1e-5):
        zi[1:-1] = 0.5 * (z[:-1] + z[1:])
        zi[-1] = z[-1] + 0.5 * (z[-1] - z[-2])
        return zi
    for j, zj in enumerate(z):
        zi[j + 1] = 2.0 * zj - zi[j]
    if not np.all(np.diff(zi) > 0):
        raise ValueError(f"soil node depths {z.tolist()} are neither CLM5 layer mid-points nor "
                         "CLM4.5 exponential nodes; give the layer thicknesses (DZSOI)")
    return zi


def _bracket(levels: np.ndarray, depth_m: float, file: str, name: str, dim: str):
    """Indices (k, k+1) and the weight of level k for linear interpolation to `depth_m`."""
    z = np.asarray(levels, dtype="float64")
    if not np.all(np.diff(z) > 0):
        raise ValueError(f"{file}: coordinate '{dim}' of '{name}' is not increasing")
    if not z[0] <= depth_m <= z[-1]:
        raise ValueError(f"{file}: variable '{name}': depth {depth_m} m is outside the node depths "
                         f"{z[0]:g}..{z[-1]:g} m of '{dim}'")
    k = int(min(np.searchsorted(z, depth_m, side="right") - 1, len(z) - 2))
    w = float((z[k + 1] - depth_m) / (z[k + 1] - z[k]))
    return k, w


def _at_depth(da: xr.DataArray, dim: str, k: int, w: float) -> xr.DataArray:
    return w * da.isel({dim: k}, drop=True) + (1.0 - w) * da.isel({dim: k + 1}, drop=True)


# ---------------------------------------------------------------------------------------------
# opening (under ncopen.OPEN_LOCK: `open_netcdf`) and layouts
def _as_paths(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = [os.fspath(p) for p in paths]
    if not out:
        raise ValueError("no CLM history file given")
    for p in out:
        if not Path(p).is_file():
            raise FileNotFoundError(f"{p}: CLM history file not found")
    return out


def _to_columns(ds: xr.Dataset, file: str) -> xr.Dataset:
    """Rename/stack the horizontal layout of one history file to a `column` dimension."""
    if "column" in ds.dims:
        coords = {}
        for src, dst in (("cols1d_lon", "lon"), ("cols1d_lat", "lat")):
            if src in ds.variables:
                coords[dst] = ("column", np.asarray(ds[src].values, dtype="float64"))
        ds = ds.drop_vars([v for v in ds.variables if str(v).startswith("cols1d_")])
        return ds.assign_coords(coords)
    if "lndgrid" in ds.dims:
        return ds.rename({"lndgrid": "column"})
    if "lat" in ds.dims and "lon" in ds.dims:
        land = None
        if "landmask" in ds.variables:
            land = np.asarray(ds["landmask"].values).reshape(-1) > 0
        ds = ds.drop_vars([v for v in ("landmask", "landfrac", "area") if v in ds.variables])
        ds = ds.stack(column=("lat", "lon"), create_index=False)
        if land is not None:
            ds = ds.isel(column=np.flatnonzero(land))
        return ds
    raise ValueError(f"{file}: no horizontal dimension: expected 'column', 'lndgrid' or "
                     f"'lat'/'lon', found {sorted(map(str, ds.dims))}")


def open_history(paths, variables: Sequence[str], *, optional: Sequence[str] = (),
                 calendar: str | None = None) -> xr.Dataset:
    """Open one or many CLM history files as one lazy dataset on (time, [level], column).

    variables : names that every file must hold (a missing one is an error naming the file).
    optional : names read when present (in every file).
    Returns the variables with CF masking applied (1e36 fill -> NaN), dask-backed, a decoded `time`
    coordinate, `interval_s` (time) [s] and attrs `calendar`, `source_files`.
    """
    files = _as_paths(paths)
    parts, cal_seen = [], set()
    for f in files:
        raw = open_netcdf(f, decode_times=False, chunks={})
        missing = [v for v in variables if v not in raw.variables]
        if missing:
            raw.close()
            raise ValueError(f"{f}: missing variable(s) {missing} (a CLM history file with "
                             f"{list(variables)} is needed)")
        names = list(variables) + [v for v in optional if v in raw.variables]
        time = decode_time(raw, f, calendar)
        cal_seen.add(calendar or raw["time"].attrs.get("calendar", "standard")
                     if "time" in raw.variables else calendar or "noleap")
        bounds = None
        bname = raw["time"].attrs.get("bounds") if "time" in raw.variables else None
        if bname and bname in raw.variables:
            bounds = np.asarray(raw[bname].values, dtype="float64")
        secs = interval_seconds(time, bounds)
        keep = names + [c for c in ("cols1d_lon", "cols1d_lat", "landmask") if c in raw.variables]
        part = raw[keep].drop_vars([c for c in ("time",) if c in raw.coords])
        part = part.assign_coords(time=("time", time)).assign(interval_s=("time", secs))
        part = _to_columns(part, f)
        part.attrs = {"source_file": f, "title": raw.attrs.get("site", raw.attrs.get("title", ""))}
        parts.append(part)
    if len({p.sizes.get("column") for p in parts}) != 1:
        raise ValueError(f"{files}: the files have different numbers of columns")
    ds = parts[0] if len(parts) == 1 else xr.concat(
        parts, dim="time", data_vars="minimal", coords="minimal", compat="override", join="override")
    t = ds["time"].values
    if len(t) > 1 and not all(a < b for a, b in zip(t[:-1], t[1:])):
        raise ValueError(f"{files}: variable 'time' is not strictly increasing across the files "
                         "(overlapping or unordered history files)")
    ds.attrs = {"calendar": sorted(cal_seen)[0], "source_files": list(files),
                "site": parts[0].attrs["title"] or Path(files[0]).stem}
    return ds


# ---------------------------------------------------------------------------------------------
# public readers
def read_drivers(paths, depth_m: float, *, calendar: str | None = None, include_snow: bool = False,
                 include_ice: bool = False, columns: Sequence[int] | None = None) -> xr.Dataset:
    """Canonical drivers from CLM history files.

    paths : one history file or a list (concatenated along time, in order).
    depth_m : depth the drivers are wanted at (the model's `depth_m`). [m]
    calendar : override the files' calendar attribute.
    include_snow : add `SNOW` to `RAIN` (liquid-water equivalent) in `precip`.
    include_ice : add `SOILICE` to `SOILLIQ` when soil water comes from them.
    columns : indices of the columns to keep.
    Returns a lazy Dataset on (time, column): `tsoil` [degC], `swc` [m3 m-3], `precip` [mm per step];
    attrs `step_seconds`, `depth_m`, `site`, `synthetic` (False), `calendar`, and `tsoil_source`,
    `swc_source`, `precip_source` stating exactly what was taken.
    """
    files = _as_paths(paths)
    with open_netcdf(files[0], decode_times=False) as first:
        names = set(map(str, first.variables))
    has_h2osoi = "H2OSOI" in names
    water = ["H2OSOI"] if has_h2osoi else ["SOILLIQ"] + (["SOILICE"] if include_ice else [])
    need = ["TSOI", "RAIN"] + water + (["SNOW"] if include_snow else [])
    if not has_h2osoi and "SOILLIQ" not in names:
        raise ValueError(f"{files[0]}: missing variable 'H2OSOI' (mm3/mm3 on levsoi) and its "
                         "substitute 'SOILLIQ' (kg/m2 on levsoi): no soil water")
    optional = [] if has_h2osoi else ["DZSOI"]
    h = open_history(files, need, optional=optional, calendar=calendar)
    if columns is not None:
        h = h.isel(column=list(columns))
    f = files[0]

    # soil temperature
    u = _units(h["TSOI"], f, "TSOI")
    if "levgrnd" not in h["TSOI"].dims:
        raise ValueError(f"{f}: variable 'TSOI' is not on 'levgrnd' (dims {h['TSOI'].dims})")
    k, w = _bracket(h["levgrnd"].values, depth_m, f, "TSOI", "levgrnd")
    tsoi = _at_depth(h["TSOI"], "levgrnd", k, w)
    if u in _K:
        tsoil = tsoi - 273.15
    elif u in _C:
        tsoil = tsoi
    else:
        raise _unknown_units(f, "TSOI", h["TSOI"].attrs["units"], "'K' (or 'degC')")
    zg = h["levgrnd"].values
    tsoil_source = (f"TSOI linearly interpolated to {depth_m:g} m between levgrnd nodes "
                    f"{zg[k]:g} m (weight {w:.3f}) and {zg[k + 1]:g} m (weight {1 - w:.3f})")

    # soil water
    if has_h2osoi:
        u = _units(h["H2OSOI"], f, "H2OSOI")
        if u not in _VOLUMETRIC:
            raise _unknown_units(f, "H2OSOI", h["H2OSOI"].attrs["units"], "'mm3/mm3' (or 'm3 m-3')")
        lev = "levsoi" if "levsoi" in h["H2OSOI"].dims else "levgrnd"
        k, w = _bracket(h[lev].values, depth_m, f, "H2OSOI", lev)
        swc = _at_depth(h["H2OSOI"], lev, k, w)
        swc_source = (f"H2OSOI (liquid + ice) linearly interpolated to {depth_m:g} m between "
                      f"{lev} nodes {h[lev].values[k]:g} m and {h[lev].values[k + 1]:g} m")
    else:
        for v in water:
            u = _units(h[v], f, v)
            if u not in _KG_M2:
                raise _unknown_units(f, v, h[v].attrs["units"], "'kg/m2'")
        lev = "levsoi" if "levsoi" in h["SOILLIQ"].dims else "levgrnd"
        z = h[lev].values
        if "DZSOI" in h.variables:
            dz_all = np.asarray(h["DZSOI"].values, dtype="float64")
            dz_all = dz_all.reshape(dz_all.shape[0], -1)[:, 0] if dz_all.ndim > 1 else dz_all
            dz_from = "the file's DZSOI"
        else:
            dz_all = np.diff(layer_interfaces(z))
            dz_from = "CLM's layer interfaces (node depths are layer mid-points)"
        k, w = _bracket(z, depth_m, f, "SOILLIQ", lev)
        theta = h["SOILLIQ"] / (RHO_WATER * xr.DataArray(dz_all[: len(z)], dims=(lev,)))
        if include_ice:
            theta = theta + h["SOILICE"] / (RHO_ICE * xr.DataArray(dz_all[: len(z)], dims=(lev,)))
        swc = _at_depth(theta, lev, k, w)
        swc_source = (f"{'(SOILLIQ/rho_w + SOILICE/rho_i)' if include_ice else 'SOILLIQ/rho_w'}"
                      f"/dz with dz from {dz_from} (layers at {z[k]:g} m: dz {dz_all[k]:g} m, "
                      f"{z[k + 1]:g} m: dz {dz_all[k + 1]:g} m), linearly interpolated to {depth_m:g} m")

    # precipitation
    prec = None
    for v in ["RAIN"] + (["SNOW"] if include_snow else []):
        u = _units(h[v], f, v)
        if u not in _MM_S:
            raise _unknown_units(f, v, h[v].attrs["units"], "'mm/s' (or 'kg/m2/s')")
        prec = h[v] if prec is None else prec + h[v]
    precip = prec * h["interval_s"]
    secs = h["interval_s"].values
    step = float(np.median(secs)) if np.allclose(secs, np.median(secs), atol=1.0) else None

    out = xr.Dataset(
        {
            "tsoil": tsoil.astype("float32").assign_attrs(units="degC", long_name="soil temperature",
                                                           source=tsoil_source, **_src(h, "TSOI")),
            "swc": swc.astype("float32").assign_attrs(units="m3 m-3", long_name="volumetric soil water",
                                                      source=swc_source, **_src(h, water[0])),
            "precip": precip.astype("float32").assign_attrs(
                units="mm", long_name="precipitation per step", **_src(h, "RAIN"),
                source="RAIN" + (" + SNOW" if include_snow else "") + " [mm s-1] x interval length [s]"),
        },
        coords={c: h[c] for c in ("lat", "lon") if c in h.coords},
    )
    out = out.assign_coords(time=h["time"], column=("column", np.arange(h.sizes["column"])))
    out.attrs = {"step_seconds": step, "depth_m": float(depth_m), "site": h.attrs["site"],
                 "synthetic": 0, "calendar": h.attrs["calendar"], "source": "CLM history",
                 "source_files": ", ".join(files), "tsoil_source": tsoil_source,
                 "swc_source": swc_source}
    if step is None:
        del out.attrs["step_seconds"]
    return out


#: Carbon-flux variables read from history files when present: CLM's own, and those the project's
#: Fortran host adds (its CLM-structure baseline and the flux rsoil_couple returned).
FLUX_VARS = {"SR": "soil respiration (HR + root respiration)", "HR": "heterotrophic respiration",
             "HR_Q10": "heterotrophic respiration of the host's CLM-structure Q10 baseline",
             "RSC_RSOIL": "soil respiration returned by rsoil_couple inside the host"}


def read_fluxes(paths, *, calendar: str | None = None,
                columns: Sequence[int] | None = None) -> xr.Dataset:
    """The carbon fluxes of `FLUX_VARS` the files hold (at least `SR` or `HR`), in µmol CO2 m-2 s-1.

    Returns a lazy Dataset on (time, column) with one variable per flux, named in lower case
    (`sr`, `hr`, `hr_q10`, `rsc_rsoil`) [umol m-2 s-1], and `interval_s` (time) [s], the length of
    each record's averaging interval ending at its time stamp.
    """
    files = _as_paths(paths)
    with open_netcdf(files[0], decode_times=False) as first:
        present = [v for v in FLUX_VARS if v in first.variables]
    if not {"SR", "HR"} & set(present):
        raise ValueError(f"{files[0]}: missing variables 'SR' and 'HR' (gC/m^2/s): no carbon fluxes "
                         "to compare")
    h = open_history(files, present, calendar=calendar)
    if columns is not None:
        h = h.isel(column=list(columns))
    out = {}
    for v in present:
        u = _units(h[v], files[0], v)
        if u in _GC:
            da = h[v] / GC_PER_UMOL
        elif u in _UMOL:
            da = h[v]
        else:
            raise _unknown_units(files[0], v, h[v].attrs["units"], "'gC/m^2/s'")
        out[v.lower()] = da.astype("float64").assign_attrs(units="umol m-2 s-1",
                                                           long_name=f"{v}: {FLUX_VARS[v]}, as CO2")
    ds = xr.Dataset(out).assign(interval_s=h["interval_s"])
    ds = ds.assign_coords(column=("column", np.arange(h.sizes["column"])))
    ds.attrs = {"calendar": h.attrs["calendar"], "source_files": ", ".join(files),
                "site": h.attrs["site"]}
    return ds


def is_history_file(path: str | os.PathLike) -> bool:
    """True when `path` is a NetCDF file that looks like a CLM history file (has `TSOI`, `SR` or `HR`)."""
    with open_netcdf(path, decode_times=False) as ds:
        return any(v in ds.variables for v in ("TSOI", "SR", "HR"))
