"""A streaming file's ``run`` as the file has it and as `rsoil_couple.core.stream_fast` prepares it, side by side.

    PYTHONPATH=. python3 benchmarks/bench_stream_prepare.py [--models drylands-v1 drylands-v2] [--rows 1024]
        [--steps 1000] [--repeats 5] [--json OUT.json]

For each model: `prepared_module` for calls of any row count (``rows=0``: shared features, frozen) and for
calls of exactly ``--rows`` rows (chunked heads too), ``run`` over the same probe record of ``--rows``
columns x ``--steps`` steps, interleaved, one torch thread; the median wall time of ``--repeats`` rounds,
the column-steps per second, their ratio, and whether the outputs are identical.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from rsoil_couple.core.stream_fast import prepared_module, probe_drivers
from rsoil_couple.modelfile.export import load_model
from rsoil_couple.pretrained import resolve


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["drylands-v1", "drylands-v2"])
    ap.add_argument("--rows", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = {"benchmark": "bench_stream_prepare", "rows": args.rows, "steps": args.steps, "repeats": args.repeats,
           "threads": 1, "models": {}}
    for name in args.models:
        path = resolve(name)
        module, meta = load_model(path)
        any_rows, applied_any = prepared_module(path, module, meta, rows=0)
        fixed, applied_fixed = prepared_module(path, module, meta, rows=args.rows)
        x = probe_drivers(meta, args.rows, args.steps, seed=3)
        s0 = module.initial_state(args.rows)
        times = {"any_rows": [], "fixed_rows": []}
        with torch.inference_mode():
            any_rows.run(s0, x[:, :50])
            fixed.run(s0, x[:, :50])
            for _ in range(args.repeats):
                for key, m in (("any_rows", any_rows), ("fixed_rows", fixed)):
                    t = time.perf_counter()
                    y, s = m.run(s0, x)
                    times[key].append(time.perf_counter() - t)
                    if key == "any_rows":
                        ya, sa = y, s
                    else:
                        same = bool(torch.equal(ya, y) and torch.equal(sa, s))
        med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
        rec = {"applied_any_rows": applied_any, "applied_fixed_rows": applied_fixed, "seconds": times,
               "median_s": med, "column_steps_per_s": {k: args.rows * args.steps / v for k, v in med.items()},
               "speedup": med["any_rows"] / med["fixed_rows"], "identical": same}
        out["models"][name] = rec
        print(f"{name}: {applied_any} {rec['column_steps_per_s']['any_rows']:,.0f} -> {applied_fixed} "
              f"{rec['column_steps_per_s']['fixed_rows']:,.0f} column-steps/s (x{rec['speedup']:.2f}); "
              f"identical: {same}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
