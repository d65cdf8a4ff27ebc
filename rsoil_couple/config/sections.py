"""The sections of a run or experiment config (dataclasses with their defaults, units and checks in docstrings)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..variables import DRIVERS

VARS = DRIVERS
SCENARIOS = ("interpolation", "extrapolation", "months", "temporal")
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
        One of `SCENARIOS`: "interpolation" (random samples), "extrapolation" (a contiguous test window),
        "months" (test months not seen in training) or "temporal" (streaming models: each site's record in
        time order, ``fractions`` = train, validation, test).
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
    val_block_days : float, default 0
        Streaming kinds, temporal scenario: 0 validates on the ``fractions[1]`` right before the test; > 0
        on whole blocks of this many days drawn at random (seeded) from everything before the test, the
        same share, so that validation (early stopping, the network's share λ) spans the training period.
    val_at_end : bool, default False
        Window kinds, extrapolation and months: validate on the last ``val_fraction`` in time of each site's
        non-test samples (the streaming trainer's rule) instead of a random share of them.
    """

    scenario: str = "interpolation"
    fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])  # interpolation train:val:test
    val_fraction: float = 0.1           # extrapolation / months: random share of the non-test samples
    test_start: str = ""                # extrapolation: first day of the test window (inclusive)
    test_end: str = ""                  # extrapolation: last day of the test window (inclusive)
    train_months: list[int] = field(default_factory=list)   # months scenario
    test_months: list[int] = field(default_factory=list)    # months scenario
    test_below_train_min: str = ""      # months: keep test samples whose variable at t < training min
    val_block_days: float = 0.0         # streaming temporal: validation as random blocks of days (0: last part)
    val_at_end: bool = False            # window extrapolation / months: validation = each site's last share


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
        kg_lstm, kg_stream: learn Q10; False keeps it at ``q10_init`` (kg_stream's Lloyd-Taylor form: E0 at
        Lloyd & Taylor's 308.56 K), a prior instead of a fit.
    q10_min, q10_max : float, default 1 and 4
        kg_lstm: bounds of Q10, with 1 <= q10_min < q10_init < q10_max [-]
    modulation_max : float, default 20
        kg_lstm, kg_stream: the network scales the Q10 base by a factor in [1/modulation_max, modulation_max] [-]
    temperature_form : str, default "lloyd_taylor"
        kg_stream: the base's temperature response, "lloyd_taylor" (E0 learned) or "q10" (exponential).
    moisture_form : str, default "power"
        kg_stream: the base's moisture factor, "power" ((θ/0.1)^c inside the training SWC range), "damm"
        (substrate limitation S/(K(T)+S), S = (θ/0.1)^c, K rising with temperature) or "none" (the network
        alone carries soil water).
    sees_level : bool, default False
        kg_stream: the network also reads the temperature level (24 h mean); by default the level acts
        through the physical base alone (docs/training.md).
    envelope : str, default "fade"
        kg_stream: outside the training envelope the network's modulation "fade"s (the base decides there)
        or stays whole on inputs "clamp"ed to the training range (as the window kg_lstm does).
    recent_hours : float, default 0
        kg_stream: the network's head also reads the last ``recent_hours`` of soil temperature, SWC and rain
        themselves (a delay line in the state, counted in steps; 0 = off; rsoil_couple.models.recent).
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
    temperature_form: str = "lloyd_taylor"   # kg_stream only
    moisture_form: str = "power"             # kg_stream only
    sees_level: bool = False                 # kg_stream only
    envelope: str = "fade"                   # kg_stream only
    recent_hours: float = 0.0               # kg_stream only


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
    chunk_hours : float, default 48
        Streaming kinds: truncation length of back-propagation through time [h]; a batch holds about
        ``batch_size // 16`` x 48 h of steps whatever the chunk length (an experiment sets it to each
        ``experiment.past_hours``). Window kinds ignore it.
    modulation_choice : str, default "one_se"
        ``kg_stream``: how the network's share λ of the modulation is chosen on the validation rows after
        training: ``"one_se"`` the smallest share within one standard error (over days) of the best,
        ``"min"`` the best (configs before this option; `rsoil_couple.training.stream.choose_modulation_weight`),
        ``"none"`` no choice (λ = 1).
    refit : bool, default False
        ``kg_stream``: after training with early stopping and the choice of λ on the validation rows, train
        every member again from its seed on the training AND validation rows, for the number of epochs
        validation chose and with the λ it chose (the last days before a test are then learnt from, not
        only validated on; benchmarks/split_sensitivity.py). The file's envelope and training periods
        include the validation rows.
    member_validation : str, default "shared"
        ``kg_stream`` ensembles: ``"shared"`` every member validates (early stopping, λ) on the same rows;
        ``"slide"`` member k of N validates on a block of the same size moved along the training and
        validation rows, from their start (k = 0) to their end (k = N - 1, the shared block), and trains on
        the rest: every row is learnt from by N - 1 or more members, and each member's early stopping and λ
        rest on other days (`rsoil_couple.training.stream_run.member_masks`). With ``refit = true`` every
        member is then trained again on all training and validation rows for the upper median of the
        members' chosen epochs, with the upper median of their λ (cross-validation, then refit). The
        file's envelope and training periods include the validation rows.
    modulation_block_hours : float, default 24
        ``kg_stream``: the validation rows are cut into blocks of this many hours for the choice of λ (the
        standard error of ``"one_se"`` is over blocks; longer blocks are less autocorrelated) [h].
    site_weighting : str, default "rows"
        ``kg_stream`` with several sites, the joint (network) stage: ``"rows"`` each site's squared error
        over its variance summed over its rows, so a site counts in proportion to its usable rows (configs
        before this option); ``"sites"`` each site's mean instead, so every site counts equally, as in the
        base fit that precedes it (`rsoil_couple.training.stream`).
    base_in_joint : str, default "trained"
        ``kg_stream``: the physical base's parameters (E0/Q10, moisture, anomaly share) keep training with
        the network after the base fit (``"trained"``, configs before this option) or stay at that fit
        (``"frozen"``: only the network and the site scales train on).
    site_normalization : str, default "variance"
        ``kg_stream``: each site's squared error is divided by its variance (``"variance"``, configs
        before this option) or by its squared mean (``"mean"``: errors relative to the site's level).
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
    chunk_hours: float = 48.0           # streaming kinds: TBPTT truncation length [h]
    modulation_choice: str = "one_se"   # kg_stream: λ on validation rows, "one_se" | "min" | "none" (λ = 1)
    refit: bool = False                 # kg_stream: retrain on training + validation rows with the chosen epochs and λ
    member_validation: str = "shared"   # kg_stream ensembles: "shared" | "slide" (member k validates on its own block)
    modulation_block_hours: float = 24.0   # kg_stream: blocks of the λ choice [h]
    site_weighting: str = "rows"        # kg_stream, several sites: "rows" | "sites" (each site counts equally)
    base_in_joint: str = "trained"      # kg_stream: the base's parameters after the base fit, "trained" | "frozen"
    site_normalization: str = "variance"   # kg_stream: a site's squared error over its "variance" | "mean"**2


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
        Models to train: kinds (keys of `rsoil_couple.models.MODELS`) or names of ``[models.<name>]``
        tables that set ``model.kind`` (variants of one kind, e.g. ``kg_stream`` with and without an
        LSTM). Either every model is a window kind or every model is a streaming kind.
    scenarios : list of str
        Split scenarios, each one of `SCENARIOS`.
    past_hours : list of float
        Past window lengths to compare [h]; for streaming kinds (no window) the truncation length of
        back-propagation through time (``train.chunk_hours``) [h]
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
        Model name -> its ``[models.<name>]`` tables (``model``, ``train``, ``search``, and ``data`` with
        ``past_vars`` only) applied over the template.
    """

    experiment: ExperimentSection
    base: RunConfig
    overrides: dict[str, dict[str, Any]]   # model name -> [model]/[train]/[search]/[data] keys
