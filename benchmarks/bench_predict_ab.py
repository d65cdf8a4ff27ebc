"""Configurations of `rsoil-couple predict` side by side: the same input, runs interleaved round by round.

On a machine shared with other jobs, the load changes from minute to minute; running configuration A,
then B, then C, then A again ... gives every configuration about the same conditions, and the ratios
of the medians (and of the per-round pairs) are what to quote. Each configuration is
``LABEL=TREE::PREDICT ARGS`` (TREE: the source tree whose rsoil_couple runs, e.g. this worktree or a
checkout of main with its build; ``.`` = this tree). Each run is a fresh interpreter
(`bench_predict.run_predict`: its peak RSS, predict's own throughput, CPU seconds, stage seconds and
the 1-minute load average before and after). The first configuration is the reference of the ratios.

    PYTHONPATH=. python3 benchmarks/bench_predict_ab.py --input IN.nc --repeats 3 --json ab.json \\
        "old=/path/to/main::--model drylands-v1" "new=.::--model drylands-v1"
Outputs of the configurations are compared value for value with the first one's (``identical``).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict import run_predict, same_output  # noqa: E402


def parse(spec: str) -> tuple[str, Path, list[str]]:
    label, rest = spec.split("=", 1)
    tree, args = rest.split("::", 1) if "::" in rest else (rest, "")
    return label, Path(tree).resolve(), shlex.split(args)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+", help="LABEL=TREE::PREDICT ARGS (the first is the reference)")
    ap.add_argument("--input", required=True, help="predict --input")
    ap.add_argument("--repeats", type=int, default=3, help="rounds (each runs every configuration once)")
    ap.add_argument("--workdir", default="/tmp", help="outputs go here")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    cfgs = [parse(c) for c in args.configs]
    wd = Path(args.workdir)
    wd.mkdir(parents=True, exist_ok=True)
    runs = {label: [] for label, _, _ in cfgs}
    for r in range(args.repeats):
        for label, tree, extra in cfgs:
            out = wd / f"ab_{label}.nc"
            res = run_predict(None, Path(args.input), out, None, extra, pythonpath=tree)
            runs[label].append(res)
            print(f"round {r + 1} {label:>12s}: {res['column_steps_per_s']:>12,.0f} column-steps/s, "
                  f"predict {res['predict_s']:.1f} s, CPU {res['cpu_s']:.1f} s, peak RSS "
                  f"{res['peak_rss_mib']:.0f} MiB, load {res['load_1min_before']:.1f}/{res['load_1min_after']:.1f}",
                  flush=True)
    ref = cfgs[0][0]
    summary = {"input": args.input, "repeats": args.repeats, "cpus": os.cpu_count(), "configs": {}}
    for label, tree, extra in cfgs:
        rs = runs[label]
        s = {"tree": str(tree), "args": extra, "runs": rs,
             **{f"median_{k}": statistics.median(x[k] for x in rs)
                for k in ("column_steps_per_s", "predict_s", "cpu_s", "peak_rss_mib")}}
        # CPU-based throughput: what one core gives, whatever share of it the run got
        s["median_column_steps_per_cpu_s"] = statistics.median(
            x["column_steps_per_s"] * x["predict_s"] / x["cpu_s"] for x in rs)
        s["ratio_over_ref_paired"] = statistics.median(
            b["column_steps_per_s"] / a["column_steps_per_s"] for a, b in zip(runs[ref], rs))
        s["identical_to_ref"] = same_output(wd / f"ab_{ref}.nc", wd / f"ab_{label}.nc")
        summary["configs"][label] = s
        print(f"{label:>12s}: median {s['median_column_steps_per_s']:>12,.0f} column-steps/s "
              f"({s['median_column_steps_per_cpu_s']:,.0f} per CPU-s of the whole process), "
              f"x{s['ratio_over_ref_paired']:.2f} {ref} (paired), peak RSS {s['median_peak_rss_mib']:.0f} MiB, "
              f"identical output: {s['identical_to_ref']}", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
