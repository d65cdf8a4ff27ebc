"""An ensemble of trained members as ONE model: ``forward`` returns the member mean (DESIGN.md).

Callers (the C++ core, the C API, the Fortran host, ``predict``) run it as any model file: same
``forward(past, future) -> Rsoil [batch]``, same input names and window attributes. The second scripted
method ``members_forward(past, future) -> [n_members, batch]`` gives every member's prediction, so a
report can show the spread. The mean is exactly ``members_forward(...).mean(0)``.

The float32 0-d buffer ``site_scale`` (1 when built; ``rsoil-couple calibrate`` sets it) multiplies every
member's output, hence the mean too (DESIGN.md "Site scale vs shared response"; the members' own
scales, if they carry one, are multiplied by it).

Not a config kind (not in ``REGISTERED``): ``train.members = N`` in a run config builds one
(docs/training.md, "Ensembles"); the file's ``model_kind`` stays the members' kind and its metadata
carries an ``ensemble`` record (docs/model_format.md).
"""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

from .base import RsoilModel


class Ensemble(RsoilModel):
    """The mean of ``members`` (trained models of one kind, same inputs and windows).

    Parameters
    ----------
    members : sequence of RsoilModel
        At least one member; all read the same ``past_var_names`` / ``future_var_names`` and window
        lengths (checked). Their order is kept (member k was trained with seed ``run.seed + k``).
    """

    kind = "ensemble"

    def __init__(self, members: Sequence[RsoilModel]):
        members = list(members)
        if not members:
            raise ValueError("an ensemble needs at least one member")
        m0 = members[0]
        for k, m in enumerate(members):
            same = (list(m.past_var_names) == list(m0.past_var_names)
                    and list(m.future_var_names) == list(m0.future_var_names)
                    and m.past_steps == m0.past_steps and m.future_steps == m0.future_steps)
            if not same:
                raise ValueError(f"ensemble member {k} reads other inputs or windows than member 0 "
                                 f"({m.past_var_names}/{m.future_var_names}, {m.past_steps}+{m.future_steps} "
                                 f"steps vs {m0.past_var_names}/{m0.future_var_names}, "
                                 f"{m0.past_steps}+{m0.future_steps})")
        super().__init__(m0.past_var_names, m0.future_var_names, m0.past_steps, m0.future_steps)
        self.member_kind = str(getattr(m0, "kind", ""))
        self.n_members = len(members)
        self.members = nn.ModuleList(members)
        self.register_buffer("site_scale", torch.ones((), dtype=torch.float32))
        # the base's normalisation buffers are unused here; hold member 0's so they are not misleading
        with torch.no_grad():
            for name in ("past_mean", "past_std", "future_mean", "future_std", "y_mean", "y_std"):
                getattr(self, name).copy_(getattr(m0, name))

    @torch.jit.export
    def members_forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """Every member's Rsoil times ``site_scale`` [n_members, batch] [µmol m-2 s-1] for raw ``past`` / ``future``."""
        outs: List[torch.Tensor] = []
        for m in self.members:
            outs.append(m(past, future))
        return self.site_scale * torch.stack(outs, 0)

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """The member mean [batch] [µmol m-2 s-1] (of `members_forward`: the site scale included)."""
        return self.members_forward(past, future).mean(0)

    @torch.jit.ignore
    def set_normalization(self, past_rows, future_rows, y) -> None:
        """Refuse to normalise: an Ensemble is built from members already normalised on their training data.

        Parameters
        ----------
        past_rows, future_rows, y : torch.Tensor or None
            Ignored.

        Raises
        ------
        RuntimeError
            Always; normalise the members before building the Ensemble.
        """
        raise RuntimeError("an Ensemble is built from trained members; normalise the members")
