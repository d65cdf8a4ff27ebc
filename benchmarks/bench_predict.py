"""Scale benchmark of `rsoil-couple predict`: peak memory vs number of columns, one process vs dask.

Builds canonical NetCDF inputs of N columns from the real US-Hn1 drivers with per-column
perturbations (`rsoil_couple.prediction.write_perturbed_columns`), trains nothing (uses
`rsoil_couple.training.example_model`), and for each N runs `rsoil-couple predict` in a fresh process,
recording its peak RSS (VmHWM) and wall time. The largest N is then run again on a 2-worker dask
LocalCluster (`--scheduler`) and the two outputs are compared value for value.

    PYTHONPATH=. python3 benchmarks/bench_predict.py          # 1,000 and 10,000 columns x 720 steps
    PYTHONPATH=. python3 benchmarks/bench_predict.py --quick  # 100 and 1,000 columns x 200 steps (CI size)
(`PYTHONPATH=.` uses the source tree with a dev build, docs/dev.md; without it the installed package.)

Prints ratios measured in this one run and writes JSON (--json).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FORCING = REPO.parent / "shared" / "data" / "US-Hn1" / "US-Hn1_2016-2017_forcing_30min.csv"


def run_predict(model: Path, src: Path, out: Path, chunk: int, scheduler: str | None = None) -> dict:
    """`rsoil-couple predict` in a fresh interpreter; returns its peak RSS (VmHWM) [MiB], wall time [s] and summary."""
    argv = ["predict", "--model", str(model), "--input", str(src), "--output", str(out),
            "--chunk-columns", str(chunk), "--no-progress", "--threads", "1"]
    if scheduler:
        argv += ["--scheduler", scheduler]
    # VmHWM, not ru_maxrss: Linux carries the pre-exec (forked parent's) RSS into the child's
    # ru_maxrss, which made the child look as big as this process.
    code = ("import sys; from rsoil_couple.cli import main; "
            f"rc = main({argv!r}); "
            "print('PEAK_RSS_KB', next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM'))); "
            "sys.exit(rc)")
    import rsoil_couple

    # the child imports the same rsoil_couple as this process (source tree or installed)
    env = dict(os.environ, PYTHONPATH=str(Path(rsoil_couple.__file__).resolve().parents[1]))
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", code], cwd=REPO,
                       capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if r.returncode:
        raise SystemExit(f"predict failed:\n{r.stdout}\n{r.stderr}")
    lines = r.stdout.splitlines()
    peak = float(next(s for s in lines if s.startswith("PEAK_RSS_KB")).split()[1]) / 1024.0
    counts = json.loads(next(s for s in lines if s.startswith('{"status_counts"')))["status_counts"]
    return {"peak_rss_mib": peak, "wall_s": wall, "status_counts": counts,
            "summary": next(s for s in lines if s.startswith("wrote"))}


def same_output(a: Path, b: Path, block: int = 1000) -> bool:
    """True when every variable of two predict outputs is identical (NaN = NaN), read block by block."""
    import netCDF4

    with netCDF4.Dataset(a) as x, netCDF4.Dataset(b) as y:
        n = x.dimensions["column"].size
        for v in ("rsoil", "rsoil_gc", "resp_scalar", "status"):
            for i in range(0, n, block):
                p, q = np.asarray(x[v][:, i:i + block]), np.asarray(y[v][:, i:i + block])
                if not np.array_equal(p, q, equal_nan=p.dtype.kind == "f"):
                    return False
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--columns", type=int, nargs=2, default=[1000, 10000], help="small and large N")
    ap.add_argument("--ntime", type=int, default=720, help="time steps (30 min) per column")
    ap.add_argument("--chunk", type=int, default=250, help="--chunk-columns")
    ap.add_argument("--quick", action="store_true", help="100 and 1,000 columns x 200 steps")
    ap.add_argument("--no-dask", action="store_true", help="skip the LocalCluster run")
    ap.add_argument("--workdir", default=None, help="keep inputs/outputs here (default: a temporary folder)")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    if args.quick:
        args.columns, args.ntime = [100, 1000], 200
    from rsoil_couple.prediction.perturbed import write_perturbed_columns
    from rsoil_couple.training.example import example_model

    with tempfile.TemporaryDirectory() as tmp:
        wd = Path(args.workdir or tmp)
        wd.mkdir(parents=True, exist_ok=True)
        model = wd / "model.pt"
        meta = example_model(model, "lstm", past_hours=24, future_hours=24)
        res = {"model": {k: meta[k] for k in ("model_kind", "past_steps", "future_steps", "step_seconds")},
               "ntime": args.ntime, "chunk_columns": args.chunk, "cpus": os.cpu_count(), "runs": {}}
        for n in args.columns:
            src = write_perturbed_columns(FORCING, wd / f"in_{n}.nc", n, ntime=args.ntime, seed=0)
            r = run_predict(model, src, wd / f"out_{n}.nc", args.chunk)
            r["column_steps_per_s"] = n * args.ntime / r["wall_s"]
            res["runs"][str(n)] = r
            print(f"{n:6d} columns: peak RSS {r['peak_rss_mib']:.0f} MiB, {r['wall_s']:.1f} s, "
                  f"{r['column_steps_per_s']:,.0f} column-steps/s (incl. start-up)", flush=True)
        small, large = (res["runs"][str(n)] for n in args.columns)
        res["peak_rss_ratio_large_over_small"] = large["peak_rss_mib"] / small["peak_rss_mib"]
        print(f"columns x{args.columns[1] / args.columns[0]:g}: peak RSS x{res['peak_rss_ratio_large_over_small']:.2f}")
        if not args.no_dask:
            from distributed import LocalCluster

            n = args.columns[1]
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cl:
                r = run_predict(model, wd / f"in_{n}.nc", wd / f"out_{n}_dask.nc", args.chunk, cl.scheduler_address)
            r["column_steps_per_s"] = n * args.ntime / r["wall_s"]
            r["identical_to_one_process"] = same_output(wd / f"out_{n}.nc", wd / f"out_{n}_dask.nc")
            res["runs"][f"{n}_dask2"] = r
            print(f"{n:6d} columns on a 2-worker LocalCluster: {r['wall_s']:.1f} s, "
                  f"{r['column_steps_per_s']:,.0f} column-steps/s, client peak RSS {r['peak_rss_mib']:.0f} MiB, "
                  f"identical to one process: {r['identical_to_one_process']}; "
                  f"speed-up x{large['wall_s'] / r['wall_s']:.2f}")
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
