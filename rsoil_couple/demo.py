"""`rsoil-couple demo`: the whole chain on real data (default: the packaged US-Hn1 2019 sample) or a synthetic site.

data -> lagged mutual information -> Q10 family vs the paper's new LSTM and the knowledge-guided
streaming ensemble (kg_stream) trained here, beside the pretrained drylands models -> exported model file ->
the same file through the C++ core offline (`predict`) and inside the Fortran CLM-like host, half of
whose columns swap their Q10 respiration for the LSTM -> validation against the observations.
Everything lands in one folder with a Markdown report (``report.md``) and its figures.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# The demo's quick LSTM: big enough to beat the Q10 family, small enough for a 2-core laptop.
QUICK_MODEL = {"kind": "lstm", "hidden": 24, "past_hours": 48.0, "future_hours": 24.0}
QUICK_TRAIN = {"epochs": 25, "batch_size": 128, "lr": 0.003, "patience": 5, "max_train_samples": 2500}
HOST_COLUMNS = 8          # columns in the demo's host run; every other one uses the LSTM
TEST_FRACTION = 0.25      # the last quarter of the record is the (extrapolation) test window
#: the knowledge-guided streaming ensemble trained here: benchmark (a)'s model (configs/benchmarks/a_us_hn1_extrapolation.toml),
#: trained as its `_slide_refit_none` variant: cross-validation (each member on its own block of days), then every member
#: refit on all rows, λ = 1: the least dependent on which rain falls in the validation days (docs/benchmarks/README.md)
STREAM_MODEL = {"kind": "kg_stream", "hidden": 0, "modulation_max": 10.0, "moisture_form": "damm"}
STREAM_TRAIN = dict(epochs=40, lr=0.003, patience=6, members=5, member_validation="slide", refit=True, modulation_choice="none")
PRETRAINED = "drylands-v2"  # the shipped model shown beside the one the demo trains (`--pretrained` names others)


@dataclass
class Progress:
    """Numbered, timed progress lines (the demo's steps are few and long)."""

    total: int
    t0: float = field(default_factory=time.perf_counter)
    n: int = 0

    def step(self, what: str) -> None:
        """Print the next numbered progress line with the time since the start.

        Parameters
        ----------
        what : str
            What the step does; printed after ``[n/total elapsed s]``.
        """
        self.n += 1
        print(f"[{self.n}/{self.total} {time.perf_counter() - self.t0:6.1f} s] {what}", flush=True)


def load_site(data: str | None, out: Path):
    """(dataset, observation file path, label); the synthetic site is written to ``out``."""
    from .data import read_site, write_canonical
    from .data.synthetic import synthetic_site

    if data:
        ds = read_site(data)
        return ds, Path(data), f"{ds.attrs.get('site', '?')} ({Path(data).name})"
    ds = synthetic_site(days=90)
    path = write_canonical(ds, out / "synthetic_site.nc")
    return ds, path, "SYNTHETIC dryland site (rsoil_couple.synthetic; not a measurement)"


def split_window(ds) -> tuple[str, str]:
    """The contiguous test window: the last `TEST_FRACTION` of the record, whole days."""
    t = ds["time"].values
    start = t[0] + (t[-1] - t[0]) * (1.0 - TEST_FRACTION)
    return (str(np.datetime_as_string(start, unit="D")), str(np.datetime_as_string(t[-1], unit="D")))


def fit_baselines(ds, test_start: str, test_times: np.ndarray) -> dict:
    """The Q10 family (LM) and the CLM-structure baseline, fitted before the test window and scored
    on exactly the LSTM's test samples (`test_times`, END of step). Returns
    ``{name: {"params", "test": metrics}}``.
    """
    from . import metrics
    from .baselines import q10

    col = ds.isel(column=0)
    train = col.sel(time=slice(None, np.datetime64(test_start) - np.timedelta64(1, "s")))
    test = col.sel(time=test_times)
    def swc(d):
        return d["swc"].values if "swc" in ds else None

    out = {}
    for name, f in q10.fit_family(train["tsoil"].values, swc(train), train["rsoil"].values,
                                  fitted_on="demo training period").items():
        params = {"k": f.k, "sand": f.sand, "clay": f.clay} if isinstance(f, q10.ClmFit) else f.params
        sim = f.predict(test["tsoil"].values, swc(test))
        out[name] = {"params": params, "test": metrics.all_metrics(test["rsoil"].values, sim)}
    return out


def _site_config(ds, data: str | None):
    """The demo's site as a config entry, and the drivers it has: (SiteConfig, past_vars)."""
    from .config import SiteConfig
    return (SiteConfig(path=data or "synthetic", depth_m=float(ds.attrs.get("depth_m", 0.15))),
            [v for v in ("tsoil", "swc", "precip") if v in ds])


def _train_export(cfg, ds, data: str | None, model_path: Path, train):
    """Seed as ``cfg.run`` says, run ``train(cfg, [site])`` on the demo's site and export the model to
    ``model_path`` (the metadata gets model_id and versions); returns the run's result.
    """
    from .modelfile.export import export_model
    from .training.fit import set_determinism
    from .training.records import site_from_dataset

    set_determinism(cfg.run.seed, cfg.run.threads)
    source = "synthetic" if data is None else str(ds.attrs.get("source", data))
    res = train(cfg, [site_from_dataset(ds, name=str(ds.attrs.get("site", "site")), source=source)])
    res.meta = export_model(res.model, res.meta, model_path)
    return res


def train_quick(data: str | None, ds, test: tuple[str, str], model_path: Path):
    """Train the quick new LSTM (extrapolation split) and export it; returns the train RunResult."""
    from .config import DataSection, ModelConfig, RunConfig, RunSection, SplitSection, TrainSection
    from .training.run import train_run

    site, past_vars = _site_config(ds, data)
    cfg = RunConfig(
        data=DataSection(sites=[site], past_vars=past_vars, future_vars=["tsoil"],
                         past_hours=QUICK_MODEL["past_hours"], future_hours=QUICK_MODEL["future_hours"]),
        run=RunSection(name="demo_quick_lstm", seed=0, threads=1),
        split=SplitSection(scenario="extrapolation", test_start=test[0], test_end=test[1]),
        model=ModelConfig(kind=QUICK_MODEL["kind"], hidden=QUICK_MODEL["hidden"]),
        train=TrainSection(**QUICK_TRAIN, progress=sys.stdout.isatty()),
    )
    return _train_export(cfg, ds, data, model_path, lambda c, sites: train_run(c, sites=sites))


def train_stream(data: str | None, ds, test: tuple[str, str], model_path: Path):
    """Train the knowledge-guided streaming ensemble (`STREAM_MODEL`, `STREAM_TRAIN`: benchmark (a)'s
    model) on the record before the test window and export it; returns the StreamResult.
    """
    from .config import DataSection, ModelConfig, RunConfig, RunSection, SplitSection, TrainSection
    from .training.stream_run import stream_train_run

    site, past_vars = _site_config(ds, data)
    cfg = RunConfig(
        data=DataSection(sites=[site], past_vars=past_vars, future_vars=[], past_hours=168.0, future_hours=0.0),
        run=RunSection(name="demo_kg_stream", seed=0, threads=1),
        split=SplitSection(scenario="extrapolation", test_start=test[0], test_end=test[1], val_fraction=0.1),
        model=ModelConfig(**STREAM_MODEL), train=TrainSection(**STREAM_TRAIN, progress=False))
    return _train_export(cfg, ds, data, model_path, lambda c, sites: stream_train_run(c, sites=sites, progress=False))


def core_metrics(model, obs, obs_path: Path, out_nc: Path, test: tuple[str, str]) -> dict:
    """A model file (path or name) over the demo's site through the C++ core (`predict`), scored on the
    test window's rows where the network ran (status ACTIVE or EXTRAPOLATING).
    """
    import xarray as xr

    from .metrics import all_metrics
    from .prediction.run import predict

    t0, t1 = np.datetime64(test[0]), np.datetime64(test[1]) + np.timedelta64(1, "D")
    predict(str(model), obs_path, out_nc, progress=False)
    with xr.open_dataset(out_nc) as r:
        t = r["time"].values
        keep = (t >= t0) & (t < t1) & np.isin(r["status"].values.reshape(len(t), -1)[:, 0], (0, 1))
        sim = r["rsoil"].values.reshape(len(t), -1)[:, 0]
    o = obs["rsoil"].values.reshape(len(obs["time"]), -1)[:, 0]
    if len(o) != len(t):
        raise ValueError(f"{out_nc}: {len(t)} time steps but the observations {obs_path} have {len(o)}")
    return all_metrics(o[keep], sim[keep])


def run_host(ds, model_path: Path, k_baseline: float, workdir: Path) -> dict:
    """Run the Fortran CLM-like host on `HOST_COLUMNS` copies of the site's drivers, every other
    column on the LSTM (policy ``persistence``: what an online land model can use at step t), and check the swap column by column.
    """
    import xarray as xr

    from .core.coupler import STATUS_NAMES
    from .core.forcing import replicate_columns, write_forcing
    from .core.host import host_executable, write_namelist

    workdir.mkdir(parents=True, exist_ok=True)
    forcing = write_forcing(replicate_columns(ds, HOST_COLUMNS), workdir / "forcing.nc")
    common = dict(model_file=str(model_path.resolve()), forcing_file=str(forcing.resolve()),
                  policy="persistence", coupling="flux", k_baseline=float(k_baseline),
                  rsoil_depth_m=float(ds.attrs.get("depth_m", 0.15)))
    runs = {}
    for name, lstm in (("swapped", "stride"), ("q10_only", "none")):
        nml = write_namelist(workdir / f"{name}.nml", hist_file=str((workdir / f"{name}.h0.nc").resolve()),
                             lstm_columns=lstm, lstm_stride=2, lstm_offset=1, **common)
        t0 = time.perf_counter()
        proc = subprocess.run([str(host_executable()), str(nml.resolve())], cwd=workdir, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"CLM-like host failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
        runs[name] = {"history": workdir / f"{name}.h0.nc", "seconds": time.perf_counter() - t0}
    with xr.open_dataset(runs["swapped"]["history"]) as a, xr.open_dataset(runs["q10_only"]["history"]) as b:
        changed = np.flatnonzero(~np.all(np.isclose(a["SR"].values, b["SR"].values, rtol=0, atol=0,
                                                    equal_nan=True), axis=0))
        status = a["RSC_STATUS"].values
    expected = np.arange(0, HOST_COLUMNS, 2)
    return {"history": str(runs["swapped"]["history"]), "q10_history": str(runs["q10_only"]["history"]),
            "seconds": {k: round(v["seconds"], 2) for k, v in runs.items()},
            "columns_changed": changed.tolist(), "columns_expected": expected.tolist(),
            "swap_exact": bool(np.array_equal(changed, expected)),
            "status_counts": {(STATUS_NAMES[s] if 0 <= s < len(STATUS_NAMES) else str(s)): int((status == s).sum())
                              for s in np.unique(status).astype(int)}}


def pretrained_rows(obs_path: Path, out: Path, test: tuple[str, str], label: str, name: str = PRETRAINED) -> dict:
    """The pretrained model ``name`` over the demo's site through the core (`predict`), scored on the test window.

    Two rows: as shipped (the median training-site scale) and with the site scale calibrated on the
    demo's training period (`rsoil-couple calibrate`, least squares through the origin). Where the
    pretrained model's training record includes this site, the overlap with the test window is stated.
    """
    from .data import read_site
    from .modelfile.export import load_model
    from .prediction.calibrate import calibrate
    _, meta = load_model(name)
    t0, t1 = np.datetime64(test[0]), np.datetime64(test[1]) + np.timedelta64(1, "D")
    obs = read_site(obs_path)
    rows, note = {}, "not trained on this site"
    for s, (a, b) in zip(meta["training"]["sites"], meta["training"]["periods"]):
        if s in label:
            overlap = max(np.timedelta64(0, "h"), min(np.datetime64(b), t1) - max(np.datetime64(a), t0))
            note = (f"trained on {s} {a[:10]}..{b[:10]}; overlap with this test window "
                    f"{overlap.astype('timedelta64[h]').astype(int)} h")
    cal = out / f"{name}_calibrated.pt"
    calibrate(name, str(obs_path), str(cal), start=str(obs["time"].values[0])[:10],
              end=str(np.datetime_as_string(t0 - np.timedelta64(1, "D"), unit="D")))
    for row, model in ((f"{name} (as shipped)", name), (f"{name} (site scale calibrated)", cal)):
        rows[row] = core_metrics(model, obs, obs_path, out / f"offline_{Path(str(model)).stem}.nc", test)
    return {"rows": rows, "model_id": meta["model_id"], "note": note}


def metrics_table(rows: dict[str, dict]) -> str:
    """Markdown table of MSE/NSE/CC/KGE/n per model."""
    lines = ["| model | MSE | NSE | CC | KGE | n |", "|---|---|---|---|---|---|"]
    for name, m in rows.items():
        lines.append(f"| {name} | {m['mse']:.4f} | {m['nse']:.3f} | {m['cc']:.3f} | {m['kge']:.3f} | {int(m['n'])} |")
    return "\n".join(lines)


def run_demo(data: str | None, out: Path, synthetic: bool = False, pretrained: tuple[str, ...] = (PRETRAINED,)) -> dict:
    """Run the chain; returns the summary also written to ``out/demo.json``.

    Parameters
    ----------
    data : str or None
        A site file; None: the packaged real sample (US-Hn1 2019, rsoil_couple/sample_data).
    out : Path
        Output folder.
    synthetic : bool
        Use the built-in SYNTHETIC site instead (for tests; says so everywhere).
    pretrained : tuple of str
        The shipped models shown beside the trained one (names, `rsoil_couple.pretrained.available`).
    """
    from .baselines import mi
    from .data import read_site
    from .data.sites import SAMPLE_US_HN1
    from .evaluation.validate import validate
    from .prediction.run import predict
    from .pretrained import available

    unknown = [n for n in pretrained if n not in available()]
    if unknown:
        raise ValueError(f"--pretrained {' '.join(unknown)}: not a pretrained model name; available: {available()}")
    out.mkdir(parents=True, exist_ok=True)
    prog = Progress(total=10)
    if synthetic:
        if data:
            raise ValueError("--synthetic and --data exclude each other")
        prog.step("--synthetic: using the SYNTHETIC dryland site (not a measurement)")
    elif data:
        prog.step("reading the site")
    else:
        data = str(SAMPLE_US_HN1)
        prog.step("no --data given: the packaged real sample of US-Hn1 2019 (AmeriFlux, CC-BY-4.0; "
                  "rsoil_couple/sample_data/README.md)")
    ds, obs_path, label = load_site(data, out)
    print(f"      {label}: {ds.sizes['time']} steps of {int(ds.attrs['step_seconds'])} s, "
          f"{int(np.isfinite(ds['rsoil'].values).sum())} Rsoil observations")
    test = split_window(ds)

    prog.step("lagged mutual information (50 bins, -24..+24 h)")
    mi_res = mi.lagged_mi(ds, progress=False)
    (out / "mi.json").write_text(json.dumps(mi_res, indent=1) + "\n")
    mi.plot_mi(mi_res, out / "mi.png")

    model_path = out / "model.pt"
    prog.step(f"training the quick new LSTM ({QUICK_MODEL['past_hours']:g} h past + "
              f"{QUICK_MODEL['future_hours']:g} h future) and exporting {model_path.name}")
    res = train_quick(data, ds, test, model_path)

    stream_path = out / "kg_stream.pt"
    prog.step(f"training the knowledge-guided streaming ensemble ({STREAM_MODEL['kind']}, {STREAM_TRAIN['members']} "
              f"members, benchmark (a)'s model, cross-validated, then refit) and exporting {stream_path.name}; "
              "through the C++ core")
    sres = train_stream(data, ds, test, stream_path)
    stream_row = core_metrics(stream_path, read_site(obs_path), obs_path, out / "offline_kg_stream.nc", test)

    prog.step(f"Q10 family and CLM-structure baseline (fitted before {test[0]}, scored on the LSTM's "
              f"{len(res.split.test)} test samples)")
    baselines = fit_baselines(ds, test[0], res.ws.time[res.split.test])

    prog.step("offline emulation through the C++ core (rsoil-couple predict, policies supplied, persistence, lagged)")
    offline = {}
    for policy in ("supplied", "persistence", "lagged"):
        p = out / f"offline_{policy}.nc"
        predict(model_path, obs_path, p, policy=policy, progress=False)
        offline[policy] = p

    prog.step(f"the pretrained {', '.join(pretrained)} (streaming ensembles of 8 dryland sites) through the C++ core: "
              f"rsoil-couple predict --model NAME")
    shipped = {n: pretrained_rows(obs_path, out, test, label, n) for n in pretrained}

    prog.step(f"Fortran CLM-like host: {HOST_COLUMNS} columns, every other one swapped to the LSTM")
    host = run_host(ds, model_path, baselines.get("clm_structure", {}).get("params", {}).get("k", 1.0),
                    out / "host")
    print(f"      columns changed by the swap: {host['columns_changed']} "
          f"(expected {host['columns_expected']}: {'exact' if host['swap_exact'] else 'MISMATCH'})")

    prog.step("validation against the observations (metrics, figures, report)")
    val_dir = out / "validation"
    train_end = str(np.datetime_as_string(np.datetime64(test[0]) - np.timedelta64(1, "D"), unit="D"))
    vres = validate(str(obs_path), [str(offline[p]) for p in ("supplied", "persistence", "lagged")], str(val_dir),
             clm_paths=[host["history"]], q10=True,
             fit_period=(str(np.datetime_as_string(ds["time"].values[0], unit="D")), train_end),
             periods=[("test", test[0], test[1])])

    prog.step("summary")
    rows = {"new LSTM (test window)": res.test_metrics,
            f"kg_stream ensemble of {STREAM_TRAIN['members']} (trained here; C++ core)": stream_row}
    for r in shipped.values():
        rows.update(r["rows"])
    rows.update({name: b["test"] for name, b in baselines.items()})
    series = next(iter(vres["columns"].values()))["resolutions"]["native"]["series"]
    policy_rows = {name: m["test"] for name, m in series.items() if name.startswith(QUICK_MODEL["kind"] + " (")}
    summary = {"site": label, "synthetic": data is None, "test_window": list(test),
               "model": str(model_path), "model_id": res.meta.get("model_id", ""),
               "stream_model": str(stream_path), "stream_model_id": sres.meta.get("model_id", ""),
               "stream_physics": sres.meta["training"]["physics"],
               "stream_test_metrics_python": sres.meta["test_metrics"],   # the same model in Python, for the core's row
               "mi_peak_lag_hours": {k: v["peak_lag_hours"] for k, v in mi_res["drivers"].items()},
               "test_metrics": rows, "policy_test_metrics": policy_rows, "host": host,
               "pretrained": {n: {k: v for k, v in r.items() if k != "rows"} for n, r in shipped.items()},
               "validation_report": str(val_dir / "report.md"), "seconds": round(time.perf_counter() - prog.t0, 1)}
    (out / "demo.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    report = write_report(out, summary, rows)
    print("\nTest-window metrics (Rsoil, umol m-2 s-1):\n" + metrics_table(rows))
    print("\nThe same model through the C++ core, per future-driver policy (test window):\n"
          + metrics_table(policy_rows))
    print(f"\nreport: {report}")
    return summary


def pretrained_text(shipped: dict) -> str:
    """The report's sentence on the pretrained models shown."""
    each = "; ".join(f"`{n}` (model_id `{r['model_id']}`; {r['note']}; card docs/model_card_{n}.md)"
                     for n, r in shipped.items())
    return (f"The pretrained {each} ran through the C++ core as shipped and with the site scale calibrated on "
            "the training period (`rsoil-couple calibrate`).")


def write_report(out: Path, summary: dict, rows: dict) -> Path:
    """``out/report.md``: the demo's story with its figures and numbers."""
    host = summary["host"]
    mi_lags = ", ".join(f"{k} {v:+.1f} h" for k, v in summary["mi_peak_lag_hours"].items())
    text = f"""# rsoil_couple demo — {summary['site']}

{"**SYNTHETIC DATA**: the built-in synthetic dryland site, not a measurement." if summary['synthetic'] else ""}

Test window (extrapolation, contiguous, after the training period): {summary['test_window'][0]} .. {summary['test_window'][1]}.

## 1. Lagged mutual information (Fig. 2A)
Peak lags: {mi_lags}. Positive lag = the driver's FUTURE value (see `mi.json`).

![mutual information](mi.png)

## 2. Q10 family vs the new LSTM on the test window
{metrics_table(rows)}

Model files: `{Path(summary['model']).name}` (the paper's new LSTM, model_id `{summary['model_id']}`) and
`{Path(summary['stream_model']).name}` (the knowledge-guided streaming ensemble: benchmark (a)'s model, cross-validated
on blocks of days, then refit on all rows; model_id `{summary['stream_model_id']}`; scored through the C++ core; its learned
physics in `demo.json`).

{pretrained_text(summary['pretrained'])}

## 3. The same model inside the Fortran CLM-like host
{HOST_COLUMNS} columns, every other one switched to the LSTM (policy `persistence`); the others keep the
CLM-structure Q10 respiration; the LSTM columns get their future soil temperature from the
`persistence` forecast (yesterday's diel cycle shifted to today's level). Columns whose history changed against an all-Q10 run:
{host['columns_changed']} (expected {host['columns_expected']}: {'exact' if host['swap_exact'] else 'MISMATCH'}).
Host wall time: {host['seconds']}. Status counts in the swapped run: {host['status_counts']}.

## 4. What coupling costs: the future-driver policies (test window)
{metrics_table(summary['policy_test_metrics'])}

## 5. Validation against the observations
Offline core runs through the C++ core, one per future-driver policy — `supplied` (the true
future soil temperature: offline only), `persistence` (forecast: what an online model can use at step
t) and `lagged` (exact, but the value for step t arrives at step t + 24 h; scored here at arrival, as a
land model using it as its current flux would), the host's history (`SR`), the Q10 family and the
CLM-structure baseline: [validation/report.md](validation/report.md).
"""
    path = out / "report.md"
    path.write_text(text)
    return path


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``rsoil-couple demo`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command's parser, filled here with ``--data`` (site file; default the packaged US-Hn1 2019
        sample), ``--synthetic`` (the built-in synthetic site instead), ``--pretrained`` (the shipped models
        shown beside the trained one) and ``--out`` (output folder).
    """
    parser.add_argument("--data", default=None,
                        help="site file (e.g. ../shared/data/US-Hn1/US-Hn1_2019_30min.csv); without it the "
                             "packaged real sample of US-Hn1 2019 (the same measurements, demo columns only)")
    parser.add_argument("--synthetic", action="store_true",
                        help="use the built-in SYNTHETIC dryland site instead (labelled as such)")
    parser.add_argument("--pretrained", nargs="+", default=[PRETRAINED], metavar="NAME",
                        help=f"pretrained models to show beside the trained one (default {PRETRAINED}; "
                             "e.g. --pretrained drylands-v1 drylands-v2)")
    parser.add_argument("--out", default="demo_out", help="output folder (default demo_out)")


def run(args: argparse.Namespace) -> int:
    """Run ``rsoil-couple demo``: the whole chain (`run_demo`) into the folder ``args.out``.

    Parameters
    ----------
    args : argparse.Namespace
        Options parsed by `configure_parser`.

    Returns
    -------
    int
        Exit status 0; ``ValueError`` is raised when both ``--data`` and ``--synthetic`` are given, or
        ``--pretrained`` names no shipped model.
    """
    run_demo(args.data, Path(args.out), synthetic=args.synthetic, pretrained=tuple(args.pretrained))
    return 0
