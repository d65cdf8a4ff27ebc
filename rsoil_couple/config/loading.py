"""Reading configs from TOML: unknown keys refused, missing keys and non-finite numbers named, cross-key checks."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import tomllib

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


def _build(cls, d: Any, where: str):
    """Instantiate dataclass ``cls`` from dict ``d``; unknown keys and missing required keys by name."""
    if not isinstance(d, dict):
        raise ValueError(f"[{where}] must be a table, got {type(d).__name__}")
    names = {f.name: f for f in fields(cls)}
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(where + '.' + k for k in unknown)}; "
                         f"allowed: {sorted(names)}")
    missing = [n for n, f in names.items() if n not in d and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"missing required key(s) {', '.join(where + '.' + k for k in missing)}")
    kw = {}
    for k, v in d.items():
        kw[k] = v
        default = names[k].default
        if isinstance(default, bool) and not isinstance(v, bool):
            raise ValueError(f"{where}.{k} must be true/false, got {v!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"{where}.{k} must be a number, got {v!r}")
            check_finite(v, f"{where}.{k}")
            if isinstance(default, int) and not isinstance(default, bool) and float(v) != int(v):
                raise ValueError(f"{where}.{k} must be an integer, got {v!r}")
            kw[k] = type(default)(v)
        if isinstance(default, str) and not isinstance(v, str):
            raise ValueError(f"{where}.{k} must be a string, got {v!r}")
    return cls(**kw)


def _run_config(d: dict, where_prefix: str = "") -> RunConfig:
    sections = {"run": RunSection, "data": DataSection, "split": SplitSection, "model": ModelConfig,
                "train": TrainSection, "search": SearchSection}
    unknown = sorted(set(d) - set(sections))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)} at the top level; allowed sections: "
                         f"{sorted(sections)} (+ experiment, models in an experiment config)")
    if "data" not in d:
        raise ValueError("missing required section [data]")
    kw = {}
    for name, cls in sections.items():
        if name in d:
            sec = dict(d[name])
            if name == "data":
                sites = sec.get("sites")
                if not isinstance(sites, list) or not sites:
                    raise ValueError("data.sites must be a non-empty list of {path = ..., name = ...} tables")
                sec["sites"] = [_build(SiteConfig, s, f"data.sites[{i}]") for i, s in enumerate(sites)]
            kw[name] = _build(cls, sec, name)
    cfg = RunConfig(**kw)
    check_run(cfg)
    return cfg


def check_run(cfg: RunConfig) -> None:
    """Cross-field checks; each error names the key and the expected value."""
    check_finite(dataclasses.asdict(cfg))  # also configs built in code, not read from TOML
    d, s, m, t = cfg.data, cfg.split, cfg.model, cfg.train
    for key, vs in (("data.past_vars", d.past_vars), ("data.future_vars", d.future_vars)):
        bad = [v for v in vs if v not in VARS]
        if bad:
            raise ValueError(f"{key}: unknown variable(s) {bad}; expected a subset of {list(VARS)}")
        if len(set(vs)) != len(vs):
            raise ValueError(f"{key}: duplicated variable in {vs}")
    if not d.past_vars:
        raise ValueError("data.past_vars must not be empty")
    if d.step_minutes < 0 or abs(d.step_minutes * 60 - round(d.step_minutes * 60)) > 1e-9:
        raise ValueError(f"data.step_minutes must be >= 0 and a whole number of seconds (0 = the first "
                         f"site's step), got {d.step_minutes}")
    if d.past_hours <= 0:
        raise ValueError(f"data.past_hours must be > 0 [h], got {d.past_hours}")
    if d.future_hours < 0:
        raise ValueError(f"data.future_hours must be >= 0 [h], got {d.future_hours}")
    if (d.future_hours == 0) != (not d.future_vars):
        raise ValueError(f"data.future_hours ({d.future_hours}) must be 0 exactly when data.future_vars "
                         f"({d.future_vars}) is empty")
    if s.scenario not in SCENARIOS:
        raise ValueError(f"split.scenario = {s.scenario!r}; expected one of {list(SCENARIOS)}")
    if s.scenario == "interpolation":
        if len(s.fractions) != 3 or any(f < 0 for f in s.fractions) or abs(sum(s.fractions) - 1) > 1e-6:
            raise ValueError(f"split.fractions must be three non-negative numbers summing to 1, got {s.fractions}")
    if s.scenario == "extrapolation" and not (s.test_start and s.test_end):
        raise ValueError("split.test_start and split.test_end (YYYY-MM-DD) are required for "
                         "split.scenario = 'extrapolation'")
    if s.scenario == "months":
        for key, ms in (("split.train_months", s.train_months), ("split.test_months", s.test_months)):
            if not ms or any(not 1 <= mo <= 12 for mo in ms):
                raise ValueError(f"{key} must list months 1..12 for split.scenario = 'months', got {ms}")
        if set(s.train_months) & set(s.test_months):
            raise ValueError(f"split.train_months and split.test_months overlap: "
                             f"{sorted(set(s.train_months) & set(s.test_months))}")
    if s.test_below_train_min and s.test_below_train_min not in d.past_vars:
        raise ValueError(f"split.test_below_train_min = {s.test_below_train_min!r} must be one of "
                         f"data.past_vars {d.past_vars}")
    if not s.val_block_days >= 0:
        raise ValueError(f"split.val_block_days must be >= 0 [days] (0: validation right before the test), "
                         f"got {s.val_block_days}")
    if not 0 < s.val_fraction < 1:
        raise ValueError(f"split.val_fraction must be in (0, 1), got {s.val_fraction}")
    from ..models import MODELS
    if m.kind not in MODELS:
        raise ValueError(f"model.kind = {m.kind!r} is unknown; expected one of {sorted(MODELS)}")
    lo = 0 if getattr(MODELS[m.kind], "streaming", False) else 1
    if not lo <= m.hidden <= 1024:
        raise ValueError(f"model.hidden must be in {lo}..1024 for model.kind = {m.kind!r}, got {m.hidden}"
                         + (" (0: no LSTM, only the dense head on the streamed features)" if lo == 0 else ""))
    if t.epochs < 1 or t.batch_size < 1 or t.lr <= 0 or t.patience < 1:
        raise ValueError("train.epochs, train.batch_size, train.patience must be >= 1 and train.lr > 0")
    if t.chunk_hours <= 0:
        raise ValueError(f"train.chunk_hours must be > 0 [h] (streaming truncation length), got {t.chunk_hours}")
    from ..models.stream_options import TRAIN_CHOICES, check_train_choice
    for name in TRAIN_CHOICES:
        check_train_choice(name, getattr(t, name))
    if t.refit and not getattr(MODELS[m.kind], "streaming", False):
        raise ValueError(f"train.refit = true applies to streaming kinds (kg_stream), not model.kind = {m.kind!r}")
    if t.member_validation != "shared" and not getattr(MODELS[m.kind], "streaming", False):
        raise ValueError(f"train.member_validation = {t.member_validation!r} applies to streaming kinds (kg_stream), "
                         f"not model.kind = {m.kind!r}")
    if not t.modulation_block_hours > 0:
        raise ValueError(f"train.modulation_block_hours must be > 0 [h], got {t.modulation_block_hours}")
    if not 1 <= t.members <= 64:
        raise ValueError(f"train.members must be in 1..64 (1 = one model, N > 1 = an ensemble of N seeds), "
                         f"got {t.members}")
    if cfg.search.mode not in ("grid", "random"):
        raise ValueError(f"search.mode = {cfg.search.mode!r}; expected 'grid' or 'random'")


def check_finite(d: Any, where: str = "") -> None:
    """Raise ValueError naming the key (``train.lr = inf: must be a finite number``) for any inf or
    nan in a config, at any depth: TOML allows them, no setting means them, and they would end up
    as non-JSON ``Infinity``/``NaN`` in a model file's metadata.
    """
    if isinstance(d, float) and not math.isfinite(d):
        raise ValueError(f"{where} = {d}: must be a finite number")
    if isinstance(d, dict):
        for k, v in d.items():
            check_finite(v, f"{where}.{k}" if where else str(k))
    elif isinstance(d, (list, tuple)):
        for i, v in enumerate(d):
            check_finite(v, f"{where}[{i}]")


def _read_toml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file not found: {p}")
    try:
        with open(p, "rb") as fh:
            d = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{p}: not valid TOML: {exc}") from exc
    try:
        check_finite(d)
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from None
    return d


def load_run_config(path: str | Path) -> RunConfig:
    """Read a run config (``rsoil-couple train``). Errors name the file and the key."""
    d = _read_toml(path)
    try:
        return _run_config(d)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def load_experiment_config(path: str | Path) -> ExperimentConfig:
    """Read an experiment config (``rsoil-couple experiment``). Errors name the file and the key."""
    d = dict(_read_toml(path))
    try:
        if "experiment" not in d:
            raise ValueError("missing required section [experiment]")
        exp = _build(ExperimentSection, d.pop("experiment"), "experiment")
        overrides = d.pop("models", {})
        base = _run_config(d)
        from ..models import MODELS
        for name in exp.models:
            if model_kind(overrides, name) not in MODELS:
                raise ValueError(f"experiment.models: unknown model {name!r}; expected one of {sorted(MODELS)} "
                                 "or the name of a [models.<name>] table that sets model.kind")
        streaming = {name: bool(getattr(MODELS[model_kind(overrides, name)], "streaming", False)) for name in exp.models}
        if len(set(streaming.values())) > 1:
            raise ValueError(f"experiment.models mixes window and streaming models ({streaming}); their test "
                             "rows differ, run them as two experiments")
        searched = []
        for name in exp.models:
            search = {**dataclasses.asdict(base.search), **overrides.get(name, {}).get("search", {})}
            if search["hidden"] or search["lr"]:
                searched.append(name)
        if all(streaming.values()) and searched:
            raise ValueError(f"search.hidden / search.lr for streaming models {searched}: an experiment does not "
                             "search them; declare each variant as a [models.<name>] table instead")
        for sc in exp.scenarios:
            if sc not in SCENARIOS:
                raise ValueError(f"experiment.scenarios: unknown scenario {sc!r}; expected one of {list(SCENARIOS)}")
        for b in exp.baselines:
            if b not in BASELINES:
                raise ValueError(f"experiment.baselines: unknown baseline {b!r}; expected one of {list(BASELINES)}")
        if not exp.seeds or not exp.past_hours:
            raise ValueError("experiment.seeds and experiment.past_hours must not be empty")
        for name, ov in overrides.items():
            if model_kind(overrides, name) not in MODELS:
                raise ValueError(f"[models.{name}]: unknown model kind {model_kind(overrides, name)!r} (a name "
                                 f"that is not a kind needs model.kind); expected one of {sorted(MODELS)}")
            unknown = set(ov) - {"model", "train", "search", "data"}
            if unknown:
                raise ValueError(f"[models.{name}] may only hold model/train/search/data tables, got {sorted(unknown)}")
            if set(ov.get("data", {})) - {"past_vars"}:
                raise ValueError(f"[models.{name}.data] may only set past_vars, got {sorted(ov['data'])}")
            case_config(ExperimentConfig(exp, base, overrides), name, exp.scenarios[0],
                        exp.past_hours[0], exp.seeds[0])          # validate the override now
        return ExperimentConfig(exp, base, overrides)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def model_kind(overrides: dict, name: str) -> str:
    """The model kind of an experiment model ``name``: its ``[models.<name>]`` table's ``model.kind``, else ``name``."""
    return overrides.get(name, {}).get("model", {}).get("kind", name)


def case_config(ecfg: ExperimentConfig, name: str, scenario: str, past_hours: float, seed: int) -> RunConfig:
    """The run config of one experiment case: the template with this case's settings applied.

    ``name`` is a model kind or a ``[models.<name>]`` variant. For a streaming kind ``past_hours`` is the
    truncation length of back-propagation through time (``train.chunk_hours``).
    """
    from ..models import MODELS, USES_FUTURE
    b = ecfg.base
    kind = model_kind(ecfg.overrides, name)
    uses_future = USES_FUTURE.get(kind, False) and ecfg.experiment.future_hours > 0 and bool(b.data.future_vars)
    data = replace(b.data, past_hours=float(past_hours),
                   future_hours=float(ecfg.experiment.future_hours) if uses_future else 0.0,
                   future_vars=list(b.data.future_vars) if uses_future else [])
    model, train, search = replace(b.model, kind=kind), b.train, b.search
    ov = ecfg.overrides.get(name, {})
    if "model" in ov:
        model = _build(ModelConfig, {**dataclasses.asdict(model), **ov["model"]}, f"models.{name}.model")
    if "train" in ov:
        train = _build(TrainSection, {**dataclasses.asdict(train), **ov["train"]}, f"models.{name}.train")
    if "search" in ov:
        search = _build(SearchSection, {**dataclasses.asdict(search), **ov["search"]}, f"models.{name}.search")
    if "data" in ov:
        data = replace(data, past_vars=list(ov["data"]["past_vars"]))
    if getattr(MODELS.get(kind), "streaming", False):
        train = replace(train, chunk_hours=float(past_hours))
    cfg = RunConfig(data=data, run=replace(b.run, seed=int(seed), name=f"{name}_{scenario}_{past_hours:g}h_s{seed}"),
                    split=replace(b.split, scenario=scenario), model=model, train=train, search=search)
    check_run(cfg)
    return cfg
