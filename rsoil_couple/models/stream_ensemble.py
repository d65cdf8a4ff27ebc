"""An ensemble of streaming members as ONE streaming model: the member mean, state = members' states side by side.

Same contract as one streaming model (docs/model_format.md, "Streaming models"): ``initial_state``,
``step``, ``run``, ``forward``; ``members_forward`` / ``members_run`` give every member's output for
spread reports. The state of column c is member 0's state, then member 1's, … (each of its member's
size); the output is ``site_scale × mean over members`` — each member keeps the scale it was trained
with, and the file's ``site_scale`` (1 after training) is the factor ``rsoil-couple calibrate`` fits.

Shared feature state: `KGStream.advance` has no learned parameters, so members with the same moving-average
weights, step and inputs (`same_feature_recurrence`) carry the SAME feature state, bit for bit. Such an
ensemble advances it once per step (from member 0's slots) and evaluates each member's network on it; the
state layout is unchanged (every member's slots are written), so files and restart blobs are as before,
and the results are bit-identical to advancing every member (tests/models/test_stream_ensemble.py).
`StreamEnsemble.around` wraps the members of an already exported ensemble file in this step (their own
scripted methods, so their science is the file's): `rsoil_couple.core.streaming` runs older files so.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import nn

from .base import StreamingModel
from .kg_stream import KGStream

#: What `KGStream.advance` and `KGStream._drivers3` read: equal in every member => equal feature states.
FEATURE_ATTRS = ("nfs", "col_t", "col_w", "col_p", "rain_cap_h", "count_cap", "alpha", "dt_h", "tau_h", "reads")


def same_feature_recurrence(members: Sequence[nn.Module]) -> bool:
    """True when every member advances its feature state exactly as member 0 (`FEATURE_ATTRS` equal;
    members built as `KGStream`, or loaded from a file that has their scripted ``advance``).
    """
    m0 = members[0]
    if not all(hasattr(m, "advance") and all(hasattr(m, a) for a in FEATURE_ATTRS) for m in members):
        return False
    for m in members[1:]:
        for a in FEATURE_ATTRS:
            x, y = getattr(m0, a), getattr(m, a)
            same = (x.shape == y.shape and x.dtype == y.dtype and bool(torch.equal(x, y))) \
                if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) else x == y
            if not same:
                return False
    return True


class StreamEnsemble(StreamingModel):
    """The mean of ``members`` (trained `KGStream` models with the same inputs)."""

    kind = "stream_ensemble"
    uses_future = False
    __jit_ignored_attributes__ = ["_streaming"]   # (Python only: `around`'s copy of a file's record)

    def __init__(self, members: Sequence[KGStream], shared_features: bool | None = None):
        members = list(members)
        if not members:
            raise ValueError("an ensemble needs at least one member")
        m0 = members[0]
        for k, m in enumerate(members):
            if list(m.past_var_names) != list(m0.past_var_names) or m.past_steps != m0.past_steps:
                raise ValueError(f"ensemble member {k} reads {m.past_var_names} over {m.past_steps} steps, "
                                 f"member 0 {m0.past_var_names} over {m0.past_steps}")
        super().__init__(m0.past_var_names, [], m0.past_steps, 0)
        self.member_kind = getattr(m0, "kind", "kg_stream")
        self.n_members = len(members)
        self.members = nn.ModuleList(members)
        self.sizes: List[int] = [int(m.state_size) for m in members]
        self.state_size = int(sum(self.sizes))
        self.spinup_steps = int(max(m.spinup_steps for m in members))
        self.register_buffer("site_scale", torch.tensor(1.0))
        # advance the feature state once per step (module docstring); False: each member its own
        self.shared_features = same_feature_recurrence(members) if shared_features is None else bool(shared_features)
        if self.shared_features and not same_feature_recurrence(members):
            raise ValueError("shared_features=True: the members do not advance the same feature state "
                             f"(they differ in one of {FEATURE_ATTRS})")
        self.nfs = int(getattr(m0, "nfs", 0))
        self.hiddens: List[int] = [int(getattr(m, "hidden", 0)) for m in members]

    @classmethod
    def around(cls, module: torch.jit.ScriptModule, streaming: dict | None = None,
               shared_features: bool = True) -> "StreamEnsemble":
        """An ensemble (not scripted yet) of the members of a loaded ``stream_ensemble`` file, with its
        ``site_scale``: the members keep their own scripted methods (the file's science); only the
        ensemble's step is this class's. `ValueError` when ``shared_features`` and the file's members do
        not share their features. ``streaming``: the file's ``streaming`` metadata record, needed only to
        export the result again (loaded members have no ``streaming_meta`` of their own); re-exporting a
        file with the shared step changes no value (tests/core/test_stream_fast.py).
        """
        members = [getattr(module.members, str(k)) for k in range(int(module.n_members))]
        if shared_features and not same_feature_recurrence(members):
            raise ValueError("the ensemble's members do not advance the same feature state")
        ens = cls(members, shared_features=shared_features)
        ens._streaming = dict(streaming) if streaming else None
        with torch.no_grad():
            ens.site_scale.copy_(module.site_scale)
        return ens.eval()

    @torch.jit.ignore
    def streaming_meta(self) -> dict:
        """The ``streaming`` record: members' layouts prefixed ``m<k>_``, sizes summed (the file's own
        record for an ensemble built `around` a loaded file with it).
        """
        if getattr(self, "_streaming", None):
            return dict(self._streaming)
        layout = []
        for k, m in enumerate(self.members):
            layout += [{"name": f"m{k}_{e['name']}", "size": e["size"]} for e in m.streaming_meta()["state_layout"]]
        return {"state_size": self.state_size, "spinup_steps": self.spinup_steps, "missing": "hold",
                "state_layout": layout}

    @torch.jit.export
    def initial_state(self, ncol: int) -> torch.Tensor:
        """Members' initial states side by side ``[ncol, state_size]``."""
        parts: List[torch.Tensor] = []
        for m in self.members:
            parts.append(m.initial_state(ncol))
        return torch.cat(parts, 1)

    @torch.jit.export
    def members_step(self, state: torch.Tensor, drivers: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Every member's Rsoil ``[n_members, n]`` [µmol m-2 s-1] and the new state."""
        if self.shared_features:
            return self.shared_members_step(state, drivers)
        outs: List[torch.Tensor] = []
        states: List[torch.Tensor] = []
        i = 0
        for m in self.members:
            size = m.state_size
            r, s = m.step(state[:, i:i + size], drivers)
            outs.append(r)
            states.append(s)
            i += size
        return torch.stack(outs, 0), torch.cat(states, 1)

    def shared_members_step(self, state: torch.Tensor, drivers: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """`members_step` with the feature state advanced once (member 0's slots, the same in every member):
        each member's network as `KGStream.step` runs it after ``advance``.
        """
        nfs = self.nfs
        m0 = self.members[0]
        fs, feats, base_in = m0.advance(state[:, :nfs], m0._drivers3(drivers), m0.alpha, m0.dt_h)
        outs: List[torch.Tensor] = []
        parts: List[torch.Tensor] = []
        i = 0
        for k, m in enumerate(self.members):
            hid = self.hiddens[k]
            h0 = state[:, i + nfs:i + nfs + hid]
            c0 = state[:, i + nfs + hid:i + nfs + 2 * hid]
            s, h1, c1 = m.modulation_logit(m.norm_features(feats).unsqueeze(1), h0, c0)
            outs.append(m.rsoil(s[:, 0], base_in, m.trust(feats)))
            parts.append(fs)
            if hid > 0:  # (hidden 0: h and c are empty, and a cat of empty parts costs as much as a full one)
                parts += [h1, c1]
            i += nfs + 2 * hid
        return torch.stack(outs, 0), torch.cat(parts, 1)

    @torch.jit.export
    def step(self, state: torch.Tensor, drivers: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``site_scale`` × the member mean [n] and the new state (see `KGStream.step`)."""
        outs, new = self.members_step(state, drivers)
        return self.site_scale * outs.mean(0), new


    @torch.jit.ignore
    def set_normalization(self, past_rows, future_rows, y) -> None:
        """Refused: an ensemble is built from trained members."""
        raise RuntimeError("a StreamEnsemble is built from trained members")
