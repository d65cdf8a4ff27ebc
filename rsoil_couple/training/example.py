"""A SMALL model trained in seconds on the synthetic site and exported: a real model file for other parts' tests."""
from __future__ import annotations

from pathlib import Path

from ..modelfile.export import export_model


def example_model(path: str | Path, kind: str = "lstm", past_hours: float = 24, future_hours: float = 24,
                  step_seconds: int = 1800, seed: int = 0, members: int = 1) -> dict:
    """Train a SMALL model for a few seconds on the synthetic dryland site and export it to ``path``.

    For other parts' tests (C++ core, Fortran host, batch prediction): a real, honest model file —
    envelope from the training data, fallback Q10 fitted on the training data, test metrics measured
    — labelled as trained on SYNTHETIC data. ``future_hours`` is forced to 0 for ``unilstm``.
    ``members > 1`` exports an ensemble of that many seeds (``train.members``).
    Returns the metadata written. Deterministic for a given seed.
    """
    from ..config import (
        DataSection,
        ModelConfig,
        RunConfig,
        RunSection,
        SiteConfig,
        SplitSection,
        TrainSection,
    )
    from .run import synthetic_sites, train_run
    if kind == "unilstm":
        future_hours = 0
    cfg = RunConfig(
        data=DataSection(sites=[SiteConfig(path="synthetic")], past_hours=float(past_hours),
                         future_hours=float(future_hours), future_vars=["tsoil"] if future_hours else []),
        run=RunSection(name=f"example_{kind}", seed=seed),
        split=SplitSection(scenario="interpolation"),
        model=ModelConfig(kind=kind, hidden=16),
        train=TrainSection(epochs=3, batch_size=128, lr=3e-3, patience=3, max_train_samples=1500,
                           max_eval_samples=300, progress=False, members=members))
    res = train_run(cfg, synthetic_sites(step_seconds, days=40, seed=seed))
    return export_model(res.model, res.meta, path)
