"""Cost of the CLM-like Fortran host per time step: all columns on CLM-structure Q10 vs all on the LSTM.

For 64 and 1,024 columns (US-Hn1 2019 drivers replicated with small perturbations), one run measures
the host's wall time per step, interleaving the configurations (`--repeats` rounds, median):
  q10   `lstm_columns = 'none'`: the host's own Q10 baseline, no coupler;
  lstm  `lstm_columns = 'all'`: every column through rsoil_couple (one batched forward per step).
  stream `--streaming` only: every column through a streaming model (issue 12; the small LSTM of
        tests/core/streaming_model.py with the window model's hidden size, untrained: timing only), the
        core keeping each column's state instead of a 7-day window.
Each timed run starts from a restart file written after the spin-up, so every timed step runs the
network. Printed and written (JSON): seconds per step of the whole host step (forcing read,
respiration, history write) and of its respiration part alone, and their ratios to q10.
Quote the ratios, not the absolute times (shared 2-core machines).

    python3 benchmarks/bench_host.py --host build/ctest/fortran_shim/clm_like_host
    python3 benchmarks/bench_host.py --quick      # CI-sized: 64 and 256 columns, short runs
    python3 benchmarks/bench_host.py --streaming --columns 1024   # + streaming-model columns
    python3 benchmarks/bench_host.py --streaming --stream-model drylands-v1 --columns 1024  # the shipped model
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rsoil_couple.core.host import write_namelist

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STEP_LINE = re.compile(r"steps=(\d+) columns=(\d+) ranks=(\d+) seconds_per_step=\s*(\S+) "
                       r"respiration_seconds_per_step=\s*(\S+)")


def find_host(path: str | None) -> Path:
    candidates = [Path(path)] if path else [ROOT / "build" / d / "fortran_shim" / "clm_like_host"
                                            for d in ("ctest", "fshim", "dev")]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    sys.exit(f"clm_like_host not found (tried {[str(c) for c in candidates]}); build it with CMake "
             "(see docs/fortran.md) or pass --host")


def _shown(path) -> str:
    """A path as the JSON shows it: relative to the repository when inside it (no path of this machine)."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else p.name


def run_host(host: Path, nml: Path) -> tuple[float, float]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run([str(host), str(nml)], cwd=nml.parent, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"host failed ({nml}):\n{p.stdout}{p.stderr}")
    m = STEP_LINE.search(p.stdout)
    return float(m.group(4)), float(m.group(5))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", help="clm_like_host executable (default: build/{ctest,fshim,dev}/...)")
    ap.add_argument("--model", help="model file (default: rsoil_couple.training.example_model, "
                    "past 168 h, future 24 h)")
    ap.add_argument("--columns", type=int, nargs="+", default=[64, 1024])
    ap.add_argument("--steps", type=int, default=48, help="timed steps per run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="libtorch intra-op threads")
    ap.add_argument("--policy", default="persistence")
    ap.add_argument("--quick", action="store_true", help="64 and 256 columns, 12 steps, 2 repeats")
    ap.add_argument("--streaming", action="store_true", help="also time every column on a streaming model")
    ap.add_argument("--stream-model", default=None, metavar="FILE_OR_NAME",
                    help="--streaming: this streaming model file or pretrained name (drylands-v1) instead of the "
                         "test LSTM")
    ap.add_argument("--chunk-size", type=int, help="the host's chunk_size (default: the host's default, 64)")
    ap.add_argument("--shared-data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(HERE / "results" / "bench_host.json"))
    args = ap.parse_args(argv)
    if args.quick:
        args.columns, args.steps, args.repeats = [64, 256], 12, 2

    from rsoil_couple import data
    from rsoil_couple.core import forcing
    from rsoil_couple.modelfile.export import load_model
    from rsoil_couple.training.example import example_model

    host = find_host(args.host)
    work = Path(tempfile.mkdtemp(prefix="bench_host_"))
    model = Path(args.model) if args.model else work / "model.pt"
    if not args.model:
        example_model(model, kind="lstm", past_hours=168, future_hours=24, step_seconds=1800, seed=0)
    wmodule, meta = load_model(model)
    # each mode: (lstm_columns, model file, steps of spin-up before the restart file)
    modes = {"q10": ("none", model, meta["past_steps"] + meta["future_steps"] + 1),
             "lstm": ("all", model, meta["past_steps"] + meta["future_steps"] + 1)}
    stream_meta = None
    if args.streaming:
        sys.path.insert(0, str(HERE))
        from bench_core import lstm_hidden, make_streaming_model
        if args.stream_model:  # a streaming file or a pretrained name (drylands-v1)
            from rsoil_couple.pretrained import resolve

            stream = Path(resolve(args.stream_model))
            _, stream_meta = load_model(stream)
            stream_meta["hidden"] = None
        else:
            stream = work / "stream.pt"
            stream_meta = make_streaming_model(stream, meta, lstm_hidden(wmodule), spinup=96)
            stream_meta["hidden"] = lstm_hidden(wmodule)
        modes["stream"] = ("all", stream, stream_meta["streaming"]["spinup_steps"] + 1)
    spinup = max(m[2] for m in modes.values())
    src = Path(args.shared_data) / "US-Hn1" / "US-Hn1_2019_30min.csv"
    if src.is_file():
        site = data.read_site(src)
    else:
        from rsoil_couple.data.synthetic import synthetic_site
        site = synthetic_site(days=30)
    site = site.isel(time=slice(0, spinup + args.steps))[["tsoil", "swc", "precip", "qc"]]

    common = dict(policy=args.policy, num_threads=args.threads, k_baseline=1.5, hist_file="h.nc")
    if args.chunk_size is not None:
        common["chunk_size"] = args.chunk_size
    results = {}
    plans = []
    for ncol in args.columns:
        d = work / f"c{ncol}"
        d.mkdir()
        cols = forcing.replicate_columns(site, ncol, tsoil_spread_k=2.0, swc_spread=0.2)
        f = forcing.write_forcing(cols, d / "forcing.nc")
        for mode, (sel, mfile, _) in modes.items():
            m = d / mode
            m.mkdir()
            # spin-up once (the longest of the models: every timed run starts at the same step), then
            # every timed run restarts after it
            spin = write_namelist(m / "spin.nml", forcing_file=str(f), lstm_columns=sel, stop_step=spinup,
                                  write_restart=True, restart_file_out="r.nc", model_file=str(mfile), **common)
            run_host(host, spin)
            timed = write_namelist(m / "timed.nml", forcing_file=str(f), lstm_columns=sel, restart=True,
                                   restart_file_in="r.nc", model_file=str(mfile), **common)
            plans.append((ncol, mode, timed))
    samples = {(n, mode): [] for n, mode, _ in plans}
    for _ in range(args.repeats):          # interleaved: q10 and lstm of every size in each round
        for ncol, mode, nml in plans:
            samples[(ncol, mode)].append(run_host(host, nml))

    print(f"host time per step, median of {args.repeats} (policy {args.policy}, {args.threads} thread(s), "
          f"model past {meta['past_steps']} / future {meta['future_steps']} steps, {args.steps} timed steps)")
    print(f"{'columns':>8} {'mode':>7} {'step [s]':>10} {'/ q10':>7} {'resp [s]':>10} {'/ q10':>8} "
          f"{'resp us/column-step':>20}")
    for ncol in args.columns:
        med = {mode: [statistics.median(x) for x in zip(*samples[(ncol, mode)])] for mode in modes}
        q = med["q10"]
        r = results[str(ncol)] = {"q10_seconds_per_step": q[0], "q10_respiration_seconds_per_step": q[1],
                                  "samples": {mode: samples[(ncol, mode)] for mode in modes}}
        print(f"{ncol:>8} {'q10':>7} {q[0]:>10.3e} {1:>7.1f} {q[1]:>10.3e} {1:>8.0f} {1e6 * q[1] / ncol:>20.2f}")
        for mode in [m for m in modes if m != "q10"]:
            v = med[mode]
            r.update({f"{mode}_seconds_per_step": v[0], f"step_ratio_{mode}_over_q10": v[0] / q[0],
                      f"{mode}_respiration_seconds_per_step": v[1],
                      f"respiration_ratio_{mode}_over_q10": v[1] / q[1],
                      f"{mode}_microseconds_per_column_step": 1e6 * v[1] / ncol})
            print(f"{'':>8} {mode:>7} {v[0]:>10.3e} {v[0] / q[0]:>7.1f} {v[1]:>10.3e} {v[1] / q[1]:>8.0f} "
                  f"{1e6 * v[1] / ncol:>20.2f}")
        if "stream" in modes:
            r["respiration_ratio_stream_over_lstm"] = med["stream"][1] / med["lstm"][1]
    out = {"benchmark": "bench_host", "host": _shown(host), "policy": args.policy, "threads": args.threads,
           "chunk_size": args.chunk_size if args.chunk_size is not None else "host default (64)",
           "timed_steps": args.steps, "repeats": args.repeats, "model": {k: meta[k] for k in (
               "model_kind", "model_id", "past_steps", "future_steps", "step_seconds")},
           "streaming_model": None if stream_meta is None else {
               "model_kind": stream_meta["model_kind"], "model_id": stream_meta["model_id"],
               "streaming": stream_meta["streaming"], "hidden": stream_meta["hidden"],
               "source": (args.stream_model if not Path(args.stream_model).exists() else _shown(stream))
               if args.stream_model else
               "tests/core/streaming_model.py LstmStreamingModel (untrained: timing only)"},
           "drivers": str(site.attrs.get("source")), "machine": platform.processor() or platform.machine(),
           "cpu_count": os.cpu_count(), "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
