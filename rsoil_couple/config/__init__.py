"""Run and experiment configuration from TOML: dataclasses, unknown keys rejected, missing keys named.

A run config (``rsoil-couple train``) has the sections ``[run] [data] [split] [model] [train]
[search]``; an experiment config (``rsoil-couple experiment``) has the same sections as the template
of every case plus ``[experiment]`` and optional per-model overrides ``[models.<kind>]``. Windows are
given in HOURS; the number of steps comes from each site's step length. Paths are relative to the
current directory (the repository root: ``../shared/data/...``). See docs/training.md.
"""
from __future__ import annotations

from .loading import (
    _run_config,
    case_config,
    check_finite,
    check_run,
    load_experiment_config,
    load_run_config,
    model_kind,
)
from .sections import (
                      BASELINES,
                      SCENARIOS,
                      VARS,
                      DataSection,
                      ExperimentConfig,
                      ExperimentSection,
                      ModelConfig,
                      RunConfig,
                      RunSection,
                      SearchSection,
                      SiteConfig,
                      SplitSection,
                      TrainSection,
)

__all__ = ["BASELINES", "SCENARIOS", "VARS", "DataSection", "ExperimentConfig", "ExperimentSection", "ModelConfig",
           "RunConfig", "RunSection", "SearchSection", "SiteConfig", "SplitSection", "TrainSection",
           "case_config", "model_kind", "check_finite", "check_run", "load_experiment_config", "load_run_config", "_run_config"]
