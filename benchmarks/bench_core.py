"""Benchmark of the C++ core against calling the TorchScript module from Python; writes JSON.

For 1 ... 4096 columns and the 7-day "new" LSTM (past 168 h, future 24 h, 30-min steps), one run
measures column-steps per second of
  core     rsoil_couple.Coupler.step (ring buffers, status, Q10, one batched forward per step),
  python   Python holding the driver history and calling the module with the full window each step
           (batched over columns),
  percol   one module call per column per step (what a naive FTorch-style host does; timed on at
           most --percol-max columns and scaled, since columns are independent),
plus the core's own overhead outside the forward (fraction of the step), peak memory per column
(max RSS of a subprocess with 4096 vs 1 columns), and the agreement of the TorchScript module,
the pybind11 core and the cffi C API for 1, 7 and 1000 columns. Quote ratios, not absolute times.

With ``--streaming`` it instead compares, in the core, a streaming model (issue 12: one ``step`` per
column-step on a kept state) with the 7-day window model at equal LSTM hidden size, at 1,024 and
16,384 columns, unchunked and with ``--chunk``: column-steps per second of each (steps interleaved,
per-step medians; the median of ``--repeats`` runs) and their ratio streaming / window. The streaming model is the small LSTM of
tests/core/streaming_model.py (hidden = the window model's, state h, c and the last valid drivers),
or with ``--stream-model FILE_OR_NAME`` a streaming file (the shipped ``drylands-v1``: its own ``step``,
as the core runs it).

    python3 benchmarks/bench_core.py            # full (a few minutes on 2 cores)
    python3 benchmarks/bench_core.py --quick    # CI-sized
    python3 benchmarks/bench_core.py --streaming [--quick]   # -> results/bench_core_streaming.json
    python3 benchmarks/bench_core.py --streaming --stream-model drylands-v1 --out results/bench_core_drylands.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def make_model(path: Path, hidden: int) -> dict:
    """The 7-day LSTM: trained by rsoil_couple.training.example_model (hidden 16), or with --hidden a
    same-structure module of that width with the trained one's normalisation (untrained: timing only)."""
    from rsoil_couple.config import ModelConfig
    from rsoil_couple.modelfile.export import export_model, load_model
    from rsoil_couple.models import get_model
    from rsoil_couple.training.example import example_model

    meta = example_model(path, kind="lstm", past_hours=168, future_hours=24, step_seconds=1800, seed=0)
    if hidden:
        trained, _ = load_model(path)
        m = get_model(ModelConfig(kind="lstm", hidden=hidden), [v["name"] for v in meta["past_vars"]],
                      [v["name"] for v in meta["future_vars"]], meta["past_steps"], meta["future_steps"],
                      meta["step_seconds"])
        bufs = dict(trained.named_buffers())
        with torch.no_grad():
            for name, b in m.named_buffers():
                b.copy_(bufs[name])
        meta = {k: v for k, v in meta.items() if k not in ("model_id", "torch_version", "rsoil_couple_version")}
        meta["training"] = dict(meta["training"], note=f"hidden={hidden}, untrained weights: timing only")
        meta = export_model(m, meta, path)
    return meta


def streaming_helpers():
    """tests/core/streaming_model.py (the streaming test and benchmark models) as a module."""
    import importlib.util

    name = "rsoil_tests_streaming_model"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE.parent / "tests" / "core" / "streaming_model.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # TorchScript reads the classes' source through sys.modules
        spec.loader.exec_module(mod)
    return sys.modules[name]


def make_streaming_model(path: Path, wmeta: dict, hidden: int, spinup: int) -> dict:
    """The streaming LSTM of hidden size `hidden` with the window model's ranges and Q10 (untrained: timing)."""
    sm = streaming_helpers()
    module = sm.LstmStreamingModel(wmeta["envelope"], wmeta["step_seconds"], spinup_steps=spinup, hidden=hidden)
    return sm.export_streaming(module, wmeta, path, "lstm_stream_test")


def bench_streaming(wpath, wmeta, spath, smeta, ncol: int, chunk: int, nsteps: int) -> dict:
    """Window model vs streaming model in the core, steps interleaved, per-step medians."""
    from rsoil_couple import Coupler

    P, F = wmeta["past_steps"], wmeta["future_steps"]
    S0 = smeta["streaming"]["spinup_steps"]
    start = max(P - 1, S0) + 1  # both past their spin-up; one untimed step each first
    x = drivers(wmeta, start + nsteps + F, ncol)
    w = Coupler(wpath, ncol, "supplied", chunk_size=chunk)
    s = Coupler(spath, ncol, "supplied", chunk_size=chunk)
    spin_up(w, x, F, range(start - P + 1, start))
    for t in range(start - S0 - 1, start):
        s.step(x["tsoil"][t], x["swc"][t], x["precip"][t])
    times = {"window": [], "streaming": []}
    inner = {"window": [], "streaming": []}
    fwd = {"window": [], "streaming": []}
    for t in range(start, start + nsteps):
        for name, c in (("window", w), ("streaming", s)):
            f0, s0, t0 = c.forward_seconds, c.stepping_seconds, time.perf_counter()
            if name == "window":
                spin_up(c, x, F, [t])
                r = None
            else:
                r = c.step(x["tsoil"][t], x["swc"][t], x["precip"][t])
            times[name].append(time.perf_counter() - t0)
            inner[name].append(c.stepping_seconds - s0)
            fwd[name].append(c.forward_seconds - f0)
        assert np.all(r.status <= 1), np.unique(r.status)
    assert w.counters[2:].sum() == ncol * (P - 1) and w.counters[:2].sum() == ncol * nsteps, w.counters
    med = lambda a: float(np.median(a))  # noqa: E731
    res = {"ncol": ncol, "chunk_size": chunk, "steps_timed": nsteps}
    for name in times:
        a, i, f = (np.asarray(v[name]) for v in (times, inner, fwd))
        res[f"{name}_column_steps_per_s"] = ncol / med(a)
        res[f"{name}_seconds_per_step"] = med(a)
        res[f"{name}_core_overhead_fraction"] = med((i - f) / i)
    res["streaming_over_window"] = res["streaming_column_steps_per_s"] / res["window_column_steps_per_s"]
    res["streaming_state_bytes_per_column"] = (s.state_size() - Coupler(spath, 1).state_size()) / (ncol - 1)
    res["window_state_bytes_per_column"] = (w.state_size() - Coupler(wpath, 1).state_size()) / (ncol - 1)
    return res


def streaming_main(args) -> int:
    """``--streaming``: the core with a streaming model vs the window model (module docstring)."""
    from rsoil_couple.modelfile.export import load_model

    with tempfile.TemporaryDirectory() as tmp:
        wpath = Path(args.model) if args.model else Path(tmp) / "lstm_7d.pt"
        if not args.model:
            make_model(wpath, args.hidden)
        wmodule, wmeta = load_model(wpath)
        hidden = lstm_hidden(wmodule)
        if args.stream_model:  # a streaming file or a pretrained name (drylands-v1)
            from rsoil_couple.pretrained import resolve

            spath = Path(resolve(args.stream_model))
            _, smeta = load_model(spath)
        else:
            spath = Path(tmp) / "lstm_stream.pt"
            smeta = make_streaming_model(spath, wmeta, hidden, spinup=96)
        ncols = [64, 256] if args.quick else [1024, 16384]
        rows = []
        for ncol in ncols:
            for chunk in (0, args.chunk):
                nsteps = 3 if args.quick else (7 if ncol <= 1024 else 5)
                runs = [bench_streaming(wpath, wmeta, spath, smeta, ncol, chunk, nsteps) for _ in range(args.repeats)]
                # the median of the repeats (each a median over its timed steps), every repeat kept
                r = {k: (float(np.median([x[k] for x in runs])) if isinstance(v, float) else v) for k, v in runs[0].items()}
                r["repeats"] = runs
                rows.append(r)
                print(f"ncol {ncol:6d} chunk {chunk:4d}: window {r['window_column_steps_per_s']:10.0f}  "
                      f"streaming {r['streaming_column_steps_per_s']:12.0f} column-steps/s | streaming/window "
                      f"{r['streaming_over_window']:7.1f}  (core overhead: window "
                      f"{100 * r['window_core_overhead_fraction']:4.1f} %, streaming "
                      f"{100 * r['streaming_core_overhead_fraction']:4.1f} %)", flush=True)
    result = {
        "benchmark": "bench_core --streaming", "threads": torch.get_num_threads(), "quick": args.quick,
        "window_model": {"kind": wmeta["model_kind"], "past_steps": wmeta["past_steps"],
                         "future_steps": wmeta["future_steps"], "hidden": hidden, "model_id": wmeta["model_id"],
                         "source": args.model or ("example_model" + (f" hidden={args.hidden}" if args.hidden else ""))},
        "streaming_model": {"kind": smeta["model_kind"], "hidden": None if args.stream_model else hidden,
                            "streaming": smeta["streaming"], "model_id": smeta["model_id"],
                            "source": str(spath) if args.stream_model else
                            "tests/core/streaming_model.py LstmStreamingModel (untrained: timing only)"},
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor(), "torch": torch.__version__},
        "rows": rows,
    }
    out = Path(args.out if args.out != str(HERE / "results" / "bench_core.json")
               else HERE / "results" / "bench_core_streaming.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return 0


def lstm_hidden(module) -> int | None:
    """Hidden size of the module's (first) LSTM, from a weight_hh [4*hidden, hidden]."""
    return next((int(p.shape[1]) for n, p in module.named_parameters() if n.endswith("weight_hh_l0")), None)


def drivers(meta: dict, ntime: int, ncol: int) -> dict[str, np.ndarray]:
    env = meta["envelope"]
    t, c = np.arange(ntime)[:, None], np.arange(ncol)[None, :]
    lo, hi = env["tsoil"]["min"], env["tsoil"]["max"]
    slo, shi = env["swc"]["min"], env["swc"]["max"]
    return {"tsoil": 0.5 * (lo + hi) + 0.25 * (hi - lo) * np.sin(2 * np.pi * (t / 48 + c / ncol)),
            "swc": 0.5 * (slo + shi) + 0.2 * (shi - slo) * np.cos(2 * np.pi * (t / 400 + c / ncol)),
            "precip": np.where((t + c) % 29 == 0, 0.3 * env["precip"]["max"], 0.0)}


def windows(meta, x, t, cols=slice(None)):
    P, F = meta["past_steps"], meta["future_steps"]
    past = np.stack([x[v["name"]][t - P + 1:t + 1, cols].T for v in meta["past_vars"]], axis=-1)
    fut = np.stack([x[v["name"]][t + 1:t + 1 + F, cols].T for v in meta["future_vars"]], axis=-1)
    return torch.from_numpy(np.ascontiguousarray(past, dtype=np.float32)), \
        torch.from_numpy(np.ascontiguousarray(fut, dtype=np.float32))


def spin_up(c, x, F, steps):
    for t in steps:
        c.step(x["tsoil"][t], x["swc"][t], x["precip"][t], future_tsoil=x["tsoil"][t + 1:t + 1 + F].T)


def bench_ncol(path, meta, module, ncol, nsteps, percol_max, chunk) -> dict:
    """The three methods interleaved step by step (they share the machine's load at each step);
    per-step medians, so a descheduled step on a shared machine does not decide a ratio."""
    from rsoil_couple import Coupler

    P, F = meta["past_steps"], meta["future_steps"]
    warm = 2
    T = P + warm + nsteps
    x = drivers(meta, T + F, ncol)
    c = Coupler(path, ncol, "supplied")
    spin_up(c, x, F, range(P - 1 + warm))
    cc_ = Coupler(path, ncol, "supplied", chunk_size=chunk) if chunk and ncol > chunk else None
    if cc_ is not None:
        spin_up(cc_, x, F, range(P - 1 + warm))
    k = min(ncol, percol_max)  # columns timed one call each; the rest scaled (columns are independent)
    core, fwd, inner, py, per, chunked = [], [], [], [], [], []
    with torch.no_grad():
        for t in range(P - 1, P - 1 + warm):
            module(*windows(meta, x, t))
            module(*windows(meta, x, t, slice(0, 1)))
        for t in range(P - 1 + warm, T - 1):
            f0, s0, t0 = c.forward_seconds, c.stepping_seconds, time.perf_counter()
            spin_up(c, x, F, [t])
            core.append(time.perf_counter() - t0)
            fwd.append(c.forward_seconds - f0)
            inner.append(c.stepping_seconds - s0)
            if cc_ is not None:
                t0 = time.perf_counter()
                spin_up(cc_, x, F, [t])
                chunked.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            module(*windows(meta, x, t))
            py.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for cc in range(k):
                module(*windows(meta, x, t, slice(cc, cc + 1)))
            per.append((time.perf_counter() - t0) * ncol / k)
    assert np.all(c.counters[2:] == [ncol * (P - 1)] + [0] * (len(c.counters) - 3)), c.counters
    core, fwd, inner, py, per = map(np.asarray, (core, fwd, inner, py, per))
    med = lambda a: float(np.median(a))  # noqa: E731
    res = {
        "ncol": ncol, "steps_timed": len(core), "percol_columns_timed": k,
        "core_column_steps_per_s": ncol / med(core),
        "python_full_window_column_steps_per_s": ncol / med(py),
        "percol_column_steps_per_s": ncol / med(per),
        # the core's own cost (buffering, status, gathering, fallback) inside the C++ step
        "core_overhead_fraction": med((inner - fwd) / inner),
        # the same plus the Python binding and this script's array slicing, of the whole call
        "core_call_overhead_fraction": med((core - fwd) / core),
        "core_seconds_per_step": med(core), "core_forward_seconds_per_step": med(fwd),
        "core_overhead_seconds_per_step": med(core - fwd),
    }
    if chunked:
        res[f"core_chunk_{chunk}_column_steps_per_s"] = ncol / med(chunked)
    res["core_vs_percol"] = res["core_column_steps_per_s"] / res["percol_column_steps_per_s"]
    res["core_vs_python"] = res["core_column_steps_per_s"] / res["python_full_window_column_steps_per_s"]
    return res


def agreement(path, meta, module, ncols) -> list[dict]:
    """Max relative difference, TorchScript module vs pybind11 core vs cffi C API, at one step."""
    from rsoil_couple import Coupler
    from rsoil_couple.core import capi

    P, F, dt = meta["past_steps"], meta["future_steps"], meta["step_seconds"]
    out = []
    for ncol in ncols:
        x = drivers(meta, P + F, ncol)
        pc, cc = Coupler(path, ncol, "supplied"), capi.CapiCoupler(path, ncol, "supplied")
        for t in range(P):
            fut = x["tsoil"][t + 1:t + 1 + F].T
            rp = pc.step(x["tsoil"][t], x["swc"][t], x["precip"][t], future_tsoil=fut)
            rc = cc.step(x["tsoil"][t] + 273.15, x["swc"][t], x["precip"][t] / dt,
                         future_tsoil_k=np.ascontiguousarray(fut) + 273.15)
        with torch.no_grad():
            ref = module(*windows(meta, x, P - 1)).double().numpy()
        rel = lambda a, b: float(np.max(np.abs(a - b) / np.abs(b)))  # noqa: E731
        out.append({"ncol": ncol, "statuses": sorted(set(rp.status.tolist())),
                    "max_rel_pybind11_vs_torchscript": rel(rp.rsoil, ref),
                    "max_rel_capi_vs_torchscript": rel(rc.rsoil, ref),
                    "max_rel_capi_vs_pybind11": rel(rc.rsoil, rp.rsoil)})
    return out


def memory_probe(path: str, ncol: int, chunk: int = 0) -> None:
    """Subprocess: peak RSS [kB] of a process that runs the core for ncol columns to its first forward."""
    from rsoil_couple import Coupler
    from rsoil_couple.modelfile.export import load_model

    _, meta = load_model(path)
    P, F = meta["past_steps"], meta["future_steps"]
    row = {v: np.full(ncol, 0.5 * (e["min"] + e["max"])) for v, e in meta["envelope"].items()}
    fut = np.full((ncol, F), row["tsoil"][0])  # only [ncol]-sized host arrays: the peak is the core's
    c = Coupler(path, ncol, "supplied", chunk_size=chunk)
    for _ in range(P + 2):
        r = c.step(row["tsoil"], row["swc"], row["precip"], future_tsoil=fut)
    assert np.all(r.status == 0), r.status
    # VmHWM (peak RSS of this address space): ru_maxrss would carry the parent's peak across fork+exec
    hwm = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM:"))
    print(json.dumps({"ncol": ncol, "chunk_size": chunk, "maxrss_kb": hwm, "state_bytes": c.state_size()}))


def memory(path, big: int, chunk: int) -> dict:
    runs = []
    for n, ch in ((1, 0), (big, 0), (big, chunk)):
        r = subprocess.run([sys.executable, __file__, "--memory-probe", str(path), str(n), str(ch)], check=True,
                           capture_output=True, text=True)
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    kb = [r["maxrss_kb"] for r in runs]
    return {"probes": runs, "peak_bytes_per_column": (kb[1] - kb[0]) * 1024 / (big - 1),
            f"peak_bytes_per_column_chunk_{chunk}": (kb[2] - kb[0]) * 1024 / (big - 1),
            "state_bytes_per_column": (runs[1]["state_bytes"] - runs[0]["state_bytes"]) / (big - 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="CI-sized run (few columns and steps)")
    p.add_argument("--model", help="an existing 7-day model file (default: train the example one)")
    p.add_argument("--hidden", type=int, default=0, help="re-export with this LSTM width (timing only)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads, process-wide (0: leave as is; 1 by default: on a shared machine "
                        "OpenMP threads that wait for descheduled peers make timings meaningless)")
    p.add_argument("--chunk", type=int, default=256, help="also time the core with this chunk_size (ncol > chunk)")
    p.add_argument("--percol-max", type=int, default=64, help="columns timed one call each")
    p.add_argument("--out", default=str(HERE / "results" / "bench_core.json"))
    p.add_argument("--streaming", action="store_true",
                   help="compare a streaming model with the window model (results/bench_core_streaming.json)")
    p.add_argument("--repeats", type=int, default=3, help="--streaming: runs per row (median reported)")
    p.add_argument("--stream-model", default=None, metavar="FILE_OR_NAME",
                   help="--streaming: this streaming model file or pretrained name (e.g. drylands-v1) instead of "
                        "the test LSTM")
    p.add_argument("--memory-probe", nargs=3, metavar=("MODEL", "NCOL", "CHUNK"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_probe:
        memory_probe(args.memory_probe[0], int(args.memory_probe[1]), int(args.memory_probe[2]))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.streaming:
        return streaming_main(args)
    from rsoil_couple.modelfile.export import load_model

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.model) if args.model else Path(tmp) / "lstm_7d.pt"
        if not args.model:
            make_model(path, args.hidden)
        module, meta = load_model(path)
        ncols = [1, 16, 64] if args.quick else [1, 4, 16, 64, 256, 1024, 4096]
        rows = []
        for ncol in ncols:
            nsteps = 3 if args.quick else (12 if ncol <= 64 else 7 if ncol <= 1024 else 5)
            rows.append(bench_ncol(path, meta, module, ncol, nsteps, 16 if args.quick else args.percol_max,
                                   args.chunk))
            r = rows[-1]
            ck = f"core_chunk_{args.chunk}_column_steps_per_s"
            print(f"ncol {ncol:5d}: core {r['core_column_steps_per_s']:10.0f}  "
                  f"python {r['python_full_window_column_steps_per_s']:10.0f}"
                  f"  percol {r['percol_column_steps_per_s']:8.0f} column-steps/s | core/percol {r['core_vs_percol']:6.2f}"
                  f"  core/python {r['core_vs_python']:5.2f}  overhead {100 * r['core_overhead_fraction']:5.2f} % "
                  f"(call {100 * r['core_call_overhead_fraction']:5.2f} %)"
                  + (f"  | core chunk {args.chunk}: {r[ck]:8.0f}" if ck in r else ""), flush=True)
        agree = agreement(path, meta, module, [1, 7] if args.quick else [1, 7, 1000])
        for a in agree:
            print(f"agreement ncol {a['ncol']:4d}: pybind11 vs TorchScript {a['max_rel_pybind11_vs_torchscript']:.2e}, "
                  f"C API vs TorchScript {a['max_rel_capi_vs_torchscript']:.2e}, "
                  f"C API vs pybind11 {a['max_rel_capi_vs_pybind11']:.2e}")
        mem = memory(path, 64 if args.quick else 4096, 16 if args.quick else 256)
        chunk_key = next(k for k in mem if k.startswith("peak_bytes_per_column_chunk"))
        print(f"peak memory per column {mem['peak_bytes_per_column'] / 1024:.1f} KiB, "
              f"{mem[chunk_key] / 1024:.1f} KiB with {chunk_key.rsplit('_', 1)[1]}-column chunks "
              f"(restart state {mem['state_bytes_per_column'] / 1024:.1f} KiB)")
    big = [r for r in rows if r["ncol"] >= 64]
    result = {
        "model": {"kind": meta["model_kind"], "past_steps": meta["past_steps"], "future_steps": meta["future_steps"],
                  "hidden": lstm_hidden(module),
                  "model_id": meta["model_id"],
                  "source": args.model or ("example_model" + (f" hidden={args.hidden}" if args.hidden else ""))},
        "threads": torch.get_num_threads(), "quick": args.quick,
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor(), "torch": torch.__version__},
        "rows": rows, "agreement": agree, "memory": mem,
        "targets": {"core_vs_percol_min_from_64_columns": min(r["core_vs_percol"] for r in big) if big else None,
                    "core_overhead_fraction_max": max(r["core_overhead_fraction"] for r in rows)},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
