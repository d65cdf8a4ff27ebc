"""Fitting: determinism, batched prediction, early stopping and a small hyperparameter search."""
from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import time as _time

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import RunConfig
from ..models import RsoilModel, get_model
from .splits import Split
from .windows import WindowSet


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
    # a covered row may hold a missing past driver where it is only read as some window's FUTURE (a
    # window's own past is complete): statistics of each part from its finite rows only (at a site
    # without gaps these are all the covered rows; with gaps, a NaN here made every output NaN)
    past = rows & np.isfinite(ws.X).all(1)
    fut = rows & np.isfinite(ws.F).all(1) if ws.Fs else rows
    m.set_normalization(torch.from_numpy(ws.X[past]), torch.from_numpy(ws.F[fut]) if ws.Fs else None,
                        torch.from_numpy(ws.y[train_idx]))
    return m


def search_grid(cfg: RunConfig) -> tuple[list[tuple], int]:
    """The (hidden, lr) trials of the declared search and the epochs each trial trains."""
    grid = list(itertools.product(cfg.search.hidden or [cfg.model.hidden], cfg.search.lr or [cfg.train.lr]))
    if cfg.search.mode == "random" and cfg.search.n_random and cfg.search.n_random < len(grid):
        pick = np.random.default_rng(cfg.run.seed).choice(len(grid), cfg.search.n_random, replace=False)
        grid = [grid[i] for i in sorted(pick)]
    epochs = (cfg.search.epochs or cfg.train.epochs) if len(grid) > 1 else cfg.train.epochs
    return grid, epochs


def search_and_fit(cfg: RunConfig, ws: WindowSet, split: Split) -> tuple[RsoilModel, dict]:
    """The declared hyperparameter search (grid or random over search.hidden × search.lr), chosen on
    validation loss; without a search, one fit with [model]/[train]. Returns the best model and info.
    """
    seed = cfg.run.seed
    train_idx = _subsample(split.train, cfg.train.max_train_samples, seed)
    val_idx = _subsample(split.val, cfg.train.max_eval_samples, seed)
    grid, epochs = search_grid(cfg)
    trials = []
    best = None
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
