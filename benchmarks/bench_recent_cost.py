"""What kg_stream's delay line (``model.recent_hours``) costs in the C++ core: column-steps per second of
``Coupler.step`` for hidden-0 kg_stream files with no line, a 6 h and a 24 h line (1,024 columns, 30-min
steps, random drivers, one torch thread), timed interleaved, median of 5 repeats, as ratios to no line.
The files are trained for one epoch on the packaged US-Hn1 sample (timing only: the numbers they give do
not matter here).

    PYTHONPATH=. python3 benchmarks/bench_recent_cost.py --out docs/benchmarks/recent_sweep/core_cost.json
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rsoil_couple import Coupler
from rsoil_couple.config import DataSection, ModelConfig, RunConfig, RunSection, SiteConfig, SplitSection, TrainSection
from rsoil_couple.modelfile.export import export_model
from rsoil_couple.training.stream_run import stream_train_run

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench_recent_cost_"))
    sample = ROOT / "rsoil_couple/sample_data/US-Hn1_2019_demo_30min.csv.gz"
    files = {}
    for h in (0.0, 6.0, 24.0):
        cfg = RunConfig(run=RunSection(name="cost", seed=0),
                        data=DataSection(sites=[SiteConfig(sample.as_posix(), "US-Hn1", 0.15)],
                                         past_vars=["tsoil", "swc", "precip"], future_vars=[], past_hours=168,
                                         future_hours=0),
                        split=SplitSection(scenario="temporal", fractions=[0.6, 0.1, 0.3]),
                        model=ModelConfig(kind="kg_stream", hidden=0, modulation_max=10.0, recent_hours=h),
                        train=TrainSection(epochs=1, patience=1, members=1, progress=False))
        res = stream_train_run(cfg, progress=False)
        files[h] = tmp / f"r{h:g}.pt"
        export_model(res.model, res.meta, files[h])
    ncol, steps = 1024, args.steps
    rng = np.random.default_rng(0)
    T = 15 + 10 * rng.random((steps, ncol))
    W = 0.05 + 0.2 * rng.random((steps, ncol))
    P = (rng.random((steps, ncol)) > 0.9) * 2.0
    cs = {h: Coupler(files[h], ncol, "supplied", chunk_size=0) for h in files}
    times = {h: [] for h in files}
    for _ in range(5):
        for h, c in cs.items():
            t0 = time.perf_counter()
            for k in range(steps):
                c.step(T[k], W[k], P[k])
            times[h].append(ncol * steps / (time.perf_counter() - t0))
    med = {f"{h:g}": statistics.median(v) for h, v in times.items()}
    res = {"column_steps_per_s_median": med, "ratio_to_no_line": {k: v / med["0"] for k, v in med.items()},
           "column_steps_per_s_runs": {f"{h:g}": v for h, v in times.items()},
           "state_floats_per_column": {f"{h:g}": int(c.streaming_state_size) for h, c in cs.items()},
           "ncol": ncol, "steps": steps, "repeats": 5, "threads": 1}
    del cs
    shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps({k: res[k] for k in ("column_steps_per_s_median", "ratio_to_no_line")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
