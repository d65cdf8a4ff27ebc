"""An ensemble of streaming members as ONE streaming model: the member mean, state = members' states side by side.

Same contract as one streaming model (docs/model_format.md, "Streaming models"): ``initial_state``,
``step``, ``run``, ``forward``; ``members_forward`` / ``members_run`` give every member's output for
spread reports. The state of column c is member 0's state, then member 1's, … (each of its member's
size); the output is ``site_scale × mean over members`` — each member keeps the scale it was trained
with, and the file's ``site_scale`` (1 after training) is the factor ``rsoil-couple calibrate`` fits.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import nn

from .base import StreamingModel
from .kg_stream import KGStream


class StreamEnsemble(StreamingModel):
    """The mean of ``members`` (trained `KGStream` models with the same inputs)."""

    kind = "stream_ensemble"
    uses_future = False

    def __init__(self, members: Sequence[KGStream]):
        members = list(members)
        if not members:
            raise ValueError("an ensemble needs at least one member")
        m0 = members[0]
        for k, m in enumerate(members):
            if list(m.past_var_names) != list(m0.past_var_names) or m.past_steps != m0.past_steps:
                raise ValueError(f"ensemble member {k} reads {m.past_var_names} over {m.past_steps} steps, "
                                 f"member 0 {m0.past_var_names} over {m0.past_steps}")
        super().__init__(m0.past_var_names, [], m0.past_steps, 0)
        self.member_kind = m0.kind
        self.n_members = len(members)
        self.members = nn.ModuleList(members)
        self.sizes: List[int] = [int(m.state_size) for m in members]
        self.state_size = int(sum(self.sizes))
        self.spinup_steps = int(max(m.spinup_steps for m in members))
        self.register_buffer("site_scale", torch.tensor(1.0))

    @torch.jit.ignore
    def streaming_meta(self) -> dict:
        """The ``streaming`` record: members' layouts prefixed ``m<k>_``, sizes summed."""
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

    @torch.jit.export
    def step(self, state: torch.Tensor, drivers: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``site_scale`` × the member mean [n] and the new state (see `KGStream.step`)."""
        outs, new = self.members_step(state, drivers)
        return self.site_scale * outs.mean(0), new


    @torch.jit.ignore
    def set_normalization(self, past_rows, future_rows, y) -> None:
        """Refused: an ensemble is built from trained members."""
        raise RuntimeError("a StreamEnsemble is built from trained members")
