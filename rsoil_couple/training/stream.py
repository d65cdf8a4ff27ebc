"""Training streaming models (``kg_stream``) by truncated back-propagation through time on whole records.

Each site's record is one long sequence at its own step. The feature state has no learned parameters,
so its features are computed once (`KGStream.feature_sequence`, the same code as the model's ``step``).
The learned part runs over chunks of ``chunk_hours`` (several sites per batch); each chunk starts from
the LSTM state its predecessor ended with in the previous pass (state carried across chunks,
detached), so every time step is computed once per epoch, not once per window.

Shared response × site scale: every site gets its own log scale (its reference rate at 10 °C and
θ_ref), learned with the shared Q10, moisture exponent and network. Training first fits the physical
base alone (the network's modulation starts at 1), so the model starts from what a fitted Q10 knows;
then everything is trained jointly, the loss being each site's squared error divided by that site's
variance plus ``modulation_penalty`` × mean(tanh(s)²), which keeps the network a modulation of the
physics where the data do not need more. In the base fit every site counts equally (its mean error); in
the joint stage, by default (``site_weighting = "rows"``), each row does, so a site counts in proportion
to its usable rows; ``site_weighting = "sites"`` makes every site count equally there too (each site's
weight divided by its share of the training rows). The physical base's parameters keep training in
the joint stage (``base_in_joint = "trained"``, the default) or stay at the base fit (``"frozen"``:
the network and the site scales train; the base alone, λ = 0, is then exactly the fitted physics).
Each site's squared error is divided by its variance (``site_normalization = "variance"``, the default)
or by its squared mean (``"mean"``: errors relative to the site's level).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..models.kg_stream import KGStream
from ..models.recent import recent_sequence
from ..models.stream_options import MODULATION_WEIGHTS, check_train_choice
from .records import SiteArrays

DRIVERS3 = ("tsoil", "swc", "precip")
#: the physical base's parameters (the fit_base stage, and a 3x learning rate in the joint stage)
PHYSICS_PARAMS = ("q10_raw", "e0_raw", "c_raw", "w_raw", "k_raw", "ek_raw")


@dataclass
class StreamSite:
    """One site's record prepared for a streaming model: features, base inputs and target as tensors."""

    name: str
    step_seconds: int
    time: np.ndarray
    feats: torch.Tensor        # [T, 12]
    base_in: torch.Tensor      # [T, 3]
    y: torch.Tensor            # [T], NaN where missing
    spun_up: torch.Tensor      # [T] bool: at least spinup_hours into the record
    drivers: np.ndarray = field(repr=False, default=None)   # [T, n_past_vars] raw, in past_vars order
    past_vars: tuple = ()


_CACHE: dict = {}


def prepare_site(model: KGStream, site: SiteArrays) -> StreamSite:
    """Features of ``site``'s whole record at its own step (a variable the model does not read is 0).

    The features have no learned parameters: they are computed once per record and variable set and
    kept for the process (leave-one-site-out prepares every site once, not once per fold). An LSTM
    (``model.hidden``) or a delay line (``model.recent_hours``, counted in steps) is trained at the model's
    step only: a site at another step is refused, not read with other time constants.
    """
    if (model.hidden or model.recent_steps) and float(site.step_seconds) != float(model.step_seconds):
        what = "model.recent_hours (a delay line counted in steps)" if model.recent_steps else "model.hidden (an LSTM)"
        raise ValueError(f"site '{site.name}' ({site.source}) is at a {site.step_seconds:g} s step but this model is "
                         f"at {model.step_seconds:g} s and {what} is trained at one step: bring the sites to one "
                         "step (data.step_minutes)")
    key = (site.name, site.source, int(site.step_seconds), tuple(model.past_var_names), model.recent_steps,
           len(site.time),
           float(np.nansum(site.target)), float(np.nansum(site.drivers["tsoil"])))
    if key not in _CACHE:
        _CACHE[key] = _prepare(model, site)
    return _CACHE[key]


def _prepare(model: KGStream, site: SiteArrays) -> StreamSite:
    n = len(site.time)
    cols = []
    for v in DRIVERS3:
        if v in model.past_var_names:
            if v not in site.drivers:
                raise ValueError(f"site '{site.name}' ({site.source}): has no '{v}' but the model reads it "
                                 "(data.past_vars)")
            cols.append(np.asarray(site.drivers[v], np.float32))
        else:
            cols.append(np.zeros(n, np.float32))
    feats, base_in = feature_sequence_np(np.stack(cols, 1), site.step_seconds, model)
    spin = int(math.ceil(168.0 * 3600.0 / site.step_seconds))
    spun = torch.arange(n) >= spin
    drivers = np.stack([np.asarray(site.drivers[v], np.float32) for v in model.past_var_names], 1)
    return StreamSite(site.name, int(site.step_seconds), site.time, feats, base_in,
                      torch.from_numpy(np.asarray(site.target, np.float32)), spun, drivers,
                      tuple(model.past_var_names))


def _ema(x: np.ndarray, a: float, reset_at: int | None) -> np.ndarray:
    """``e[t] = e[t-1] + a (x[t] - e[t-1])`` from 0, restarted at ``x[reset_at]`` (the first valid value)."""
    from scipy.signal import lfilter
    e = np.zeros_like(x)
    f = 0 if reset_at is None else reset_at
    zi = [0.0] if reset_at is None else [(1.0 - a) * x[f]]
    e[f:] = lfilter([a], [1.0, -(1.0 - a)], x[f:], zi=zi)[0]
    return e


def feature_sequence_np(x3: np.ndarray, step_seconds: float, model: KGStream) -> tuple[torch.Tensor, torch.Tensor]:
    """`KGStream.feature_sequence` for one record ``[T, 3]`` in float64 numpy (C loops of scipy's lfilter).

    The same recurrences as the model's ``advance``: NaN holds the last valid value (0 before the
    first), averages restart at a variable's first valid value, rain averages start at 0, hours since
    rain at 720. Equal to the step-by-step float32 path to float32 rounding (tests/training/test_stream.py).
    Returns features ``[T, 12 + 3K]`` (K = ``model.recent_steps``: `rsoil_couple.models.recent`) and base
    inputs ``[T, 3]`` (float32).
    """
    x = np.asarray(x3, np.float64)
    n = len(x)
    dt_h = float(step_seconds) / 3600.0
    tau = model.tau_h.numpy().astype(np.float64)
    alpha = 1.0 - np.exp(-dt_h / tau)
    valid = np.isfinite(x)
    xv = np.zeros_like(x)
    first = []
    for j in range(3):
        idx = np.where(valid[:, j], np.arange(n), -1)
        np.maximum.accumulate(idx, out=idx)
        xv[:, j] = np.where(idx >= 0, x[np.maximum(idx, 0), j], 0.0)
        first.append(int(np.argmax(valid[:, j])) if valid[:, j].any() else None)
    t, w, p = xv[:, 0], xv[:, 1], np.clip(xv[:, 2], 0.0, None)
    et3, et24 = (_ema(t, alpha[k], first[0]) if first[0] is not None else np.zeros(n) for k in (0, 1))
    ew24, ew168 = (_ema(w, alpha[k], first[1]) if first[1] is not None else np.zeros(n) for k in (2, 3))
    er = np.stack([_ema(p / dt_h, alpha[k], None) for k in (4, 5, 6, 7)], 1)
    rained = valid[:, 2] & (np.nan_to_num(x[:, 2]) > 0.0)
    last = np.where(rained, np.arange(n), -1)
    np.maximum.accumulate(last, out=last)
    hsr = np.where(last >= 0, (np.arange(n) - last) * dt_h, 720.0 + np.arange(n) * dt_h)
    hsr = np.minimum(hsr, 720.0)
    feats = np.stack([t - et24, t - et3, et24, w, w - ew24, w - ew168, *np.log1p(er * tau[4:8]).T,
                      np.log1p(hsr), np.log1p(p)], 1)
    base_in = np.stack([et24, t - et24, w], 1)
    if model.recent_steps:
        lags = recent_sequence(torch.from_numpy(np.stack([t, w, np.log1p(p)], 1)), torch.from_numpy(et24),
                               torch.from_numpy(w), model.recent_steps)
        feats = np.concatenate([feats, lags.numpy()], 1)
    return torch.from_numpy(feats.astype(np.float32)), torch.from_numpy(base_in.astype(np.float32))


def _sequence_logit(model: KGStream, fn: torch.Tensor, hc=None):
    """Network output for normalised features ``[B, T, F]`` from LSTM state ``hc`` (zeros if None)."""
    b = fn.shape[0]
    if hc is None:
        hc = (torch.zeros(b, model.hidden), torch.zeros(b, model.hidden))
    return model.modulation_logit(fn, hc[0], hc[1])


def predict_sequence(model: KGStream, ss: StreamSite, log_scale: float | None = None) -> np.ndarray:
    """Rsoil [µmol m-2 s-1] over the whole record, vectorised (same math as ``run``; float rounding aside).

    ``log_scale``: the site's log scale to use instead of the model's ``site_scale``.
    """
    with torch.no_grad():
        s, _, _ = _sequence_logit(model, model.norm_features(ss.feats).unsqueeze(0))
        pred = model.rsoil(s[0], ss.base_in, model.trust(ss.feats))
        if log_scale is not None:
            pred = pred / model.site_scale * math.exp(log_scale)
    return pred.numpy().astype(np.float64)


def _site_weights(sites: list[StreamSite], masks: list[np.ndarray], normalization: str = "variance") -> list[float]:
    """Per-row weight of each site's squared error: 1 / its variance (``"variance"``: every site's error
    relative to its own variation) or 1 / its squared mean (``"mean"``: relative to its level, as the
    shared response × site scale is multiplicative), over the usable target rows in ``masks``.
    """
    check_train_choice("site_normalization", normalization)
    w = []
    for ss, m in zip(sites, masks):
        y = ss.y.numpy()[m]
        if normalization == "variance":
            d = float(np.nanvar(y))
        else:
            d = float(np.nanmean(y)) ** 2
        w.append(1.0 / max(d, 1e-6) if y.size else 0.0)
    return w


def _equal_site_weights(sites: list[StreamSite], masks: list[np.ndarray], weights: list[float]) -> list[float]:
    """``weights`` divided by each site's share of the usable rows (``site_weighting = "sites"``): summed
    over its rows, every site then carries the weight of an average site.
    """
    n = [len(_rows(ss, m)) for ss, m in zip(sites, masks)]
    used = [k for k, v in enumerate(n) if v > 0]
    mean_n = sum(n[k] for k in used) / max(1, len(used))
    return [w * mean_n / v if v > 0 else 0.0 for w, v in zip(weights, n)]


def _rows(ss: StreamSite, mask: np.ndarray) -> torch.Tensor:
    """Indices of usable target rows: inside ``mask``, finite target, spun up."""
    ok = torch.from_numpy(np.asarray(mask, bool)) & torch.isfinite(ss.y) & ss.spun_up
    return torch.nonzero(ok).squeeze(1)


def fit_base(model: KGStream, sites: list[StreamSite], masks: list[np.ndarray], iters: int = 300,
             max_rows: int = 40000, seed: int = 0, normalization: str = "variance") -> torch.Tensor:
    """Fit the physical base alone (Q10, moisture exponent, anomaly share, one log scale per site).

    Returns the per-site log scales ``[n_sites]``. The model's modulation is ignored (it starts at 1).
    """
    g = torch.Generator().manual_seed(seed)
    rows = []
    for ss, m in zip(sites, masks):
        r = _rows(ss, m)
        if len(r) > max_rows:
            r = r[torch.randperm(len(r), generator=g)[:max_rows]]
        rows.append(r)
    weights = _site_weights(sites, masks, normalization)
    with torch.no_grad():
        log_s = []
        for ss, r in zip(sites, rows):
            b = model.base(ss.base_in[r]) / model.site_scale
            log_s.append(math.log(max(float(ss.y[r].mean()), 1e-3) / max(float(b.mean()), 1e-6)) if len(r) else 0.0)
    log_s = torch.tensor(log_s, requires_grad=True)
    params = [getattr(model, n) for n in PHYSICS_PARAMS] + [log_s]
    opt = torch.optim.Adam(params, lr=0.05)
    for _ in range(iters):
        opt.zero_grad()
        loss = 0.0
        for k, (ss, r) in enumerate(zip(sites, rows)):
            if len(r) == 0:
                continue
            pred = model.base(ss.base_in[r]) / model.site_scale * torch.exp(log_s[k])
            loss = loss + weights[k] * ((pred - ss.y[r]) ** 2).mean()
        loss.backward()
        opt.step()
    return log_s.detach()


def _chunks(sites: list[StreamSite], chunk_hours: float) -> list[tuple[int, int, int]]:
    """(site index, start, length) of consecutive chunks covering every record."""
    out = []
    for k, ss in enumerate(sites):
        L = max(1, int(round(chunk_hours * 3600.0 / ss.step_seconds)))
        n = len(ss.y)
        out += [(k, s, min(L, n - s)) for s in range(0, n, L)]
    return out


def _val_loss(model, sites, masks, log_s, weights) -> float:
    tot, n = 0.0, 0
    for k, (ss, m) in enumerate(zip(sites, masks)):
        r = _rows(ss, m)
        if len(r) == 0:
            continue
        pred = torch.from_numpy(predict_sequence(model, ss, float(log_s[k]))).float()
        tot += weights[k] * float(((pred[r] - ss.y[r]) ** 2).mean())
        n += 1
    return tot / max(n, 1)


def _block_losses(model, sites, masks, log_s, weights, block_hours: float = 24.0) -> np.ndarray:
    """Site-weighted squared error averaged per ``block_hours`` block of the rows in ``masks`` ``[n_blocks]``."""
    out = []
    for k, (ss, m) in enumerate(zip(sites, masks)):
        r = _rows(ss, m).numpy()
        if len(r) == 0:
            continue
        pred = predict_sequence(model, ss, float(log_s[k]))
        e = weights[k] * (pred[r].astype(np.float64) - ss.y.numpy()[r]) ** 2
        _, blk = np.unique((r * ss.step_seconds) // (block_hours * 3600.0), return_inverse=True)
        out.append(np.bincount(blk, e) / np.bincount(blk))
    return np.concatenate(out) if out else np.zeros(0)


def choose_modulation_weight(model: KGStream, sites: list[StreamSite], val_masks: list[np.ndarray],
                             log_s: torch.Tensor, weights: list[float], rule: str = "one_se",
                             block_hours: float = 24.0) -> float:
    """Set ``model.modulation_weight`` to a share of `MODULATION_WEIGHTS` chosen on the validation rows.

    The network must at least do what the physical base does on data it was not fitted on. The
    validation rows are cut into days (``block_hours`` blocks); every share λ gets its mean daily loss.

    - ``rule = "min"``: the λ with the lowest mean (ties to the smaller one).
    - ``rule = "none"``: no choice, λ = 1 (the validation rows are not read).
    - ``rule = "one_se"`` (the default): the SMALLEST λ whose mean daily loss exceeds the lowest one by
      no more than one standard error of the paired daily differences (the one-standard-error rule,
      Breiman et al. 1984; Hastie et al. 2009, sect. 7.10). The same rows chose the early-stopping
      epoch, so their loss flatters the network; where the validation days cannot tell the network
      from a smaller share of it, the smaller share is kept (0: the base alone).

    Returns the chosen weight.
    """
    check_train_choice("modulation_choice", rule)
    if rule == "none":
        model.modulation_weight.fill_(1.0)
        return 1.0
    blocks = []
    for lam in MODULATION_WEIGHTS:
        model.modulation_weight.fill_(lam)
        blocks.append(_block_losses(model, sites, val_masks, log_s, weights, block_hours))
    loss = np.stack(blocks)                        # [n_lambda, n_days]
    best = int(np.argmin(loss.mean(1)))
    pick = best
    if rule == "one_se" and loss.shape[1] > 1:
        d = loss - loss[best]
        se = d.std(1, ddof=1) / math.sqrt(loss.shape[1])
        pick = int(np.flatnonzero(d.mean(1) <= se + 1e-12)[0])
    lam = MODULATION_WEIGHTS[pick]
    model.modulation_weight.fill_(lam)
    return lam


def train_stream(model: KGStream, sites: list[StreamSite], train_masks: list[np.ndarray],
                 val_masks: list[np.ndarray] | None = None, *, epochs: int = 30, lr: float = 3e-3,
                 batch_chunks: int = 8, chunk_hours: float = 48.0, modulation_penalty: float = 0.01,
                 patience: int = 6, seed: int = 0, progress: bool = True, modulation_choice: str = "one_se",
                 modulation_block_hours: float = 24.0, site_weighting: str = "rows",
                 base_in_joint: str = "trained", site_normalization: str = "variance") -> dict:
    """Train ``model`` in place on ``sites`` (rows where ``train_masks`` is True); returns the history.

    Sets the feature normalisation and envelope from the training rows, fits the base
    (`fit_base`), then trains everything by truncated BPTT with early stopping on ``val_masks`` (when
    given and non-empty), then keeps the share of the network's modulation that ``modulation_choice`` picks
    on those rows (`choose_modulation_weight`). Returns ``{"log_scales": {site: log scale}, "epochs": n, "val_loss": [...],
    "seconds": s, "physics": model.physics()}``; the model's ``site_scale`` is left at 1.
    """
    t0 = time.perf_counter()
    for name, value in (("site_weighting", site_weighting), ("base_in_joint", base_in_joint),
                        ("site_normalization", site_normalization)):   # (before any work)
        check_train_choice(name, value)
    torch.manual_seed(seed)
    feats = torch.cat([ss.feats[torch.from_numpy(np.asarray(m, bool)) & ss.spun_up] for ss, m in zip(sites, train_masks)])
    if feats.shape[0] < 10:
        raise ValueError(f"kg_stream: only {feats.shape[0]} training rows after the 168 h spin-up")
    model.set_feature_normalization(feats)
    log_s = fit_base(model, sites, train_masks, seed=seed, normalization=site_normalization)
    log_s.requires_grad_(True)
    weights = _site_weights(sites, train_masks, site_normalization)
    # the joint loss sums over rows: "sites" divides each site's weight by its share of the rows
    train_weights = weights if site_weighting == "rows" else _equal_site_weights(sites, train_masks, weights)
    val_masks = val_masks or [np.zeros(len(ss.y), bool) for ss in sites]
    has_val = any(len(_rows(ss, m)) for ss, m in zip(sites, val_masks))
    chunks = _chunks(sites, chunk_hours)
    nxt = {c: chunks[i + 1] for i, c in enumerate(chunks[:-1]) if chunks[i + 1][0] == c[0]}
    carry: dict = {}
    tmask = [torch.from_numpy(np.asarray(m, bool)) & torch.isfinite(ss.y) & ss.spun_up
             for ss, m in zip(sites, train_masks)]
    fnorm = [model.norm_features(ss.feats).detach() for ss in sites]
    trust = [model.trust(ss.feats).detach() for ss in sites]
    # "frozen": the joint stage trains the network and the site scales only; the base stays the fit above
    physics = [getattr(model, n) for n in PHYSICS_PARAMS]
    frozen = [p for p in physics if p.requires_grad] if base_in_joint == "frozen" else []
    for p in frozen:   # (no gradient: none to step, none in the clipping norm)
        p.requires_grad_(False)
    opt = torch.optim.Adam([{"params": [p for n, p in model.named_parameters()
                                        if n not in PHYSICS_PARAMS]},
                            {"params": (physics if base_in_joint == "trained" else []) + [log_s], "lr": lr * 3}],
                           lr=lr, weight_decay=0.0)
    best, best_state, best_ls, bad, hist = float("inf"), None, log_s.detach().clone(), 0, []
    g = np.random.default_rng(seed)
    ep = 0
    for ep in range(1, epochs + 1):
        model.train()
        order = g.permutation(len(chunks))
        # batches of chunks of one step length (so they stack)
        by_len: dict[tuple[int, int], list] = {}
        for i in order:
            k, s, L = chunks[i]
            by_len.setdefault((sites[k].step_seconds, L), []).append(chunks[i])
        batches = [v[j:j + batch_chunks] for v in by_len.values() for j in range(0, len(v), batch_chunks)]
        g.shuffle(batches)
        for batch in batches:
            fn = torch.stack([fnorm[k][s:s + L] for k, s, L in batch])
            h0 = torch.stack([carry.get(c, (torch.zeros(model.hidden),) * 2)[0] for c in batch])
            c0 = torch.stack([carry.get(c, (torch.zeros(model.hidden),) * 2)[1] for c in batch])
            logit, h1, c1 = _sequence_logit(model, fn, (h0, c0))
            loss = 0.0
            nrow = 0
            for j, (k, s, L) in enumerate(batch):
                if (k, s, L) in nxt:
                    carry[nxt[(k, s, L)]] = (h1[j].detach(), c1[j].detach())
                m = tmask[k][s:s + L]
                if not bool(m.any()):
                    continue
                pred = (model.rsoil(logit[j][m], sites[k].base_in[s:s + L][m], trust[k][s:s + L][m])
                        / model.site_scale * torch.exp(log_s[k]))
                loss = loss + train_weights[k] * ((pred - sites[k].y[s:s + L][m]) ** 2).sum()
                nrow += int(m.sum())
            if nrow == 0:
                continue
            loss = loss / nrow + modulation_penalty * (torch.tanh(logit) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
        model.eval()
        vl = _val_loss(model, sites, val_masks if has_val else train_masks, log_s.detach(), weights)
        hist.append(vl)
        if progress:
            ph = model.physics()
            c = f"  c {ph['moisture_exponent']:.2f}" if "moisture_exponent" in ph else ""
            print(f"  kg_stream epoch {ep:3d}: {'val' if has_val else 'train'} loss {vl:.4f}  Q10 {ph['q10']:.2f}"
                  f"{c}  w {ph['anomaly_share']:.2f}", flush=True)
        if vl < best - 1e-5:
            best, bad = vl, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best_ls = log_s.detach().clone()
        else:
            bad += 1
            if bad >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    for p in frozen:
        p.requires_grad_(True)
    model.eval()
    if has_val:
        choose_modulation_weight(model, sites, val_masks, best_ls, weights, modulation_choice, modulation_block_hours)
    return {"log_scales": {ss.name: float(v) for ss, v in zip(sites, best_ls)}, "epochs": ep,
            "val_loss": hist, "seconds": time.perf_counter() - t0, "physics": model.physics()}
