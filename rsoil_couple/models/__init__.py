"""The models: the paper's new LSTM, uniLSTM, MLP and the knowledge-guided LSTM, built by `get_model`.

Adding a model: copy ``template.py`` to ``<kind>.py``, name its ``kind``, and add the class to
`REGISTERED` below (docs/training.md, "Adding a model"). Nothing else knows model kinds: configs,
experiments, the model-file schema and the C++ core take any registered kind.
`Ensemble` (ensemble.py) is not a kind: it averages trained members (``train.members``); `StreamEnsemble`
does the same for streaming members (``kg_stream``, whose class sets ``streaming = True``).
"""
from __future__ import annotations

from typing import Sequence

from .base import RsoilModel
from .ensemble import Ensemble
from .kg_lstm import KGLSTM
from .kg_stream import KGStream
from .lstm import PastFutureLSTM
from .mlp import MLP
from .stream_ensemble import StreamEnsemble
from .unilstm import UniLSTM

#: Every model a config may name, by its ``kind``.
REGISTERED: tuple[type[RsoilModel], ...] = (PastFutureLSTM, UniLSTM, MLP, KGLSTM, KGStream)
MODELS: dict[str, type[RsoilModel]] = {cls.kind: cls for cls in REGISTERED}
#: model kinds that read the future window (the others get future_hours = 0)
USES_FUTURE: dict[str, bool] = {kind: cls.uses_future for kind, cls in MODELS.items()}


def get_model(cfg, past_vars: Sequence[str], future_vars: Sequence[str], past_steps: int,
              future_steps: int, step_seconds: float) -> RsoilModel:
    """Build the model ``cfg.kind`` (a :class:`rsoil_couple.config.ModelConfig`) for these windows.

    Raises ValueError naming the config key when the combination is impossible.
    """
    if cfg.kind not in MODELS:
        raise ValueError(f"model.kind = {cfg.kind!r} is unknown; expected one of {sorted(MODELS)}")
    return MODELS[cfg.kind].from_config(cfg, past_vars, future_vars, past_steps, future_steps, step_seconds)


__all__ = ["get_model", "MODELS", "REGISTERED", "USES_FUTURE", "RsoilModel", "PastFutureLSTM", "UniLSTM", "MLP",
           "KGLSTM", "KGStream", "Ensemble", "StreamEnsemble"]
