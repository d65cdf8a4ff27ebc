"""The models: the paper's new LSTM, uniLSTM, MLP and the knowledge-guided LSTM, built by `get_model`."""
from __future__ import annotations

from typing import Sequence

from .base import RsoilModel
from .kg_lstm import KGLSTM
from .lstm import PastFutureLSTM
from .mlp import MLP
from .unilstm import UniLSTM

MODELS = {"lstm": PastFutureLSTM, "unilstm": UniLSTM, "mlp": MLP, "kg_lstm": KGLSTM}
#: model kinds that read the future window (the others get future_hours = 0)
USES_FUTURE = {"lstm": True, "unilstm": False, "mlp": True, "kg_lstm": True}


def get_model(cfg, past_vars: Sequence[str], future_vars: Sequence[str], past_steps: int,
              future_steps: int, step_seconds: float) -> RsoilModel:
    """Build the model ``cfg.kind`` (a :class:`rsoil_couple.config.ModelConfig`) for these windows.

    Raises ValueError naming the config key when the combination is impossible.
    """
    if cfg.kind not in MODELS:
        raise ValueError(f"model.kind = {cfg.kind!r} is unknown; expected one of {sorted(MODELS)}")
    common = dict(hidden=cfg.hidden, layers=cfg.layers, head_layers=cfg.head_layers, dropout=cfg.dropout)
    if cfg.kind == "kg_lstm":
        return KGLSTM(past_vars, future_vars, past_steps, future_steps, step_seconds,
                      q10_init=cfg.q10_init, learn_q10=cfg.learn_q10, q10_min=cfg.q10_min,
                      q10_max=cfg.q10_max, modulation_max=cfg.modulation_max, **common)
    return MODELS[cfg.kind](past_vars, future_vars, past_steps, future_steps, **common)


__all__ = ["get_model", "MODELS", "USES_FUTURE", "RsoilModel", "PastFutureLSTM", "UniLSTM", "MLP", "KGLSTM"]
