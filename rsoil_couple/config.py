"""Run and experiment configuration from TOML: dataclasses, unknown keys rejected, missing keys named.

A run config (``rsoil-couple train``) has the sections ``[run] [data] [split] [model] [train]
[search]``; an experiment config (``rsoil-couple experiment``) has the same sections as the template
of every case plus ``[experiment]`` and optional per-model overrides ``[models.<kind>]``. Windows are
given in HOURS; the number of steps comes from each site's step length. Paths are relative to the
current directory (the repository root: ``../shared/data/...``). See docs/training.md.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomllib

from .variables import DRIVERS

VARS = DRIVERS
SCENARIOS = ("interpolation", "extrapolation", "months")
BASELINES = ("q10", "q10_swc", "logistic_power", "clm", "paper_q10", "paper_q10_swc",
             "paper_logistic_power")


@dataclass
class RunSection:
    """The ``[run]`` table: name, random seed and torch threads of a run.

    Parameters
    ----------
    name : str, default "run"
        Name of the run; an experiment names each case ``<kind>_<scenario>_<past>h_s<seed>``.
    seed : int, default 0
        Seed of the split, the weight initialisation and the training order.
    threads : int, default 1
        torch intra-op threads; 1 keeps training fully deterministic.
    """

    name: str = "run"
    seed: int = 0
    threads: int = 1          # torch threads (1 = fully deterministic and friendly to shared machines)


@dataclass
class SiteConfig:
    """One entry of ``data.sites``: a site file and its label.

    Parameters
    ----------
    path : str
        File that `rsoil_couple.data` can read (site CSV or canonical NetCDF), relative to the current directory.
    name : str, default ""
        Site name; empty means the name the reader reports.
    depth_m : float, default 0.15
        Depth of the soil drivers, recorded in the model metadata [m]
    """

    path: str                 # a file rsoil_couple.data can read
    name: str = ""            # defaults to the site name the reader reports
    depth_m: float = 0.15     # depth of the soil drivers [m] (recorded in the model metadata)


@dataclass
class DataSection:
    """The ``[data]`` table: sites, input variables and window lengths.

    Parameters
    ----------
    sites : list of SiteConfig
        The sites to train on (at least one).
    past_vars : list of str, default ["tsoil", "swc", "precip"]
        Drivers of the past window, a subset of `VARS` in the order the model reads them.
    future_vars : list of str, default ["tsoil"]
        Drivers of the future window; empty exactly when ``future_hours`` is 0.
    past_hours : float, default 24
        Length of the past window, ending at time t [h]
    future_hours : float, default 24
        Length of the future window, t+1 onward [h]
    target : str, default "rsoil"
        Name of the target variable; the training reads ``rsoil`` [umol m-2 s-1]
    step_minutes : float, default 0
        Step of the model; 0 takes the first site's step, finer sites are resampled to it [min]
    """

    sites: list[SiteConfig]
    past_vars: list[str] = field(default_factory=lambda: ["tsoil", "swc", "precip"])
    future_vars: list[str] = field(default_factory=lambda: ["tsoil"])
    past_hours: float = 24.0
    future_hours: float = 24.0
    target: str = "rsoil"
    step_minutes: float = 0.0  # the model's step [min]; 0 = the first site's step; finer sites are resampled


@dataclass
class SplitSection:
    """The ``[split]`` table: how samples are divided into training, validation and test.

    Parameters
    ----------
    scenario : str, default "interpolation"
        One of `SCENARIOS`: "interpolation" (random samples), "extrapolation" (a contiguous test window) or
        "months" (test months not seen in training).
    fractions : list of float, default [0.8, 0.1, 0.1]
        Interpolation: train, validation and test shares, non-negative, summing to 1 [-]
    val_fraction : float, default 0.1
        Extrapolation and months: random share of the non-test samples used for validation [-]
    test_start, test_end : str
        Extrapolation: first and last day of the test window, both inclusive (YYYY-MM-DD).
    train_months, test_months : list of int
        Months scenario: calendar months (1..12) of training and of test; they must not overlap.
    test_below_train_min : str, default ""
        Months scenario: keep only test samples whose value of this past variable at t lies below its minimum
        over the training months; empty keeps all.
    """

    scenario: str = "interpolation"
    fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])  # interpolation train:val:test
    val_fraction: float = 0.1           # extrapolation / months: random share of the non-test samples
    test_start: str = ""                # extrapolation: first day of the test window (inclusive)
    test_end: str = ""                  # extrapolation: last day of the test window (inclusive)
    train_months: list[int] = field(default_factory=list)   # months scenario
    test_months: list[int] = field(default_factory=list)    # months scenario
    test_below_train_min: str = ""      # months: keep test samples whose variable at t < training min


@dataclass
class ModelConfig:
    """The ``[model]`` table: model kind and size (plus the Q10 prior of ``kg_lstm``).

    Parameters
    ----------
    kind : str, default "lstm"
        Model kind, a key of `rsoil_couple.models.MODELS` ("lstm", "unilstm", "mlp", "kg_lstm").
    hidden : int, default 32
        Width of the LSTM state and of the dense layers (1..1024).
    layers : int, default 1
        Stacked LSTM layers (mlp: dense layers).
    head_layers : int, default 1
        Dense ReLU layers of the output head.
    dropout : float, default 0
        Dropout probability in the dense layers [-]
    q10_init : float, default 2
        kg_lstm: initial Q10 [-]
    learn_q10 : bool, default True
        kg_lstm: learn Q10; False keeps it at ``q10_init``.
    q10_min, q10_max : float, default 1 and 4
        kg_lstm: bounds of Q10, with 1 <= q10_min < q10_init < q10_max [-]
    modulation_max : float, default 20
        kg_lstm: the network scales the Q10 base by a factor in [1/modulation_max, modulation_max] [-]
    """

    kind: str = "lstm"
    hidden: int = 32
    layers: int = 1
    head_layers: int = 1
    dropout: float = 0.0
    # kg_lstm only
    q10_init: float = 2.0
    learn_q10: bool = True
    q10_min: float = 1.0
    q10_max: float = 4.0
    modulation_max: float = 20.0


@dataclass
class TrainSection:
    """The ``[train]`` table: optimiser, early stopping, sample caps and ensemble size.

    Parameters
    ----------
    epochs : int, default 50
        Largest number of epochs.
    batch_size : int, default 128
        Samples per optimiser step.
    lr : float, default 1e-3
        Adam learning rate.
    weight_decay : float, default 0
        Adam weight decay (L2 penalty).
    patience : int, default 8
        Epochs without a lower validation loss before training stops (best weights are kept).
    max_train_samples : int, default 0
        0 uses every training sample; otherwise a seeded random subset of this size (quick runs).
    max_eval_samples : int, default 0
        0 uses every validation sample; otherwise caps them (quick runs).
    progress : bool, default True
        Show tqdm progress bars (only on a terminal).
    members : int, default 1
        Ensemble size 1..64: N > 1 trains members with seeds run.seed .. run.seed+N-1 and writes one file
        that predicts their mean.
    """

    epochs: int = 50
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 8                   # early stopping on validation loss
    max_train_samples: int = 0          # 0 = all; otherwise a seeded random subset (quick runs)
    max_eval_samples: int = 0           # 0 = all; caps validation samples (quick runs)
    progress: bool = True               # tqdm bars (shown only on a terminal)
    members: int = 1                    # ensemble: N members, seeds run.seed .. run.seed+N-1, one file (mean)


@dataclass
class SearchSection:
    """A small declared hyperparameter search, chosen on validation loss. Empty lists = no search."""

    hidden: list[int] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    mode: str = "grid"                  # grid | random
    n_random: int = 0                   # random mode: number of draws from the grid
    epochs: int = 0                     # epochs per trial (0 = train.epochs)


@dataclass
class RunConfig:
    """A run config (``rsoil-couple train``): one attribute per table of the TOML file.

    Read with `load_run_config` and checked with `check_run`.

    Parameters
    ----------
    data : DataSection
        ``[data]``: sites, variables and windows (the only required table).
    run : RunSection
        ``[run]``: name, seed and threads.
    split : SplitSection
        ``[split]``: the train / validation / test scenario.
    model : ModelConfig
        ``[model]``: model kind and size.
    train : TrainSection
        ``[train]``: optimiser, early stopping and ensemble members.
    search : SearchSection
        ``[search]``: hyperparameter search (empty lists: none).
    """

    data: DataSection
    run: RunSection = field(default_factory=RunSection)
    split: SplitSection = field(default_factory=SplitSection)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainSection = field(default_factory=TrainSection)
    search: SearchSection = field(default_factory=SearchSection)


@dataclass
class ExperimentSection:
    """The ``[experiment]`` table: which models, scenarios, windows, seeds and baselines to run.

    Parameters
    ----------
    models : list of str
        Model kinds to train, keys of `rsoil_couple.models.MODELS`.
    scenarios : list of str
        Split scenarios, each one of `SCENARIOS`.
    past_hours : list of float
        Past window lengths to compare [h]
    seeds : list of int
        Seeds; every model, scenario and past window is trained once per seed.
    future_hours : float, default 24
        Future window of the model kinds that read one [h]
    baselines : list of str, default all of `BASELINES`
        Baselines scored on the same test samples.
    ablation : bool, default True
        Also score models that read the future window with persistence and flat future drivers.
    clm_sand, clm_clay : float, default 80 and 5
        Soil texture of the CLM-structure baseline [%]
    mi : bool, default True
        Compute the lagged mutual information of the first site (Fig. 2A).
    figures : bool, default True
        Write the experiment's figures.
    """

    models: list[str]
    scenarios: list[str]
    past_hours: list[float]
    seeds: list[int]
    future_hours: float = 24.0
    baselines: list[str] = field(default_factory=lambda: list(BASELINES))
    ablation: bool = True               # future-branch ablation (true / persistence / flat)
    clm_sand: float = 80.0              # CLM-structure baseline soil texture [%]
    clm_clay: float = 5.0
    mi: bool = True                     # Fig. 2A via rsoil_couple.mi
    figures: bool = True


@dataclass
class ExperimentConfig:
    """An experiment config (``rsoil-couple experiment``), read with `load_experiment_config`.

    Parameters
    ----------
    experiment : ExperimentSection
        The ``[experiment]`` table.
    base : RunConfig
        Template run config of every case; `case_config` applies each case's settings to it.
    overrides : dict
        Model kind -> its ``[models.<kind>]`` tables (``model``, ``train``, ``search``) applied over the template.
    """

    experiment: ExperimentSection
    base: RunConfig
    overrides: dict[str, dict[str, Any]]   # model kind -> [model]/[train] keys


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
    if not 0 < s.val_fraction < 1:
        raise ValueError(f"split.val_fraction must be in (0, 1), got {s.val_fraction}")
    from .models import MODELS
    if m.kind not in MODELS:
        raise ValueError(f"model.kind = {m.kind!r} is unknown; expected one of {sorted(MODELS)}")
    if not 1 <= m.hidden <= 1024:
        raise ValueError(f"model.hidden must be in 1..1024, got {m.hidden}")
    if t.epochs < 1 or t.batch_size < 1 or t.lr <= 0 or t.patience < 1:
        raise ValueError("train.epochs, train.batch_size, train.patience must be >= 1 and train.lr > 0")
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
        from .models import MODELS
        for kind in exp.models:
            if kind not in MODELS:
                raise ValueError(f"experiment.models: unknown model {kind!r}; expected one of {sorted(MODELS)}")
        for sc in exp.scenarios:
            if sc not in SCENARIOS:
                raise ValueError(f"experiment.scenarios: unknown scenario {sc!r}; expected one of {list(SCENARIOS)}")
        for b in exp.baselines:
            if b not in BASELINES:
                raise ValueError(f"experiment.baselines: unknown baseline {b!r}; expected one of {list(BASELINES)}")
        if not exp.seeds or not exp.past_hours:
            raise ValueError("experiment.seeds and experiment.past_hours must not be empty")
        for kind, ov in overrides.items():
            if kind not in MODELS:
                raise ValueError(f"[models.{kind}]: unknown model kind; expected one of {sorted(MODELS)}")
            unknown = set(ov) - {"model", "train", "search"}
            if unknown:
                raise ValueError(f"[models.{kind}] may only hold model/train/search tables, got {sorted(unknown)}")
            case_config(ExperimentConfig(exp, base, overrides), kind, exp.scenarios[0],
                        exp.past_hours[0], exp.seeds[0])          # validate the override now
        return ExperimentConfig(exp, base, overrides)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def case_config(ecfg: ExperimentConfig, kind: str, scenario: str, past_hours: float, seed: int) -> RunConfig:
    """The run config of one experiment case: the template with this case's settings applied."""
    from .models import USES_FUTURE
    b = ecfg.base
    uses_future = USES_FUTURE[kind] and ecfg.experiment.future_hours > 0 and bool(b.data.future_vars)
    data = replace(b.data, past_hours=float(past_hours),
                   future_hours=float(ecfg.experiment.future_hours) if uses_future else 0.0,
                   future_vars=list(b.data.future_vars) if uses_future else [])
    model, train, search = replace(b.model, kind=kind), b.train, b.search
    ov = ecfg.overrides.get(kind, {})
    if "model" in ov:
        model = _build(ModelConfig, {**dataclasses.asdict(model), **ov["model"]}, f"models.{kind}.model")
    if "train" in ov:
        train = _build(TrainSection, {**dataclasses.asdict(train), **ov["train"]}, f"models.{kind}.train")
    if "search" in ov:
        search = _build(SearchSection, {**dataclasses.asdict(search), **ov["search"]}, f"models.{kind}.search")
    cfg = RunConfig(data=data, run=replace(b.run, seed=int(seed), name=f"{kind}_{scenario}_{past_hours:g}h_s{seed}"),
                    split=replace(b.split, scenario=scenario), model=model, train=train, search=search)
    check_run(cfg)
    return cfg
