"""Shared pytest fixtures: where the real data lives (../shared/data beside the repository)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Property-based tests (marker `fuzz`): a CI-sized profile by default, RSOIL_FUZZ_PROFILE=long for the
# long run (>= 100,000 cases over the fuzz tests; docs/dev.md).
settings.register_profile("ci", max_examples=300, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
settings.register_profile("long", max_examples=50_000, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("RSOIL_FUZZ_PROFILE", "ci"))

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """`$RSOIL_SHARED_DATA` or `../shared/data` beside the repository root."""
    return Path(os.environ.get("RSOIL_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder; tests that need it are skipped (with the reason) when it is absent."""
    d = shared_data_dir()
    if not (d / "README.md").is_file():
        pytest.skip(f"real data not found at {d} (set RSOIL_SHARED_DATA)")
    return d


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def run_benchmark_script():
    """``run(script, *args, timeout=600)``: ``benchmarks/<script> *args`` in a subprocess with one torch thread that
    imports the same rsoil_couple as the tests (installed or source tree); returns the CompletedProcess."""
    import subprocess
    import sys

    import rsoil_couple
    pkg_parent = str(Path(rsoil_couple.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([pkg_parent, os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")

    def run(script: str, *args, timeout: float = 600):
        return subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / script), *map(str, args)], env=env,
                              capture_output=True, text=True, timeout=timeout)
    return run


@pytest.fixture(scope="session")
def benchmark_module():
    """``load(script)``: ``benchmarks/<script>`` imported in this process as a module (`module_at`), to test
    its functions without running it."""
    return lambda script: module_at(f"rsoil_benchmarks_{Path(script).stem}", REPO_ROOT / "benchmarks" / script)


LSTM_PAST_H, LSTM_FUTURE_H = 24, 12  # 48 and 24 steps of 30 min


@pytest.fixture(scope="session")
def model(tmp_path_factory):
    """(path, meta, module) of a small new-LSTM model trained on the synthetic site and written by
    rsoil_couple.export (24 h past, 12 h future), shared by the core, C API and emulation tests."""
    from rsoil_couple.modelfile.export import load_model
    from rsoil_couple.training.example import example_model

    path = tmp_path_factory.mktemp("model") / "lstm.pt"
    meta = example_model(path, kind="lstm", past_hours=LSTM_PAST_H, future_hours=LSTM_FUTURE_H, seed=0)
    module, _ = load_model(path)
    return path, meta, module


@pytest.fixture(scope="session")
def model_24h(tmp_path_factory):
    """(path, meta) of a small new-LSTM model, 24 h past + 24 h future at 30 min, seed 0, trained once
    per session by rsoil_couple.training.example_model; shared by the model-file, prediction,
    validation and Fortran tests."""
    from rsoil_couple.training.example import example_model

    path = tmp_path_factory.mktemp("model_24h") / "lstm.pt"
    meta = example_model(path, kind="lstm", past_hours=24, future_hours=24, step_seconds=1800, seed=0)
    return path, meta


# ------------------------------------------------------------------------------------------------
# A hand-made model with a site scale (issue 11): no training, a known response, so calibration and
# the site_scale checks have exact expected numbers. Rsoil = site_scale * 0.25 * 2**((T - 10)/10) *
# sqrt(swc / 0.1) at the last past step, T [degC], swc [m3 m-3].
# ------------------------------------------------------------------------------------------------
def _scaled_q10_classes():
    from typing import List

    import torch

    class ScaledQ10(torch.nn.Module):
        __annotations__ = {"past_var_names": List[str], "future_var_names": List[str]}

        def __init__(self, site_scale: float = 1.0, dtype: torch.dtype = torch.float32):
            super().__init__()
            self.past_var_names = ["tsoil", "swc", "precip"]
            self.future_var_names = []
            self.past_steps, self.future_steps, self.n_past, self.n_future = 4, 0, 3, 0
            self.register_buffer("site_scale", torch.tensor(site_scale, dtype=dtype))

        def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
            t, w = past[:, -1, 0], past[:, -1, 1].clamp(min=0.0)
            return self.site_scale * 0.25 * torch.pow(2.0, (t - 10.0) / 10.0) * torch.sqrt(w / 0.1)

    class PlainQ10(ScaledQ10):
        """The same response without the buffer (a model that cannot be calibrated)."""

        def __init__(self):
            super().__init__()
            del self.site_scale

        def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
            t, w = past[:, -1, 0], past[:, -1, 1].clamp(min=0.0)
            return 0.25 * torch.pow(2.0, (t - 10.0) / 10.0) * torch.sqrt(w / 0.1)

    return ScaledQ10, PlainQ10


SCALED_Q10_META = {
    "schema": "rsoil_meta", "model_kind": "scaled_q10", "step_seconds": 1800,
    "past_hours": 2.0, "past_steps": 4, "future_hours": 0.0, "future_steps": 0,
    "past_vars": [{"name": "tsoil", "units": "degC"}, {"name": "swc", "units": "m3 m-3"},
                  {"name": "precip", "units": "mm"}],
    "future_vars": [], "depth_m": 0.15, "output": {"name": "rsoil", "units": "umol m-2 s-1"},
    "envelope": {"tsoil": {"min": -5.0, "max": 45.0}, "swc": {"min": 0.0, "max": 0.5},
                 "precip": {"min": 0.0, "max": 50.0}},
    "physical_range": {"tsoil": {"min": -50.0, "max": 70.0}, "swc": {"min": 0.0, "max": 1.0},
                       "precip": {"min": 0.0, "max": 500.0}},
    "fallback_q10": {"form": "q10", "params": {"a": 0.25, "b": 2.0}, "tref_c": 10.0, "swc_units": "m3 m-3",
                     "fitted_on": "hand-made test model"},
    "training": {"sites": ["SYNTHETIC-DRY"], "periods": [["2019-06-01T00:30", "2019-06-13T00:00"]],
                 "n_train": 0, "n_val": 0, "seed": 0},
    "test_metrics": {"mse": None, "nse": None, "cc": None, "kge": None, "n": 0},
}


@pytest.fixture(scope="session")
def scaled_q10():
    """``make(path, site_scale=1.0, record=..., plain=False, dtype=float32, raw=False) -> meta``: write the
    hand-made scaled Q10 model. ``record``: the metadata's ``site_scale`` record (default: method
    "trained" with the module's value; None: no record). ``raw=True`` writes without export's checks
    (for files the loaders must refuse), with the module's model_id."""
    import copy
    import io
    import json

    import torch

    from rsoil_couple.modelfile.export import META_NAME, export_model
    from rsoil_couple.modelfile.identity import model_identity

    ScaledQ10, PlainQ10 = _scaled_q10_classes()
    default = object()

    def make(path, site_scale=1.0, record=default, plain=False, dtype=torch.float32, raw=False):
        module = PlainQ10() if plain else ScaledQ10(site_scale, dtype)
        meta = copy.deepcopy(SCALED_Q10_META)
        if record is default:
            record = {"value": float(torch.tensor(site_scale, dtype=torch.float32)), "method": "trained",
                      "sites": ["SYNTHETIC-DRY"]}
        if record is not None:
            meta["site_scale"] = record
        if not raw:
            return export_model(module, meta, path)
        scripted = torch.jit.script(module.eval())
        buf = io.BytesIO()
        torch.jit.save(scripted, buf)
        meta.update(schema_version=2, model_id=model_identity(buf.getvalue())[:16], torch_version=torch.__version__,
                    rsoil_couple_version="test")
        torch.jit.save(scripted, str(path), _extra_files={META_NAME: json.dumps(meta)})
        return meta

    return make


def module_at(name: str, path: Path):
    """The Python file ``path`` as the module ``name``, loaded once by path and kept in sys.modules (a `tests`
    package elsewhere on sys.path shadows this folder, and benchmarks/ is no package; TorchScript needs a
    module in sys.modules to read its source)."""
    import importlib.util
    import sys

    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def streaming_helpers():
    """tests/streaming_model.py as a module (`module_at`)."""
    return module_at("rsoil_tests_predict_streaming_model", Path(__file__).with_name("streaming_model.py"))


@pytest.fixture(scope="session")
def stream_model(tmp_path_factory):
    """(path, meta) of the small streaming test model of tests/streaming_model.py: EMAs + LSTM cell
    (hidden 8), spin-up 10 steps, 30 min steps; shared by the emulate and predict tests."""
    path = tmp_path_factory.mktemp("stream_model") / "ema_stream.pt"
    meta = streaming_helpers().write_streaming_model(path, spinup_steps=10, past_steps=48, hidden=8, seed=1)
    return path, meta
