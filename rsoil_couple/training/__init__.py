"""Training: windows over site records, splits, fitting, one run (train + export), experiments."""
from .example import example_model
from .fit import fit, predict, search_and_fit, set_determinism
from .records import SiteArrays, load_data, load_sites, site_from_dataset
from .run import RunResult, regression_metrics, synthetic_sites, train_run
from .splits import Split, make_split
from .windows import WindowSet

__all__ = ["example_model", "fit", "predict", "search_and_fit", "set_determinism", "SiteArrays", "load_sites", "load_data",
           "site_from_dataset", "RunResult", "regression_metrics", "synthetic_sites", "train_run", "Split",
           "make_split", "WindowSet"]
