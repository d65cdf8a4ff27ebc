"""CTest checks of the CLM-like host (fortran_shim/host): each case runs the host and checks numbers.

    python host_checks.py CASE --work DIR --host EXE --model MODEL [--mpiexec MPIEXEC] [--shared-data D]

Cases: setup (drivers + forcing files), agree_lagged / agree_persistence / agree_supplied (LSTM
columns == rsoil_couple.emulate, Q10 columns == rsoil_couple.q10.clm_structure), scalar
(mass-conserving coupling), swap (a mask over half the columns changes exactly those columns),
restart (stopped halfway + restarted == unbroken, bit for bit), mpi (2 ranks == 1 rank), errors
(missing model, bad namelist value, forcing without TSOI; the Q10 fallback), F15_nstep / F15_pool
(issue 10: a restart file's nstep must match the coupler state's steps_taken, its carbon pools must be
finite and >= 0), F16_missing_h2osoi (issue 10: missing H2OSOI stays missing), streaming_agree and
streaming_mpi (issue 12: with --model a streaming model file, the agree and mpi checks, in their own
run folders), and
`expect-fail --match REGEX -- CMD...` (CMD exits non-zero and prints one line matching REGEX).
Every case prints the figures it checked; a failed check exits 1.

Drivers: US-Hn1 2019 (``../shared/data``) through `rsoil_couple.data.read_site`, the first
RSOIL_HOST_DAYS days (default 12; the whole season: 106), replicated to 8 columns with ±2 K / ±20 % perturbations
(`rsoil_couple.forcing.replicate_columns`); the synthetic site when the real data are absent.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import xarray as xr

from rsoil_couple.core.host import write_namelist

GC_PER_UMOL = 12.011e-6
NCOL = 8
SOILC_INIT = 5000.0
# Q10 columns: Fortran and Python evaluate the same double-precision formula on drivers that differ
# only by the depth interpolation's rounding (~1e-16 relative). Checked as max |diff| / max |reference|:
# where the soil is so dry that w_scalar -> 0 (psi -> minpsi), log(minpsi/psi) cancels and a pointwise
# relative difference grows (measured up to ~5e-12 at w_scalar ~ 6e-6), which is printed as well.
Q10_TOL = 1e-12
# LSTM columns: the core runs the network in float32 in both cases; the documented bound.
LSTM_RTOL = 1e-5

FAILURES: list[str] = []


def check(ok: bool, what: str) -> None:
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        FAILURES.append(what)


def scaled_diff(a: np.ndarray, b: np.ndarray) -> tuple[float, str]:
    """'max |a - b| / max |b|' and the pointwise max relative difference, for messages; the first is
    returned as a float too (inf if the NaN patterns differ).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not np.array_equal(np.isfinite(a), np.isfinite(b)):
        return float("inf"), "NaN patterns differ"
    ok = np.isfinite(a)
    d = float(np.max(np.abs(a[ok] - b[ok])) / np.max(np.abs(b[ok]))) if ok.any() else 0.0
    return d, f"max|diff|/max|ref| {d:.1e}, pointwise max rel diff {max_rel(a, b):.1e}"


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    """Max |a - b| / max(|b|, tiny) over finite pairs; inf if the NaN patterns differ."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not np.array_equal(np.isfinite(a), np.isfinite(b)):
        return float("inf")
    ok = np.isfinite(a)
    if not ok.any():
        return 0.0
    return float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1e-30)))


# ------------------------------------------------------------------------------------------------
# inputs and runs
class Case:
    def __init__(self, args):
        self.work = Path(args.work).resolve()
        self.host = args.host
        self.model = str(Path(args.model).resolve())
        self.mpiexec = args.mpiexec
        self.setup_file = self.work / "setup.json"

    @property
    def meta(self) -> dict:
        return json.loads(self.setup_file.read_text())

    def drivers(self) -> xr.Dataset:
        """The canonical drivers the forcing file was written from."""
        from rsoil_couple.data import read_canonical_netcdf
        return read_canonical_netcdf(self.work / "drivers.nc").load()

    def namelist(self, path: Path, **values) -> Path:
        m = self.meta
        nml = {"model_file": self.model, "forcing_file": str(self.work / "forcing.nc"),
               "policy": "lagged", "coupling": "flux", "lstm_columns": "stride", "lstm_stride": 2,
               "k_baseline": m["k"], "sand": m["sand"], "clay": m["clay"],
               "soilc_init": SOILC_INIT, "num_threads": 1,
               "hist_file": str(path.with_suffix(".h0.nc"))}
        nml.update(values)
        return write_namelist(path, **nml)

    def run(self, name: str, ranks: int = 0, expect_ok: bool = True, **values):
        """Run the host with a namelist made of the defaults and `values`; returns (proc, history)."""
        d = self.work / name
        d.mkdir(parents=True, exist_ok=True)
        nml = self.namelist(d / f"{name}.nml", **values)
        cmd = [self.host, str(nml)]
        if ranks:
            cmd = [self.mpiexec, "--oversubscribe", "-np", str(ranks)] + cmd
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                   OMP_NUM_THREADS="1")
        p = subprocess.run(cmd, cwd=d, capture_output=True, text=True, env=env)
        if expect_ok and p.returncode != 0:
            sys.exit(f"host run {name} failed (exit {p.returncode}):\n{p.stdout}\n{p.stderr}")
        hist = Path(values.get("hist_file", d / f"{name}.h0.nc"))
        return p, hist

    def clm_q10_gc(self, ds: xr.Dataset) -> np.ndarray:
        from rsoil_couple.baselines.q10 import clm_structure
        m = self.meta
        return clm_structure(ds["tsoil"].values, ds["swc"].values, m["k"], m["sand"], m["clay"]) * GC_PER_UMOL


def read_hist(path: Path) -> dict[str, np.ndarray]:
    """All variables of a history file as arrays (time, column) in the file's order, fill -> NaN."""
    import netCDF4
    out = {}
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_mask(False)
        for name, v in nc.variables.items():
            a = v[...]
            if a.dtype.kind == "f":
                a = np.where(a >= 1e35, np.nan, a)
            out[name] = a
    return out


def setup(case: Case, args) -> None:
    """Drivers (canonical NetCDF), forcing files with and without TSOI, baseline parameters."""
    from rsoil_couple import data
    from rsoil_couple.baselines import q10
    from rsoil_couple.core import forcing
    case.work.mkdir(parents=True, exist_ok=True)
    days = int(os.environ.get("RSOIL_HOST_DAYS", "12"))
    src = Path(args.shared_data) / "US-Hn1" / "US-Hn1_2019_30min.csv"
    if src.is_file():
        ds = data.read_site(src)
    else:
        from rsoil_couple.data.synthetic import synthetic_site
        print(f"note: {src} not found; using the synthetic site")
        ds = synthetic_site(days=days)
    ds = ds.isel(time=slice(0, days * 48))[["tsoil", "swc", "precip", "rsoil", "qc"]]
    fit = q10.fit_clm_structure(ds["tsoil"].values, ds["swc"].values, ds["rsoil"].values)
    cols = forcing.replicate_columns(ds, NCOL, tsoil_spread_k=2.0, swc_spread=0.2)
    data.write_canonical(cols, case.work / "drivers.nc")
    forcing.write_forcing(cols, case.work / "forcing.nc", tsoi_gradient_k_per_m=-6.0)
    no_tsoi = xr.open_dataset(case.work / "forcing.nc", decode_times=False).drop_vars("TSOI")
    no_tsoi.to_netcdf(case.work / "forcing_no_tsoi.nc")
    meta = {"source": str(ds.attrs.get("source")), "site": str(ds.attrs.get("site")),
            "steps": int(ds.sizes["time"]), "ncol": NCOL,
            "k": fit.k, "sand": fit.sand, "clay": fit.clay}
    case.setup_file.write_text(json.dumps(meta, indent=1))
    print(f"setup: {meta}")


# ------------------------------------------------------------------------------------------------
# cases
def agree(case: Case, policy: str, tag: str = "") -> None:
    """LSTM columns == rsoil_couple.emulate (same policy); Q10 columns == q10.clm_structure."""
    from rsoil_couple import emulate
    ds = case.drivers()
    _, hpath = case.run(f"{tag}agree_{policy}", policy=policy)
    h = read_hist(hpath)
    mask = h["RSC_MASK"].astype(bool)
    em = emulate(case.model, ds, policy, mask=mask)
    em_gc = em["rsoil"].transpose("time", "column").values * GC_PER_UMOL
    em_status = em["status"].transpose("time", "column").values
    status = h["RSC_STATUS"]
    lstm = (status <= 1) & mask[None, :]
    n_lstm = int(lstm.sum())
    check(n_lstm > 0.5 * mask.sum() * status.shape[0],
          f"{policy}: the LSTM ran in {n_lstm} column-steps of {int(mask.sum()) * status.shape[0]} masked-in")
    check(np.array_equal(status, em_status), f"{policy}: status == emulate status in every column-step")
    r = max_rel(h["RSC_RSOIL"][lstm], em_gc[lstm])
    check(r <= LSTM_RTOL, f"{policy}: LSTM columns: host vs rsoil_couple.emulate max rel diff {r:.2e} "
          f"(<= {LSTM_RTOL:g}) over {n_lstm} column-steps")
    check(np.array_equal(h["HR"][lstm], h["RSC_RSOIL"][lstm]), f"{policy}: HR is the LSTM flux where it ran")
    q10 = case.clm_q10_gc(ds)
    r, txt = scaled_diff(h["HR"][~lstm], q10[~lstm])
    check(r <= Q10_TOL, f"{policy}: Q10 column-steps: HR vs rsoil_couple.q10.clm_structure: {txt} "
          f"(<= {Q10_TOL:g}) over {int((~lstm).sum())} column-steps")
    r, txt = scaled_diff(h["HR_Q10"], q10)
    check(r <= Q10_TOL, f"{policy}: HR_Q10 (all columns) vs clm_structure: {txt}")
    check(np.array_equal(h["SR"], h["HR"]), f"{policy}: SR == HR (no root respiration)")


def scalar(case: Case) -> None:
    """coupling='scalar': HR = CLM rate x the core's respiration scalar; carbon mass balance."""
    from rsoil_couple import emulate
    ds = case.drivers()
    _, hpath = case.run("scalar", policy="persistence", coupling="scalar")
    h = read_hist(hpath)
    mask = h["RSC_MASK"].astype(bool)
    em = emulate(case.model, ds, "persistence", mask=mask)
    lstm = (h["RSC_STATUS"] <= 1) & mask[None, :]
    check(lstm.sum() > 0, f"scalar: the LSTM ran in {int(lstm.sum())} column-steps")
    r = max_rel(h["RSC_SCALAR"][lstm], em["resp_scalar"].transpose("time", "column").values[lstm])
    check(r <= LSTM_RTOL, f"scalar: respiration scalar vs emulate max rel diff {r:.2e}")
    r = max_rel(h["HR"][lstm], (h["HR_Q10"] * h["RSC_SCALAR"])[lstm])
    check(r == 0.0, f"scalar: HR == HR_Q10 * RSC_SCALAR where the LSTM ran (max rel diff {r:.1e})")
    check(np.array_equal(h["HR"][~lstm], h["HR_Q10"][~lstm]), "scalar: HR == HR_Q10 elsewhere")
    dt = float(np.round((h["time_bounds"][0, 1] - h["time_bounds"][0, 0]) * 86400.0, 3))
    expect = SOILC_INIT - np.cumsum(np.nan_to_num(h["HR"]) * dt, axis=0)
    r = max_rel(h["TOTSOMC"], expect)
    check(r <= 1e-12, f"scalar: carbon mass balance TOTSOMC == init - cumsum(HR dt), max rel diff {r:.1e}")


def swap(case: Case) -> None:
    """A mask over half of the columns changes exactly those columns (against an all-Q10 run)."""
    _, hq = case.run("swap_none", lstm_columns="none", model_file="")
    _, hh = case.run("swap_half", lstm_columns="stride", policy="persistence")
    q, h = read_hist(hq), read_hist(hh)
    mask = h["RSC_MASK"].astype(bool)
    check(mask.sum() == NCOL // 2, f"swap: {int(mask.sum())} of {NCOL} columns on the LSTM: "
          f"{[int(i) + 1 for i in np.flatnonzero(mask)]}")
    changed = np.any(q["HR"] != h["HR"], axis=0)
    check(np.array_equal(changed, mask), f"swap: columns whose HR changed {[int(i) + 1 for i in np.flatnonzero(changed)]} "
          "== the masked-in columns")
    frac = float(np.mean(q["HR"][:, mask] != h["HR"][:, mask]))
    print(f"swap: masked-in columns differ in {100 * frac:.1f} % of their steps (the rest: spin-up)")
    check(np.array_equal(q["HR"][:, ~mask], h["HR"][:, ~mask]),
          "swap: the other columns are bit-for-bit the all-Q10 run")
    from rsoil_couple.data.clm import read_fluxes
    back = read_fluxes(hh).load()
    r = max_rel(back["hr"].values * GC_PER_UMOL, h["HR"])
    check(r <= 1e-12 and back.attrs["site"] == case.meta["site"],
          f"swap: rsoil_couple.clm.read_fluxes reads the history (HR max rel diff {r:.1e}, "
          f"site {back.attrs['site']!r})")


def compare_hist(a: dict, b: dict, what: str, skip: tuple = ()) -> None:
    names = sorted(set(a) - set(skip))
    bad = [n for n in names if n not in b or not np.array_equal(a[n], b[n], equal_nan=a[n].dtype.kind == "f")]
    check(not bad, f"{what}: all {len(names)} history variables bit-for-bit equal"
          + (f"; differ: {bad}" if bad else ""))


def concat(parts: list[dict]) -> dict:
    out = {}
    for name, v in parts[0].items():
        if name in ("levgrnd", "RSC_MASK"):
            out[name] = v
        else:   # time is the last Fortran = first NetCDF dimension
            out[name] = np.concatenate([p[name] for p in parts], axis=0)
    return out


def restart(case: Case) -> None:
    """Stop halfway, restart from the restart file: the history equals the unbroken run's."""
    steps = case.meta["steps"]
    half = steps // 2
    for policy, coupling in (("lagged", "flux"), ("persistence", "scalar")):
        tag = f"restart_{policy}"
        _, full = case.run(f"{tag}_full", policy=policy, coupling=coupling)
        rfile = str(case.work / f"{tag}_a" / "r.nc")
        _, first = case.run(f"{tag}_a", policy=policy, coupling=coupling, stop_step=half,
                            write_restart=True, restart_file_out=rfile)
        _, second = case.run(f"{tag}_b", policy=policy, coupling=coupling, restart=True,
                             restart_file_in=rfile)
        a, b = read_hist(first), read_hist(second)
        check(a["time"].size == half and b["time"].size == steps - half,
              f"{tag}: {a['time'].size} + {b['time'].size} steps around the restart")
        compare_hist(read_hist(full), concat([a, b]), f"{tag} ({coupling}): unbroken vs restarted at step {half}")


def mpi(case: Case, tag: str = "") -> None:
    """2 MPI ranks (uneven split: 7 columns as 4 + 3) give the history of 1 rank, bit for bit, with the
    host's default fixed-size forward calls (chunk_size = 64: the core pads each call, so a column's
    value does not depend on which columns share it) and with one column per call; also across a
    2-rank restart.
    """
    if not case.mpiexec:
        sys.exit("mpi: no --mpiexec")
    for chunk in (64, 1):
        common = dict(policy="persistence", ncol=7, chunk_size=chunk)
        p1, one = case.run(f"{tag}mpi_1_c{chunk}", **common)
        p2, two = case.run(f"{tag}mpi_2_c{chunk}", ranks=2, **common)
        print(p1.stdout.strip())
        print(p2.stdout.strip())
        check("ranks=2" in p2.stdout, "mpi: the host ran on 2 ranks")
        compare_hist(read_hist(one), read_hist(two), f"mpi (chunk_size={chunk}): 2 ranks vs 1 rank")
    steps = case.meta["steps"]
    rfile = str(case.work / f"{tag}mpi_2r_a" / "r.nc")
    _, a = case.run(f"{tag}mpi_2r_a", ranks=2, stop_step=steps // 2, write_restart=True, restart_file_out=rfile,
                    **common)
    _, b = case.run(f"{tag}mpi_2r_b", ranks=2, restart=True, restart_file_in=rfile, **common)
    compare_hist(read_hist(one), concat([read_hist(a), read_hist(b)]),
                 "mpi: 2 ranks stopped halfway + restarted vs 1 rank unbroken")
    p, _ = case.run(f"{tag}mpi_1r", restart=True, restart_file_in=rfile, expect_ok=False, **common)
    one_line_error(p, r"holds the coupler state of 2 MPI ranks; this run has 1", "mpi: restart with other rank count")


def one_line_error(p: subprocess.CompletedProcess, pattern: str, what: str) -> None:
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    ok = p.returncode != 0 and len(lines) == 1 and re.search(pattern, lines[0]) is not None
    check(ok, f"{what}: exit {p.returncode}, stderr {lines!r}")


def errors(case: Case) -> None:
    """The three error cases end the host with one line naming the problem; the Q10 fallback runs."""
    missing = str(case.work / "errors" / "no_such_model.pt")
    p, _ = case.run("err_model", expect_ok=False, model_file=missing)
    one_line_error(p, r"^clm_like_host: error: .*no_such_model\.pt", "missing model file")
    p, _ = case.run("err_namelist", expect_ok=False, policy="sideways")
    one_line_error(p, r"^clm_like_host: error: namelist &rsoil_host: policy = 'sideways' is not one of",
                   "bad namelist value")
    p, _ = case.run("err_namelist_key", expect_ok=False, polcy="lagged")
    one_line_error(p, r"^clm_like_host: error: namelist file .*polcy", "unknown namelist key")
    p, _ = case.run("err_tsoi", expect_ok=False, forcing_file=str(case.work / "forcing_no_tsoi.nc"))
    one_line_error(p, r"^clm_like_host: error: forcing file .*forcing_no_tsoi\.nc' has no variable 'TSOI'",
                   "forcing without TSOI")
    # the same missing model with on_coupler_error = 'q10': a warning, then Q10 in every column
    p, hpath = case.run("err_fallback", expect_ok=False, model_file=missing, on_coupler_error="q10")
    warn = [ln for ln in p.stderr.splitlines() if ln.strip()]
    check(p.returncode == 0 and len(warn) == 1 and "no_such_model.pt" in warn[0] and "Q10" in warn[0],
          f"fallback: exit {p.returncode}, one warning line {warn!r}")
    if p.returncode == 0:
        h = read_hist(hpath)
        r, txt = scaled_diff(h["HR"], case.clm_q10_gc(case.drivers()))
        check(r <= Q10_TOL and np.all(h["RSC_STATUS"] == -1),
              f"fallback: every column on Q10 (status -1), HR vs clm_structure: {txt}")


# ------------------------------------------------------------------------------------------------
# issue 10 / F15: a restart file is validated on read, not trusted
def restart_halfway(case: Case, name: str) -> tuple[Path, int]:
    """A restart file written at step `steps // 2` of a lagged flux run (the honest original)."""
    half = case.meta["steps"] // 2
    rfile = case.work / name / "r.nc"
    case.run(name, stop_step=half, write_restart=True, restart_file_out=str(rfile))
    return rfile, half


def edited_copy(src: Path, dst: Path, **values) -> Path:
    """A copy of NetCDF file `src` with variables replaced (name=value, or name=(index, value))."""
    import shutil

    import netCDF4
    shutil.copyfile(src, dst)
    with netCDF4.Dataset(dst, "a") as nc:
        nc.set_auto_mask(False)
        for name, v in values.items():
            if isinstance(v, tuple):
                nc.variables[name][v[0]] = v[1]
            else:
                nc.variables[name][...] = v
    return dst


def forcing_time(case: Case) -> np.ndarray:
    import netCDF4
    with netCDF4.Dataset(case.work / "forcing.nc") as nc:
        return np.asarray(nc.variables["time"][:], dtype=float)


def F15_nstep(case: Case) -> None:
    """Nstep rewound together with time (so the time-axis check passes) is refused: nstep is compared
    with the coupler state's steps_taken after put_state. The honest file still restarts.
    """
    rfile, half = restart_halfway(case, "F15_nstep_a")
    back = half - 10
    bad = edited_copy(rfile, rfile.with_name("r_rewound.nc"), nstep=back,
                      time=forcing_time(case)[back - 1])
    p, _ = case.run("F15_nstep_b", expect_ok=False, restart=True, restart_file_in=str(bad))
    one_line_error(p, rf"^clm_like_host: error: restart file '.*r_rewound\.nc': nstep = {back} but its "
                      rf"coupler state \(rsc_state\) has taken {half} steps",
                   f"F15: nstep rewound {half} -> {back} with a consistent time")
    p, _ = case.run("F15_nstep_ok", expect_ok=False, restart=True, restart_file_in=str(rfile))
    check(p.returncode == 0, f"F15: the unaltered restart file still restarts (exit {p.returncode})")


def F15_pool(case: Case) -> None:
    """A carbon pool that is NaN, negative or CLM's missing value in the restart file is refused with
    one line naming the file, the variable and the column (exit 2).
    """
    rfile, _ = restart_halfway(case, "F15_pool_a")
    for tag, value, shown in (("nan", np.nan, "NaN"), ("negative", -1.0, r"-1\.00000E\+00"),
                              ("spval", 1e36, r"1\.00000E\+36")):
        bad = edited_copy(rfile, rfile.with_name(f"r_{tag}.nc"), TOTSOMC=(2, value))
        p, _ = case.run(f"F15_pool_{tag}", expect_ok=False, restart=True, restart_file_in=str(bad))
        check(p.returncode == 2, f"F15: TOTSOMC(column 3) = {value:g}: exit {p.returncode} (2)")
        one_line_error(p, rf"^clm_like_host: error: restart file '.*r_{tag}\.nc': TOTSOMC\(column 3\) = "
                          rf"{shown} \[gC/m\^2\] is not a finite carbon pool >= 0",
                       f"F15: TOTSOMC(column 3) = {value:g} in the restart file")


# issue 10 / F16: a missing H2OSOI stays missing
def F16_missing_h2osoi(case: Case) -> None:
    """H2OSOI = 1e36 (missing) in columns 2 (Q10, masked) and 3 (LSTM) for 10 steps: W_SCALAR, HR_Q10,
    HR and SR are missing there (not 0), the coupler gets NaN (status MISSING in the LSTM column), the
    pools lose nothing in those steps, and every other column is bit-for-bit the clean run.
    """
    import netCDF4
    gap = slice(199, 209)                         # forcing steps 200..209 (0-based 199..208)
    cols = [1, 2]                                 # columns 2 and 3 (0-based)
    src = case.work / "forcing.nc"
    dst = case.work / "forcing_F16_gap.nc"
    with netCDF4.Dataset(src) as nc:               # H2OSOI is (time, levsoi, column) in NetCDF order
        nlev = nc.variables["H2OSOI"].shape[1]
    edited_copy(src, dst, H2OSOI=((gap, slice(0, nlev), slice(cols[0], cols[-1] + 1)), 1e36))
    common = dict(policy="persistence", coupling="flux")
    _, hc = case.run("F16_clean", **common)
    p, hg = case.run("F16_gap", expect_ok=False, forcing_file=str(dst), **common)
    check(p.returncode == 0, f"F16: the run with missing H2OSOI completes (exit {p.returncode})")
    if p.returncode != 0:
        print(p.stderr)
        return
    c, g = read_hist(hc), read_hist(hg)
    mask = g["RSC_MASK"].astype(bool)
    check(not mask[cols[0]] and mask[cols[1]], "F16: column 2 is on Q10 (masked), column 3 on the LSTM")
    for name in ("H2OSOI_RSC", "W_SCALAR", "HR_Q10", "HR", "SR"):
        miss = np.isnan(g[name][gap][:, cols])
        check(miss.all(), f"F16: {name} is the missing value (1e36) in all {miss.size} gap column-steps "
              f"(values there: {np.unique(g[name][gap][:, cols][~miss])[:3]})")
    st = g["RSC_STATUS"][gap][:, cols[1]]
    check(np.all(st == 3), f"F16: the coupler got NaN: LSTM column 3 has status MISSING (3) in the gap: {st}")
    check(np.all(g["RSC_STATUS"][gap][:, cols[0]] == 5), "F16: masked column 2 keeps status MASKED (5)")
    tot = g["TOTSOMC"][:, cols]
    check(np.all(np.isfinite(tot)) and np.array_equal(tot[gap.start - 1], tot[gap.stop - 1]),
          "F16: TOTSOMC stays finite and loses nothing while HR is missing")
    other = [i for i in range(NCOL) if i not in cols]
    bad = [n for n in g if g[n].ndim == 2 and n not in ("time_bounds",) and g[n].shape[1] == NCOL
           and not np.array_equal(g[n][:, other], c[n][:, other], equal_nan=g[n].dtype.kind == "f")]
    check(not bad, f"F16: columns {[i + 1 for i in other]} are bit-for-bit the clean run" + (f"; differ: {bad}" if bad else ""))
    before = slice(0, gap.start)
    same = all(np.array_equal(g[n][before], c[n][before], equal_nan=g[n].dtype.kind == "f")
               for n in ("HR", "W_SCALAR", "RSC_STATUS", "TOTSOMC"))
    check(same, "F16: every column is bit-for-bit the clean run before the gap")


# issue 12: the same checks with a streaming model (--model): the core keeps each column's state
def streaming(case: Case, which: str) -> None:
    """The `agree` (policy lagged: for a streaming model every policy is the same) or `mpi` checks on the
    streaming model given as --model, in run folders of their own."""
    from rsoil_couple import Coupler
    c = Coupler(case.model, 1)
    check(c.streaming and c.future_steps == 0,
          f"streaming: {case.model} is a streaming model (state {c.streaming_state_size} floats per column, "
          f"spin-up {c.spinup_steps} steps)")
    if which == "agree":
        agree(case, "lagged", tag="streaming_")
    else:
        mpi(case, tag="streaming_")


def row_warning(case: Case) -> None:
    """chunk_size > 0 asks for values independent of the MPI decomposition: the host warns (one line on
    stderr, and runs on) when the load probe finds a model whose values depend on a column's row in a
    call (here: the test model with its odd rows scaled by 1 + 1e-6), and not for the test model itself."""
    from typing import List

    import torch

    from rsoil_couple.modelfile.export import export_model, load_model

    inner, meta = load_model(case.model)

    class RowDependent(torch.nn.Module):
        __annotations__ = {"past_var_names": List[str], "future_var_names": List[str]}

        def __init__(self):
            super().__init__()
            self.inner = inner
            self.past_var_names = list(inner.past_var_names)
            self.future_var_names = list(inner.future_var_names)
            if hasattr(inner, "site_scale"):
                self.register_buffer("site_scale", inner.site_scale.clone())

        def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
            y = self.inner(past, future)
            return y * (1.0 + 1e-6 * (torch.arange(y.shape[0]) % 2).to(y.dtype))

    path = case.work / "row_warning" / "row_dependent.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    export_model(RowDependent(), {k: v for k, v in meta.items() if k != "model_id"}, path)
    words = "rows_independent = false"
    p, _ = case.run("row_warning", chunk_size=4, model_file=str(path), stop_step=60)
    check(words in p.stderr, f"row-dependent model, chunk_size 4: the host warns ({p.stderr.strip()[:160]!r})")
    p, _ = case.run("row_warning_none", chunk_size=4, stop_step=60)
    check(words not in p.stderr, "the test model, chunk_size 4: no such warning")


def expect_fail(args) -> None:
    p = subprocess.run(args.cmd, capture_output=True, text=True)
    out = p.stdout + p.stderr
    check(p.returncode != 0, f"exit code {p.returncode} != 0")
    check(re.search(args.match, out) is not None, f"output matches {args.match!r}: {out.strip().splitlines()[:1]}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case")
    ap.add_argument("--work")
    ap.add_argument("--host")
    ap.add_argument("--model")
    ap.add_argument("--mpiexec")
    ap.add_argument("--shared-data", default="../shared/data")
    ap.add_argument("--match")
    argv = sys.argv[1:] if argv is None else argv
    cmd = argv[argv.index("--") + 1:] if "--" in argv else []
    args = ap.parse_args(argv[:len(argv) - len(cmd) - (1 if cmd else 0)])
    args.cmd = cmd
    if args.case == "expect-fail":
        expect_fail(args)
    else:
        case = Case(args)
        if args.case == "setup":
            setup(case, args)
        elif args.case.startswith("agree_"):
            agree(case, args.case.split("_", 1)[1])
        else:
            {"scalar": scalar, "swap": swap, "restart": restart, "mpi": mpi, "errors": errors,
             "F15_nstep": F15_nstep, "F15_pool": F15_pool,
             "F16_missing_h2osoi": F16_missing_h2osoi, "row_warning": row_warning,
             "streaming_agree": lambda c: streaming(c, "agree"),
             "streaming_mpi": lambda c: streaming(c, "mpi")}[args.case](case)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
