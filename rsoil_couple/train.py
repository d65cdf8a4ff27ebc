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

import argparse
import copy
import dataclasses
import itertools
import math
import time as _time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .config import RunConfig, SiteConfig, load_run_config
from .models import RsoilModel, get_model

UNITS = {"tsoil": "degC", "swc": "m3 m-3", "precip": "mm"}
PHYSICAL_RANGE = {"tsoil": (-50.0, 70.0), "swc": (0.0, 1.0), "precip": (0.0, 500.0)}


# --------------------------------------------------------------------------------------------------
# Site arrays
@dataclass
class SiteArrays:
    """One site's drivers and target on a regular grid (time = END of step).

    drivers : name -> [n_time] in canonical units (tsoil °C, swc m3 m-3, precip mm per step).
    target : [n_time] Rsoil [µmol m-2 s-1], NaN where missing or flagged bad.
    """
    name: str
    time: np.ndarray
    step_seconds: int
    drivers: dict[str, np.ndarray]
    target: np.ndarray
    source: str = ""
    depth_m: float = 0.15


def site_from_dataset(ds, column: int = 0, name: str = "", source: str = "") -> SiteArrays:
    """Convert a canonical Dataset (rsoil_couple.data) column into :class:`SiteArrays`.

    The readers already set values their ``qc`` bits mark unusable (gap-filled Rsoil, spikes) to
    NaN, so windows never use them; non-finite values become NaN here.
    """
    col = ds.isel(column=column) if "column" in ds.dims else ds
    t = col["time"].values
    step = _step_seconds(t, source or name)
    drivers = {}
    for v in ("tsoil", "swc", "precip"):
        if v in col:
            drivers[v] = _masked(col, v)
    if "rsoil" not in col:
        raise ValueError(f"{source or name}: the dataset has no 'rsoil' variable (the training target)")
    site_name = name or str(col.attrs.get("site", "")) or "site"
    return SiteArrays(site_name, t, step, drivers, _masked(col, "rsoil"), source)


def _masked(col, v: str) -> np.ndarray:
    x = np.asarray(col[v].values, dtype=np.float64).copy()
    x[~np.isfinite(x)] = np.nan
    return x


def _step_seconds(t: np.ndarray, where: str) -> int:
    if len(t) < 2:
        raise ValueError(f"{where}: time: need at least 2 time steps")
    d = np.diff(t.astype("datetime64[s]").astype(np.int64))
    if not (d == d[0]).all() or d[0] <= 0:
        raise ValueError(f"{where}: time: irregular or non-increasing step; expected a regular grid")
    return int(d[0])


def load_sites(sites: Sequence[SiteConfig]) -> list[SiteArrays]:
    """Read every configured site with rsoil_couple.data."""
    from . import data
    out = []
    for sc in sites:
        ds = data.read_site(sc.path)
        s = site_from_dataset(ds, name=sc.name or str(ds.attrs.get("site", Path(sc.path).stem)), source=sc.path)
        s.depth_m = sc.depth_m
        out.append(s)
    return out


def hours_to_steps(hours: float, step_seconds: int, key: str) -> int:
    """Window length [h] -> steps; error naming ``key`` if not a whole number of steps."""
    steps = hours * 3600.0 / step_seconds
    if abs(steps - round(steps)) > 1e-6:
        raise ValueError(f"{key} = {hours} h is not a multiple of the data step ({step_seconds} s)")
    return int(round(steps))


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
        """past [B, P, n_past], future [B, Fs, n_future] (raw units), target [B]."""
        it = torch.from_numpy(np.asarray(idx, np.int64))
        past = self._Xt[it.unsqueeze(1) + torch.arange(-self.P + 1, 1)]
        if self.Fs:
            fut = self._Ft[it.unsqueeze(1) + torch.arange(1, self.Fs + 1)]
        else:
            fut = torch.zeros(len(idx), 0, 0)
        return past, fut, torch.from_numpy(self.y[np.asarray(idx)])


# --------------------------------------------------------------------------------------------------
# Splits
@dataclass
class Split:
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
    pool = rng.permutation(pool[~overlap])
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


# --------------------------------------------------------------------------------------------------
# Training
def set_determinism(seed: int, threads: int = 1) -> None:
    """Seed torch and numpy, one intra-op thread count, deterministic algorithms."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    torch.set_num_threads(max(1, threads))
    torch.use_deterministic_algorithms(True)


@torch.no_grad()
def predict(model: torch.nn.Module, ws: WindowSet, idx: np.ndarray, future: str = "true",
            batch: int = 2048) -> np.ndarray:
    """Model predictions [µmol m-2 s-1] for samples ``idx``.

    future : ``true`` (observed future drivers), ``persistence`` (yesterday's diel cycle shifted to
    today's level: F[t+k] = X[t+k-D] + (X[t] - X[t-D]) with D one day, repeated for k > D) or ``flat``
    (held at the value of time t) — the future-branch ablation; only for ``future_vars`` that are
    also past vars.
    """
    model.eval()
    out = []
    for k in range(0, len(idx), batch):
        b = idx[k:k + batch]
        past, fut, _ = ws.batch(b)
        if future != "true" and ws.Fs:
            fut = forecast_future(ws, b, future)
        out.append(model(past, fut).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def forecast_future(ws: WindowSet, idx: np.ndarray, how: str) -> torch.Tensor:
    """Replacement future windows [B, Fs, n_future] built only from data at or before t."""
    D = int(round(86400 / ws.step_seconds))
    k = np.arange(1, ws.Fs + 1)
    cols = []
    for v in ws.future_vars:
        if v not in ws.past_vars:
            raise ValueError(f"future ablation: future var {v!r} is not among data.past_vars")
        x = ws.X[:, ws.past_vars.index(v)]
        now = x[idx][:, None]
        if how == "flat":
            cols.append(np.repeat(now, ws.Fs, 1))
        elif how == "persistence":
            kk = (k - 1) % D + 1
            yest = x[idx[:, None] - D + kk[None, :]]
            cols.append(yest + (now - x[idx - D][:, None]))
        else:
            raise ValueError(f"future = {how!r}; expected 'true', 'persistence' or 'flat'")
    f = np.stack(cols, 2).astype(np.float32)
    return torch.from_numpy(f)


def _loss(model, ws, idx, batch=4096) -> float:
    if len(idx) == 0:
        return float("nan")
    pred = predict(model, ws, idx, batch=batch)
    s = float(model.y_std)
    return float(np.mean(((pred - ws.y[idx]) / s) ** 2))


def fit(model: RsoilModel, ws: WindowSet, train_idx: np.ndarray, val_idx: np.ndarray, tcfg, seed: int,
        lr: float | None = None, epochs: int | None = None, desc: str = "train") -> dict:
    """Adam on MSE of standardised Rsoil, early stopping on validation loss (best weights restored).

    Returns the history: ``train_loss``, ``val_loss`` per epoch, ``best_epoch``, ``best_val``.
    """
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr or tcfg.lr, weight_decay=tcfg.weight_decay)
    y_std = float(model.y_std)
    best, best_state, wait = math.inf, copy.deepcopy(model.state_dict()), 0
    hist = {"train_loss": [], "val_loss": [], "best_epoch": 0}
    bar = tqdm(range(epochs or tcfg.epochs), desc=desc, leave=False,
               disable=None if tcfg.progress else True)
    for ep in bar:
        model.train()
        perm = train_idx[torch.randperm(len(train_idx), generator=g).numpy()]
        tot = 0.0
        for k in range(0, len(perm), tcfg.batch_size):
            b = perm[k:k + tcfg.batch_size]
            past, fut, y = ws.batch(b)
            loss = torch.mean(((model(past, fut) - y) / y_std) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(b)
        vl = _loss(model, ws, val_idx)
        hist["train_loss"].append(tot / len(perm))
        hist["val_loss"].append(vl)
        bar.set_postfix(train=f"{tot / len(perm):.3f}", val=f"{vl:.3f}")
        if vl < best - 1e-6:
            best, best_state, wait, hist["best_epoch"] = vl, copy.deepcopy(model.state_dict()), 0, ep
        else:
            wait += 1
            if wait >= tcfg.patience:
                break
    model.load_state_dict(best_state)
    hist["best_val"] = best
    return hist


def _subsample(idx: np.ndarray, n: int, seed: int) -> np.ndarray:
    if n <= 0 or len(idx) <= n:
        return idx
    return np.sort(np.random.default_rng(seed + 7919).choice(idx, n, replace=False))


def build_model(cfg: RunConfig, ws: WindowSet, train_idx: np.ndarray, model_cfg=None) -> RsoilModel:
    """A fresh model with normalisation set from the training windows."""
    m = get_model(model_cfg or cfg.model, ws.past_vars, ws.future_vars, ws.P, ws.Fs, ws.step_seconds)
    rows = ws.covered_rows(train_idx)
    m.set_normalization(torch.from_numpy(ws.X[rows]), torch.from_numpy(ws.F[rows]) if ws.Fs else None,
                        torch.from_numpy(ws.y[train_idx]))
    return m


def search_and_fit(cfg: RunConfig, ws: WindowSet, split: Split) -> tuple[RsoilModel, dict]:
    """The declared hyperparameter search (grid or random over search.hidden × search.lr), chosen on
    validation loss; without a search, one fit with [model]/[train]. Returns the best model and info."""
    seed = cfg.run.seed
    train_idx = _subsample(split.train, cfg.train.max_train_samples, seed)
    val_idx = _subsample(split.val, cfg.train.max_eval_samples, seed)
    grid = list(itertools.product(cfg.search.hidden or [cfg.model.hidden], cfg.search.lr or [cfg.train.lr]))
    if cfg.search.mode == "random" and cfg.search.n_random and cfg.search.n_random < len(grid):
        pick = np.random.default_rng(seed).choice(len(grid), cfg.search.n_random, replace=False)
        grid = [grid[i] for i in sorted(pick)]
    trials = []
    best = None
    epochs = (cfg.search.epochs or cfg.train.epochs) if len(grid) > 1 else cfg.train.epochs
    for hidden, lr in grid:
        set_determinism(seed, cfg.run.threads)
        mcfg = dataclasses.replace(cfg.model, hidden=int(hidden))
        model = build_model(cfg, ws, train_idx, mcfg)
        t0 = _time.perf_counter()
        hist = fit(model, ws, train_idx, val_idx, cfg.train, seed, lr=float(lr), epochs=epochs,
                   desc=f"{cfg.run.name} h={hidden} lr={lr:g}")
        trials.append({"hidden": int(hidden), "lr": float(lr), "val_loss": hist["best_val"],
                       "best_epoch": hist["best_epoch"], "epochs_run": len(hist["val_loss"]),
                       "seconds": round(_time.perf_counter() - t0, 2)})
        if best is None or hist["best_val"] < best[0]:
            best = (hist["best_val"], model, trials[-1])
    return best[1], {"trials": trials, "chosen": best[2], "n_train": int(len(train_idx)),
                     "n_val": int(len(val_idx))}


# --------------------------------------------------------------------------------------------------
# One run: data -> windows -> split -> search/fit -> test metrics -> metadata
@dataclass
class RunResult:
    model: RsoilModel
    meta: dict
    ws: WindowSet
    split: Split
    search: dict
    test_pred: np.ndarray
    test_obs: np.ndarray
    test_metrics: dict
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def regression_metrics(obs: np.ndarray, sim: np.ndarray) -> dict:
    """``{"mse", "nse", "cc", "kge", "n"}`` via rsoil_couple.metrics (the metrics.json test entry)."""
    from . import metrics
    m = metrics.all_metrics(np.asarray(obs, np.float64), np.asarray(sim, np.float64))
    return {k: (int(m[k]) if k == "n" else float(m[k])) for k in ("mse", "nse", "cc", "kge", "n")}


def fit_fallback_q10(ws: WindowSet, idx: np.ndarray) -> dict:
    """Fallback Q10 of the model file, fitted (rsoil_couple.q10, LM) on the training samples at t:
    ``q10_swc`` when swc is an input, else ``q10``; constrained to a physical response (Q10 > 1,
    SWC exponent > 0) because the fallback runs exactly where the network cannot: outside the
    training record (e.g. a dryland summer where hot means dry would otherwise fit Q10 < 1)."""
    from . import q10
    t = ws.X[idx, ws.past_vars.index("tsoil")].astype(np.float64)
    y = ws.y[idx].astype(np.float64)
    swc = ws.X[idx, ws.past_vars.index("swc")].astype(np.float64) if "swc" in ws.past_vars else None
    res = q10.fit("q10_swc" if swc is not None else "q10", t, swc, y, physical=True,
                  fitted_on="training split (physical: Q10 > 1, SWC exponent > 0)")
    return res.to_meta()


def _periods(ws: WindowSet, idx: np.ndarray) -> tuple[list[str], list[list[str]]]:
    sites, periods = [], []
    fmt = lambda t: str(np.datetime_as_string(t, unit="m"))  # noqa: E731
    for i, s in enumerate(ws.sites):
        r = idx[ws.site[idx] == i]
        if len(r):
            sites.append(s.name)
            periods.append([fmt(ws.time[r[0]]), fmt(ws.time[r[-1]])])
    return sites, periods


def make_meta(cfg: RunConfig, ws: WindowSet, split: Split, search: dict, fallback: dict,
              test_metrics: dict) -> dict:
    """``rsoil_meta.json`` content (without model_id / versions, which export fills)."""
    used = list(dict.fromkeys(ws.past_vars + ws.future_vars))
    rows = ws.covered_rows(search["train_idx"])
    env = {}
    for v in used:
        col = ws.X[rows, ws.past_vars.index(v)] if v in ws.past_vars else ws.F[rows, ws.future_vars.index(v)]
        env[v] = {"min": float(np.nanmin(col)), "max": float(np.nanmax(col))}
    sites, periods = _periods(ws, search["train_idx"])
    synthetic = any(s.source == "synthetic" for s in ws.sites)
    meta = {
        "schema": "rsoil_meta", "schema_version": 1, "model_kind": cfg.model.kind,
        "step_seconds": int(ws.step_seconds),
        "past_hours": ws.past_hours, "past_steps": ws.P,
        "future_hours": ws.future_hours, "future_steps": ws.Fs,
        "past_vars": [{"name": v, "units": UNITS[v]} for v in ws.past_vars],
        "future_vars": [{"name": v, "units": UNITS[v]} for v in ws.future_vars],
        "depth_m": float(ws.sites[0].depth_m),
        "output": {"name": "rsoil", "units": "umol m-2 s-1"},
        "envelope": env,
        "physical_range": {v: {"min": PHYSICAL_RANGE[v][0], "max": PHYSICAL_RANGE[v][1]} for v in used},
        "fallback_q10": fallback,
        "training": {"sites": sites, "periods": periods, "n_train": search["n_train"],
                     "n_val": search["n_val"], "seed": cfg.run.seed, "scenario": cfg.split.scenario,
                     "synthetic": synthetic, "hyperparameters": search["chosen"],
                     "skipped_samples": ws.counts, "excluded_overlap": split.excluded_overlap},
        "test_metrics": test_metrics,
    }
    if cfg.model.kind == "kg_lstm":
        meta["training"]["kg_q10"] = float(search["model_q10"])
    return meta


def train_run(cfg: RunConfig, sites: Sequence[SiteArrays] | None = None) -> RunResult:
    """Train one configured model (with the declared search) and measure it on the test split."""
    t0 = _time.perf_counter()
    sites = list(sites) if sites is not None else load_sites(cfg.data.sites)
    ws = WindowSet(sites, cfg.data.past_vars, cfg.data.future_vars, cfg.data.past_hours, cfg.data.future_hours)
    split = make_split(ws, cfg.split, cfg.run.seed)
    model, search = search_and_fit(cfg, ws, split)
    search["train_idx"] = _subsample(split.train, cfg.train.max_train_samples, cfg.run.seed)
    if cfg.model.kind == "kg_lstm":
        search["model_q10"] = float(model.q10().detach())
    pred = predict(model, ws, split.test)
    obs = ws.y[split.test]
    tm = regression_metrics(obs, pred)
    fallback = fit_fallback_q10(ws, search["train_idx"])
    meta = make_meta(cfg, ws, split, search, fallback, tm)
    return RunResult(model.eval(), meta, ws, split, search, pred, obs, tm, _time.perf_counter() - t0)


def synthetic_sites(step_seconds: int = 1800, days: int = 40, seed: int = 0) -> list[SiteArrays]:
    """The synthetic dryland site of rsoil_couple.synthetic as one :class:`SiteArrays` (labelled synthetic)."""
    from .synthetic import synthetic_site
    if step_seconds % 60:
        raise ValueError(f"synthetic site: step_seconds = {step_seconds} must be whole minutes")
    ds = synthetic_site(days=days, step_minutes=step_seconds // 60, seed=seed)
    s = site_from_dataset(ds, name=str(ds.attrs.get("site", "synthetic")), source="synthetic")
    return [s]


# --------------------------------------------------------------------------------------------------
# CLI: rsoil-couple train CONFIG.toml --out MODEL.pt
def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="run config (TOML), see docs/training.md")
    parser.add_argument("--out", required=True, help="model file to write (TorchScript + rsoil_meta.json)")


def run(args: argparse.Namespace) -> int:
    from .export import export_model
    cfg = load_run_config(args.config)
    set_determinism(cfg.run.seed, cfg.run.threads)
    res = train_run(cfg)
    meta = export_model(res.model, res.meta, args.out)
    tm = res.test_metrics
    for name, c in res.ws.counts.items():
        print(f"{name}: {c['valid']} samples, {c['skipped_gap']} skipped (gap in window), "
              f"{c['skipped_edge']} skipped (record edge)")
    print(f"split {cfg.split.scenario}: train {meta['training']['n_train']}, val {meta['training']['n_val']}, "
          f"test {tm['n']}, excluded for overlap with the test period {res.split.excluded_overlap}")
    print(f"chosen: {res.search['chosen']}")
    print(f"test: mse {tm['mse']:.4g}  nse {tm['nse']:.3f}  cc {tm['cc']:.3f}  kge {tm['kge']:.3f}  n {tm['n']}")
    print(f"wrote {args.out} (model_id {meta['model_id']}, {res.seconds:.1f} s)")
    return 0
