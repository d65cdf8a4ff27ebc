"""NetCDF batch prediction: inputs, the CF output, chunked runs over columns (dask)."""
from .block import BlockResult, predict_block
from .inputs import (
           DEFAULT_BATCH_ROWS,
           OUTPUT_VARS,
           InputSpec,
           check_compatible,
           detect_kind,
           open_input,
)
from .output import create_output
from .perturbed import write_perturbed_columns
from .run import STATUS_MEANINGS, PredictResult, plot_prediction, predict

__all__ = ["DEFAULT_BATCH_ROWS", "OUTPUT_VARS", "InputSpec", "check_compatible", "detect_kind", "open_input",
           "create_output", "write_perturbed_columns", "STATUS_MEANINGS", "PredictResult", "plot_prediction",
           "predict", "predict_block", "BlockResult"]
