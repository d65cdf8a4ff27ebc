"""Scale benchmark of `rsoil-couple predict`: throughput and peak memory vs columns, streaming vs window
model, one process vs a 2-worker dask LocalCluster.

Inputs are canonical NetCDF files of N columns made from the real US-Hn1 drivers with per-column
perturbations (`rsoil_couple.prediction.write_perturbed_columns`). Two models, trained on nothing
heavier than a few seconds of synthetic data:
- window: `rsoil_couple.training.example_model` (LSTM, 24 h past + 24 h future, hidden 16), through the
  C++ coupler step by step;
- streaming: the test model of tests/streaming_model.py (EMAs + an LSTM cell of hidden 16, spin-up 96
  steps), or with ``--model FILE_OR_NAME`` a streaming model file or pretrained name (the shipped
  ``drylands-v1``: a 3-member ensemble of kg_stream, hidden 0); one scripted ``run`` call per block of
  columns x time chunk.
For each model and N, `rsoil-couple predict` runs `--repeats` times in a fresh interpreter; each run's
peak RSS (VmHWM), the throughput predict measures itself (column-steps / predict's own seconds, start-up
of the interpreter excluded), CPU seconds and stage seconds are kept, and the median is reported. The
largest N runs alternately in one process and on a 2-worker LocalCluster (processes, 1 thread each,
`rsoil_couple.prediction.cluster.local_cluster`: started before each run with its workers warmed with the
imports, as a long-lived cluster's are, and closed after it; `--dask-config`): the speed-up is the median over
these pairs, so both sides of a pair see about the same load from other jobs on a shared machine. Also
reported: the CPU efficiency of the cluster (CPU seconds of the one-process run / CPU seconds of the
client, workers and scheduler for the same work) and whether its output equals the one-process output
value for value. The 1-minute load average before and after every run is recorded; `--wait-quiet L`
waits (at most `--wait-max` s) for it to fall below L before each run.

    PYTHONPATH=. python3 benchmarks/bench_predict.py --json benchmarks/results/predict.json
        # streaming: 1,000 and 10,000 columns x one year (17,520 steps); window: 1,000 and 10,000 x 720
    PYTHONPATH=. python3 benchmarks/bench_predict.py --quick     # CI size: 200/1,000 x 2,000 and 100/1,000 x 200
    PYTHONPATH=. python3 benchmarks/bench_predict.py --models streaming --model drylands-v1 --no-dask
(`PYTHONPATH=.` uses the source tree with a dev build, docs/dev.md; without it the installed package.)

Prints ratios measured in this one run and writes JSON (--json).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rsoil_couple.data.sites import shared_data_dir  # $RSOIL_SHARED_DATA or ../shared/data

REPO = Path(__file__).resolve().parents[1]
FORCING = shared_data_dir() / "US-Hn1" / "US-Hn1_2016-2017_forcing_30min.csv"


def streaming_helpers():
    """tests/streaming_model.py, loaded by path (TorchScript needs the module in sys.modules)."""
    name = "rsoil_tests_predict_streaming_model"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "streaming_model.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def wait_quiet(load: float | None, max_s: float) -> float:
    """Wait (at most `max_s` s) until the 1-minute load average is below `load`; returns the seconds waited."""
    t0 = time.perf_counter()
    while load is not None and os.getloadavg()[0] >= load and time.perf_counter() - t0 < max_s:
        time.sleep(5)
    return time.perf_counter() - t0


def run_predict(model: Path | None, src: Path, out: Path, chunk: int | None, extra: list[str],
                scheduler: str | None = None, quiet: tuple = (None, 0.0), pythonpath: Path | None = None) -> dict:
    """`rsoil-couple predict` in a fresh interpreter: its peak RSS (VmHWM) [MiB], wall time [s], CPU time [s]
    and JSON summary. `model` / `chunk` None: given in `extra` (or predict's default); `pythonpath`: the
    source tree whose rsoil_couple runs (default: the one this process imported)."""
    argv = ["predict", *(["--model", str(model)] if model is not None else []), "--input", str(src),
            "--output", str(out), *(["--chunk-columns", str(chunk)] if chunk is not None else []),
            "--no-progress", "--threads", "1", *extra]
    if scheduler:
        argv += ["--scheduler", scheduler]
    # VmHWM, not ru_maxrss: Linux carries the pre-exec (forked parent's) RSS into the child's
    # ru_maxrss, which made the child look as big as this process.
    code = ("import sys; from rsoil_couple.cli import main; "
            f"rc = main({argv!r}); "
            "print('PEAK_RSS_KB', next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM'))); "
            "sys.exit(rc)")
    import resource

    import rsoil_couple

    # the child imports the same rsoil_couple as this process (source tree or installed), or `pythonpath`'s
    # (it runs there too: ``python -c`` puts the working directory first on sys.path)
    env = dict(os.environ, PYTHONPATH=str(pythonpath or Path(rsoil_couple.__file__).resolve().parents[1]))
    if pythonpath is not None:  # another checkout: leave its tree as it is (no __pycache__ written there)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    waited = wait_quiet(*quiet)
    load0 = os.getloadavg()[0]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", code], cwd=pythonpath or REPO,
                       capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode:
        raise SystemExit(f"predict failed:\n{r.stdout}\n{r.stderr}")
    lines = r.stdout.splitlines()
    summary = json.loads(next(s for s in lines if s.startswith('{"status_counts"')))
    return {"peak_rss_mib": float(next(s for s in lines if s.startswith("PEAK_RSS_KB")).split()[1]) / 1024.0,
            "wall_s": wall, "predict_s": summary["seconds"], "column_steps_per_s": summary["column_steps_per_s"],
            "cpu_s": (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime),
            "stage_seconds": summary["stage_seconds"], "blocks_by_pid": summary["blocks_by_pid"],
            "status_counts": summary["status_counts"], "waited_for_quiet_s": waited,
            "load_1min_before": load0, "load_1min_after": os.getloadavg()[0]}


def run_dask(client, *args, **kw) -> dict:
    """`run_predict` on the cluster of `client`, adding the CPU seconds of its workers and of this process
    (the LocalCluster's scheduler) during the run."""
    w0, c0 = client.run(time.process_time), time.process_time()
    r = run_predict(*args, **kw)
    w1, c1 = client.run(time.process_time), time.process_time()
    r["worker_cpu_s"] = {str(k): w1[k] - w0[k] for k in w1}
    r["scheduler_cpu_s"] = c1 - c0
    r["total_cpu_s"] = r["cpu_s"] + sum(r["worker_cpu_s"].values()) + r["scheduler_cpu_s"]
    return r


def summarise(n: int, runs: list[dict]) -> dict:
    """Every run kept; medians of throughput, seconds, CPU and peak RSS."""
    keys = ("column_steps_per_s", "predict_s", "wall_s", "peak_rss_mib", "cpu_s", "total_cpu_s")
    med = {k: statistics.median(r[k] for r in runs) for k in keys if k in runs[0]}
    return {"columns": n, "repeats": runs, **{f"median_{k}": v for k, v in med.items()}}


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


def _peak_rss_mib() -> float:
    return float(next(s for s in open("/proc/self/status") if s.startswith("VmHWM")).split()[1]) / 1024.0


def bench_model(label: str, model: Path, columns: list[int], ntime: int, chunk: int | None, repeats: int, wd: Path,
                dask: bool, extra: list[str], quiet: tuple, configs: tuple = ("lean",)) -> dict:
    """One model: each N in one process (`repeats` runs); the largest N alternately in one process and on a
    2-worker LocalCluster per entry of `configs` (one, dask, one, dask, ...: both see the same load from other
    jobs). "lean": `rsoil_couple.prediction.cluster.LEAN_CONFIG`, "default": dask's own settings. Each
    cluster is started (workers warmed with the imports, as a long-lived cluster's are) before its run and
    closed after it, so no idle cluster runs beside a measured one."""
    from distributed import Client

    from rsoil_couple.prediction.cluster import local_cluster, worker_settings
    from rsoil_couple.prediction.perturbed import write_perturbed_columns

    res = {"ntime": ntime, "chunk_columns": chunk, "extra_args": extra, "runs": {}}
    for n in columns:
        src = wd / f"in_{n}x{ntime}.nc"
        if not src.is_file():
            write_perturbed_columns(FORCING, src, n, ntime=ntime, seed=0)
    for n in columns[:-1]:
        res["runs"][str(n)] = summarise(n, [run_predict(model, wd / f"in_{n}x{ntime}.nc", wd / f"out_{label}_{n}.nc",
                                                        chunk, extra, quiet=quiet) for _ in range(repeats)])
    n = columns[-1]
    src, one_out = wd / f"in_{n}x{ntime}.nc", wd / f"out_{label}_{n}.nc"
    one, two = [], {c: [] for c in configs}
    dask_outs = {c: wd / f"out_{label}_{n}_dask_{c}.nc" for c in configs}
    worker_rss, profiling = {c: [] for c in configs}, {c: [] for c in configs}
    for _ in range(repeats):
        one.append(run_predict(model, src, one_out, chunk, extra, quiet=quiet))
        for c in configs if dask else ():
            with local_cluster(2, lean=c == "lean") as address, Client(address) as client:
                two[c].append(run_dask(client, model, src, dask_outs[c], chunk, extra, scheduler=address,
                                       quiet=quiet))
                worker_rss[c].append(list(client.run(_peak_rss_mib).values()))
                profiling[c].append([w["profiling"] for w in client.run(worker_settings).values()])
    res["runs"][str(n)] = summarise(n, one)
    for m in columns:
        r = res["runs"][str(m)]
        print(f"{label:9s} {m:6d} columns x {ntime} steps, one process: {r['median_column_steps_per_s']:,.0f} "
              f"column-steps/s (median of {repeats}), peak RSS {r['median_peak_rss_mib']:.0f} MiB", flush=True)
    small, large = (res["runs"][str(m)] for m in (columns[0], columns[-1]))
    res["peak_rss_ratio_large_over_small"] = large["median_peak_rss_mib"] / small["median_peak_rss_mib"]
    print(f"{label:9s} columns x{columns[-1] / columns[0]:g}: peak RSS x{res['peak_rss_ratio_large_over_small']:.2f}")
    for c in configs if dask else ():
        r = summarise(n, two[c])
        r["dask_config"] = c
        r["workers_profiling"] = profiling[c]
        r["worker_peak_rss_mib"] = worker_rss[c]
        r["identical_to_one_process"] = same_output(one_out, dask_outs[c])
        # per pair (run i in one process, run i on the cluster, one after the other), then the median
        r["speedup_each_pair"] = [b["column_steps_per_s"] / a["column_steps_per_s"] for a, b in zip(one, two[c])]
        r["speedup_over_one_process"] = statistics.median(r["speedup_each_pair"])
        # CPU seconds of the whole one-process run / of all cluster processes for the same work
        r["cpu_efficiency"] = statistics.median(a["cpu_s"] / b["total_cpu_s"] for a, b in zip(one, two[c]))
        res["runs"][f"{n}_dask2_{c}"] = r
        print(f"{label:9s} {n:6d} columns on a 2-worker LocalCluster (dask config {c}): "
              f"{r['median_column_steps_per_s']:,.0f} column-steps/s, x{r['speedup_over_one_process']:.2f} one "
              f"process (median of paired runs); CPU efficiency {r['cpu_efficiency']:.2f}; identical output: "
              f"{r['identical_to_one_process']}; client peak RSS {r['median_peak_rss_mib']:.0f} MiB, workers "
              f"{', '.join(f'{x:.0f}' for x in worker_rss[c][-1])} MiB", flush=True)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stream-columns", type=int, nargs="+", default=[1000, 10000], help="N for the streaming model")
    ap.add_argument("--stream-ntime", type=int, default=17520, help="steps (30 min) per column, streaming model")
    ap.add_argument("--window-columns", type=int, nargs="+", default=[1000, 10000], help="N for the window model")
    ap.add_argument("--window-ntime", type=int, default=720, help="steps (30 min) per column, window model")
    ap.add_argument("--chunk", type=int, default=None, help="--chunk-columns (default: predict's, per model kind)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per configuration (the median is reported)")
    ap.add_argument("--models", nargs="+", default=["streaming", "window"], choices=["streaming", "window"])
    ap.add_argument("--quick", action="store_true", help="CI size: streaming 200/1,000 x 2,000, window 100/1,000 x 200")
    ap.add_argument("--no-dask", action="store_true", help="skip the LocalCluster runs")
    ap.add_argument("--dask-config", choices=["lean", "default"], nargs="+", default=["lean"],
                    help="the clusters' dask settings, run in this order after every one-process run: lean "
                         "(rsoil_couple.prediction.cluster.LEAN_CONFIG), default (dask's own)")
    ap.add_argument("--deflate", type=int, default=None, help="predict --deflate (default: predict's)")
    ap.add_argument("--batch-rows", type=int, default=None, help="predict --batch-rows (default: predict's)")
    ap.add_argument("--model", default=None, metavar="FILE_OR_NAME",
                    help="streaming model file or pretrained name (drylands-v1); default: the test model")
    ap.add_argument("--wait-quiet", type=float, default=None,
                    help="before each run wait until the 1-min load average is below this (the machine is shared)")
    ap.add_argument("--wait-max", type=float, default=600.0, help="longest wait for --wait-quiet [s]")
    ap.add_argument("--workdir", default=None, help="keep inputs/outputs here (default: a temporary folder)")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    if args.quick:
        args.stream_columns, args.stream_ntime, args.window_columns, args.window_ntime = [200, 1000], 2000, [100, 1000], 200
    from rsoil_couple.training.example import example_model

    with tempfile.TemporaryDirectory() as tmp:
        wd = Path(args.workdir or tmp)
        wd.mkdir(parents=True, exist_ok=True)
        res = {"cpus": os.cpu_count(), "repeats": args.repeats, "load_1min_start": os.getloadavg()[0], "models": {}}
        for label in args.models:
            if label == "window":
                model = wd / "window.pt"
                meta = example_model(model, "lstm", past_hours=24, future_hours=24)
                cols, ntime = args.window_columns, args.window_ntime
            else:
                if args.model:
                    from rsoil_couple.modelfile.export import load_model
                    from rsoil_couple.pretrained import resolve

                    model = Path(resolve(args.model))
                    meta = load_model(model)[1]
                    if "streaming" not in meta:
                        raise SystemExit(f"--model {args.model}: not a streaming model file")
                else:
                    model = wd / "streaming.pt"
                    meta = streaming_helpers().write_streaming_model(model, spinup_steps=96, hidden=16)
                cols, ntime = args.stream_columns, args.stream_ntime
            extra = [] if args.deflate is None else ["--deflate", str(args.deflate)]
            if args.batch_rows is not None:
                extra += ["--batch-rows", str(args.batch_rows)]
            r = bench_model(label, model, cols, ntime, args.chunk, args.repeats, wd, not args.no_dask, extra,
                            (args.wait_quiet, args.wait_max),
                            tuple(dict.fromkeys(args.dask_config)))
            r["model"] = {k: meta[k] for k in ("model_kind", "model_id", "past_steps", "future_steps", "step_seconds")}
            # a file this run wrote is named by its place in the work folder (no path of this machine)
            r["model"]["path"] = f"<workdir>/{model.name}" if label == "window" or not args.model else args.model
            r["model"]["streaming"] = meta.get("streaming")
            res["models"][label] = r
        if len(res["models"]) == 2:
            s, w = (res["models"][k]["runs"] for k in ("streaming", "window"))
            res["streaming_over_window"] = (s[str(args.stream_columns[-1])]["median_column_steps_per_s"]
                                            / w[str(args.window_columns[-1])]["median_column_steps_per_s"])
            print(f"streaming / window model, one process: x{res['streaming_over_window']:.1f} column-steps/s")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
