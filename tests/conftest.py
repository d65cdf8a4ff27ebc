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


def streaming_helpers():
    """tests/streaming_model.py as a module (loaded by path: a `tests` package elsewhere on sys.path
    shadows this folder; TorchScript needs the module in sys.modules to read its source)."""
    import importlib.util
    import sys

    name = "rsoil_tests_predict_streaming_model"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("streaming_model.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


@pytest.fixture(scope="session")
def stream_model(tmp_path_factory):
    """(path, meta) of the small streaming test model of tests/streaming_model.py: EMAs + LSTM cell
    (hidden 8), spin-up 10 steps, 30 min steps; shared by the emulate and predict tests."""
    path = tmp_path_factory.mktemp("stream_model") / "ema_stream.pt"
    meta = streaming_helpers().write_streaming_model(path, spinup_steps=10, past_steps=48, hidden=8, seed=1)
    return path, meta
