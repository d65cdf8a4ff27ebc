"""Offline ``run`` of a streaming file whose networks have no recurrence: the heads over a time chunk at once.

A `KGStream` of ``hidden = 0`` (the shipped ensembles) carries no network state: only the parameter-free
feature state (`KGStream.advance`) is a recurrence. `ChunkedHeads.run` therefore advances the features
step by step for ``sub`` steps, then evaluates every member's network, envelope and physical base ONCE
over the ``sub × rows`` rows of that chunk, instead of once per step: the same member methods of the
file on the same values, about ``sub`` times fewer calls for that part.

Same numbers, not new ones: matrix products give every row the same bits for any row count >= 64
(libtorch picks its kernels by shape; rows of 64 or more use the same ones, measured), and the
element-wise kernels the same bits as long as every tensor's length is a multiple of their vector
width, so `chunkable` accepts only row counts that are multiples of `ROW_MULTIPLE`; and
`rsoil_couple.core.stream_fast` keeps the prepared module only where a probe at the run's own row count
gives the file's outputs and states bit for bit. ``step`` and ``initial_state`` are the wrapped module's.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import nn

from ..variables import CALL_ROW_MULTIPLE

#: Row counts accepted by `chunkable`: the row multiple every fixed-row call is padded to (no scalar tail
#: in any float32 loop, and at least the 64 rows from which matrix products agree).
ROW_MULTIPLE = CALL_ROW_MULTIPLE
#: Steps per chunk of `ChunkedHeads.run`: a chunk's hidden layer (1,024 rows x 16 x 32 floats, 2 MiB)
#: stays in cache (64 steps ran no faster than one step at a time).
SUB_STEPS = 16


def chunkable(module: nn.Module, rows: int) -> bool:
    """True when `ChunkedHeads` applies: ``rows`` a positive multiple of `ROW_MULTIPLE`, and ``module`` a
    hidden-0 kg_stream or a shared-feature ensemble of such members (a file's module or its prepared form).
    """
    if rows <= 0 or rows % ROW_MULTIPLE:
        return False
    members = _members(module)
    return bool(members) and all(int(getattr(m, "hidden", -1)) == 0 and hasattr(m, "advance")
                                 and hasattr(m, "modulation_logit") for m in members)


def _members(module: nn.Module) -> list:
    if hasattr(module, "members") and hasattr(module, "n_members"):
        if not bool(getattr(module, "shared_features", False)):
            return []
        return [getattr(module.members, str(k)) if isinstance(module.members, torch.jit.ScriptModule)
                else module.members[k] for k in range(int(module.n_members))]
    return [module] if hasattr(module, "advance") else []


class ChunkedHeads(nn.Module):
    """``module`` (see `chunkable`) with the chunked ``run`` of the module docstring."""

    def __init__(self, module: nn.Module, sub: int = SUB_STEPS):
        super().__init__()
        members = _members(module)
        if not members:
            raise ValueError("ChunkedHeads needs a hidden-0 kg_stream or a shared-feature ensemble of them")
        self.inner = module
        self.members = nn.ModuleList(members)   # (the same modules as inside `inner`, not copies)
        self.first = members[0]
        self.ensemble = hasattr(module, "n_members")
        self.n_members = len(members)
        self.nfs = int(members[0].nfs)
        self.sub = int(sub)

    @torch.jit.export
    def initial_state(self, ncol: int) -> torch.Tensor:
        """The wrapped module's ``initial_state``."""
        return self.inner.initial_state(ncol)

    @torch.jit.export
    def step(self, state: torch.Tensor, drivers: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The wrapped module's ``step``."""
        return self.inner.step(state, drivers)

    def _heads(self, feats: torch.Tensor, base_in: torch.Tensor) -> torch.Tensor:
        """Rsoil [rows] for features [rows, 12] and base inputs [rows, 3], as the wrapped ``step`` computes it."""
        outs: List[torch.Tensor] = []
        for m in self.members:
            empty = feats[:, 0:0]
            s, h1, c1 = m.modulation_logit(m.norm_features(feats).unsqueeze(1), empty, empty)
            outs.append(m.rsoil(s[:, 0], base_in, m.trust(feats)))
        if not self.ensemble:
            return outs[0]
        return self.inner.site_scale * torch.stack(outs, 0).mean(0)   # as StreamEnsemble.step

    @torch.jit.export
    def run(self, state: torch.Tensor, drivers: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``step`` over ``drivers`` ``[n, T, n_past_vars]``: (Rsoil ``[n, T]``, the state after the last step)."""
        n, T = drivers.shape[0], drivers.shape[1]
        if T == 0:
            return torch.zeros(n, 0), state
        m0 = self.first
        fs = state[:, :self.nfs]
        ys: List[torch.Tensor] = []
        for t0 in range(0, T, self.sub):
            t1 = min(T, t0 + self.sub)
            fl: List[torch.Tensor] = []
            bl: List[torch.Tensor] = []
            for k in range(t0, t1):
                fs, f, b = m0.advance(fs, m0._drivers3(drivers[:, k]), m0.alpha, m0.dt_h)
                fl.append(f)
                bl.append(b)
            rows = (t1 - t0) * n
            y = self._heads(torch.stack(fl, 0).reshape(rows, -1), torch.stack(bl, 0).reshape(rows, -1))
            ys.append(y.reshape(t1 - t0, n))
        parts: List[torch.Tensor] = []
        for _ in range(self.n_members):
            parts.append(fs)   # hidden 0: a member's state is its feature state
        return torch.cat(ys, 0).t(), torch.cat(parts, 1)
