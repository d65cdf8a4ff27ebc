"""Seeded train/validation/test splits of a `WindowSet` (interpolation, extrapolation, months); leakage removed, counted."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .windows import WindowSet


# --------------------------------------------------------------------------------------------------
# Splits
@dataclass
class Split:
    """A train / validation / test split of a `WindowSet`'s samples, made by `make_split`.

    Parameters
    ----------
    train, val, test : numpy.ndarray
        Row indices t (into the WindowSet) of the samples of each part.
    excluded_overlap : int, default 0
        Samples left out of training and validation because their windows overlap the test period.
    excluded_other : int, default 0
        Test samples left out by a restriction (months: ``split.test_below_train_min``).
    note : str, default ""
        The restriction in words; empty if none.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    excluded_overlap: int = 0
    excluded_other: int = 0
    note: str = ""


def _day_bounds(start: str, end: str, key: str) -> tuple[np.datetime64, np.datetime64]:
    try:
        a = np.datetime64(start, "ns")
        b = np.datetime64(end, "ns")
    except ValueError as exc:
        raise ValueError(f"{key}: bad date ({exc}); expected YYYY-MM-DD") from exc
    if len(end) <= 10:           # a date: the whole last day is included
        b = b + np.timedelta64(1, "D")
    if b <= a:
        raise ValueError(f"{key}: test_end {end} is before test_start {start}")
    return a, b


def make_split(ws: WindowSet, scfg, seed: int) -> Split:
    """Split ``ws.valid`` for ``scfg`` (a :class:`SplitSection`); seeded and reproducible."""
    rng = np.random.default_rng(seed)
    v = ws.valid
    if scfg.scenario == "interpolation":
        p = rng.permutation(v)
        n_tr = int(round(scfg.fractions[0] * len(p)))
        n_va = int(round(scfg.fractions[1] * len(p)))
        return Split(np.sort(p[:n_tr]), np.sort(p[n_tr:n_tr + n_va]), np.sort(p[n_tr + n_va:]))
    if scfg.scenario == "extrapolation":
        a, b = _day_bounds(scfg.test_start, scfg.test_end, "split.test_start/test_end")
        test_row = (ws.time >= a) & (ws.time < b) & (ws.site >= 0)
        pool_row = (ws.site >= 0) & ~test_row
    else:  # months
        months = (ws.time.astype("datetime64[M]").astype(np.int64) % 12) + 1
        test_row = np.isin(months, scfg.test_months) & (ws.site >= 0)
        pool_row = np.isin(months, scfg.train_months) & (ws.site >= 0)
    test = v[test_row[v]]
    pool = v[pool_row[v]]
    overlap = ws.window_count(test_row, pool - ws.P + 1, pool + ws.Fs) > 0
    excluded = int(overlap.sum())
    pool = pool[~overlap]
    if scfg.val_at_end:   # each site's last share in time (ws rows are in time order per site)
        last = [rows[len(rows) - int(round(scfg.val_fraction * len(rows))):]
                for rows in (pool[ws.site[pool] == i] for i in np.unique(ws.site[pool]))]
        val = np.sort(np.concatenate(last)) if last else pool[:0]
        train = np.setdiff1d(pool, val)
    else:
        pool = rng.permutation(pool)
        n_va = int(round(scfg.val_fraction * len(pool)))
        val, train = np.sort(pool[:n_va]), np.sort(pool[n_va:])
    other, note = 0, ""
    if scfg.scenario == "months" and scfg.test_below_train_min:
        # threshold from every row of the training months (independent of the window length)
        j = ws.past_vars.index(scfg.test_below_train_min)
        lo = np.nanmin(ws.X[pool_row, j])
        keep = ws.X[test, j] < lo
        other = int((~keep).sum())
        test = test[keep]
        note = f"test restricted to {scfg.test_below_train_min} < {lo:.3g} (minimum over the training months)"
    if len(test) == 0 or len(train) == 0 or len(val) == 0:
        raise ValueError(f"split.{scfg.scenario}: empty split (train {len(train)}, val {len(val)}, "
                         f"test {len(test)}); check split.test_start/test_end or the months")
    return Split(train, val, test, excluded, other, note)
