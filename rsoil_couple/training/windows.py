"""Windows, splits, training with early stopping, a small hyperparameter search, and `rsoil-couple train`.

Samples: for every time t with an observed target, the past window is rows t-past_steps+1 … t and the
future window rows t+1 … t+future_steps. A sample whose windows (drivers or target) touch a missing
value is skipped and counted — no window crosses a gap. Several sites are concatenated with
missing-value separators, so no window crosses from one site into another either.
Splits (seeded): ``interpolation`` random train:val:test (8:1:1); ``extrapolation`` a contiguous test
window and a random 9:1 train/val split of the rest; ``months`` test on some calendar months and train
on others (cross-season). In the last two, samples whose windows overlap the test period are dropped
from training and validation (leakage) and counted.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .records import SiteArrays, hours_to_steps


# --------------------------------------------------------------------------------------------------
# Windows
class WindowSet:
    """All samples of one or more sites for given variables and window lengths.

    Attributes: ``X`` [n_rows, n_past_vars], ``F`` [n_rows, n_future_vars], ``y`` [n_rows],
    ``time`` [n_rows], ``site`` [n_rows] (site index, -1 on separators), ``valid`` (row indices t of
    usable samples), ``counts`` (candidates, valid, skipped_gap, skipped_edge per site name).
    """

    def __init__(self, sites: Sequence[SiteArrays], past_vars: Sequence[str], future_vars: Sequence[str],
                 past_hours: float, future_hours: float):
        if not sites:
            raise ValueError("data.sites: no site given")
        steps = {s.step_seconds for s in sites}
        if len(steps) != 1:
            raise ValueError(f"data.sites: all sites must share one step length, got "
                             f"{ {s.name: s.step_seconds for s in sites} } s")
        self.step_seconds = steps.pop()
        self.past_vars, self.future_vars = list(past_vars), list(future_vars)
        self.past_hours, self.future_hours = float(past_hours), float(future_hours)
        self.P = hours_to_steps(past_hours, self.step_seconds, "data.past_hours")
        self.Fs = hours_to_steps(future_hours, self.step_seconds, "data.future_hours")
        if self.P < 1:
            raise ValueError(f"data.past_hours = {past_hours} h gives no past step")
        self.sites = list(sites)
        pad = self.P + self.Fs + 1
        xs, fs, ys, ts, ids = [], [], [], [], []
        for i, s in enumerate(sites):
            for v in set(self.past_vars) | set(self.future_vars):
                if v not in s.drivers:
                    raise ValueError(f"{s.source or s.name}: no '{v}' driver (needed by data.past_vars/"
                                     f"data.future_vars)")
                if not np.isfinite(s.drivers[v]).any():
                    raise ValueError(f"{s.source or s.name}: driver '{v}' is missing everywhere")
            if not np.isfinite(s.target).any():
                raise ValueError(f"{s.source or s.name}: target 'rsoil' is missing everywhere")
            n = len(s.time)
            xs += [np.full((pad, len(self.past_vars)), np.nan),
                   np.stack([s.drivers[v] for v in self.past_vars], 1)]
            fs += [np.full((pad, len(self.future_vars)), np.nan),
                   np.stack([s.drivers[v] for v in self.future_vars], 1) if self.future_vars
                   else np.zeros((n, 0))]
            ys += [np.full(pad, np.nan), s.target]
            ts += [np.full(pad, np.datetime64("NaT"), "datetime64[ns]"), s.time.astype("datetime64[ns]")]
            ids += [np.full(pad, -1), np.full(n, i)]
        xs.append(np.full((pad, len(self.past_vars)), np.nan))
        fs.append(np.full((pad, len(self.future_vars)), np.nan))
        ys.append(np.full(pad, np.nan))
        ts.append(np.full(pad, np.datetime64("NaT"), "datetime64[ns]"))
        ids.append(np.full(pad, -1))
        self.X = np.concatenate(xs).astype(np.float32)
        self.F = np.concatenate(fs).astype(np.float32)
        self.y = np.concatenate(ys).astype(np.float32)
        self.time = np.concatenate(ts)
        self.site = np.concatenate(ids)
        self._Xt, self._Ft = torch.from_numpy(self.X), torch.from_numpy(self.F)
        # validity by cumulative counts of bad rows
        bad_x = ~np.isfinite(self.X).all(1)
        bad_f = ~np.isfinite(self.F).all(1) if self.future_vars else np.zeros(len(self.X), bool)
        rows = np.arange(len(self.X))
        cand = np.isfinite(self.y) & (self.site >= 0)
        lo, hi = rows - self.P + 1, rows + self.Fs
        first = np.array([np.flatnonzero(self.site == i)[0] for i in range(len(sites))])
        last = np.array([np.flatnonzero(self.site == i)[-1] for i in range(len(sites))])
        sid = np.maximum(self.site, 0)
        edge = cand & ((first[sid] > lo) | (last[sid] < hi))
        ok = cand & ~edge
        ok &= self.window_count(bad_x, lo, rows) == 0
        ok &= self.window_count(bad_f, rows + 1, hi) == 0
        self.valid = np.flatnonzero(ok)
        self.counts = {}
        for i, s in enumerate(sites):
            m = self.site == i
            self.counts[s.name] = {"candidates": int((cand & m).sum()), "valid": int((ok & m).sum()),
                                   "skipped_edge": int((edge & m).sum()),
                                   "skipped_gap": int((cand & m & ~edge & ~ok).sum())}
            if self.counts[s.name]["valid"] == 0:
                n_rec = len(s.time) * s.step_seconds / 3600.0
                raise ValueError(
                    f"{s.source or s.name}: no usable sample: data.past_hours + data.future_hours = "
                    f"{self.past_hours + self.future_hours:g} h against a record of {n_rec:g} h "
                    f"({self.counts[s.name]['skipped_gap']} samples skipped for gaps)")

    @staticmethod
    def window_count(flag: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Number of True rows of ``flag`` in rows lo..hi (inclusive; clipped to the array)."""
        cs = np.concatenate([[0], np.cumsum(flag)])
        n = len(flag)
        lo_c, hi_c = np.clip(lo, 0, n), np.clip(hi + 1, 0, n)
        return np.where(hi_c > lo_c, cs[hi_c] - cs[lo_c], 0)

    def covered_rows(self, idx: np.ndarray) -> np.ndarray:
        """Boolean mask of rows read by the windows of samples ``idx`` (past and future)."""
        d = np.zeros(len(self.X) + 1, np.int64)
        np.add.at(d, idx - self.P + 1, 1)
        np.add.at(d, idx + self.Fs + 1, -1)
        return np.cumsum(d)[:-1] > 0

    def batch(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Past [B, P, n_past], future [B, Fs, n_future] (raw units), target [B]."""
        it = torch.from_numpy(np.asarray(idx, np.int64))
        past = self._Xt[it.unsqueeze(1) + torch.arange(-self.P + 1, 1)]
        if self.Fs:
            fut = self._Ft[it.unsqueeze(1) + torch.arange(1, self.Fs + 1)]
        else:
            fut = torch.zeros(len(idx), 0, 0)
        return past, fut, torch.from_numpy(self.y[np.asarray(idx)])
