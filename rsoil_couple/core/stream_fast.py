"""A streaming model file's module prepared for long offline runs: the same numbers, fewer operations per step.

A streaming ``run`` is a scripted loop of ``step`` calls on small tensors, so its cost is mostly the
TorchScript interpreter's work per operation, not arithmetic (docs/predict.md, "Measured"). Two
preparations remove operations without changing a single value:

- **shared features** (`StreamEnsemble` files): every `KGStream` member advances the same
  parameter-free feature state; `StreamEnsemble.around` advances it once per step and evaluates each
  member's own scripted network on it (x1.6 for the 3-member drylands-v1);
- **chunked heads** (`rsoil_couple.models.stream_chunked`; hidden-0 members, runs of a fixed row count
  that is a multiple of 64): the features are advanced step by step, the members' networks and bases
  evaluated once per 16 steps over all their rows;
- **freezing** (`torch.jit.freeze`, ``optimize_numerics=False``): parameters and buffers become
  constants and everything computed from them alone (Q10/E0 from their raw parameters, the moisture
  exponent, ...) is folded once, by the same kernels (x1.8 on top).

All are verified before use: `prepared_module` runs the file's own module and the prepared one on a
probe record (within and outside the envelope, missing values, rain; at the run's own row count when
the heads are chunked) and keeps the prepared one only when outputs and states are equal bit for bit;
otherwise the file's module is used as it is. Prepared modules are cached per process (file path, size,
modification time and row count), so a predict that runs many blocks prepares once.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

__all__ = ["prepared_module", "probe_drivers"]

_CACHE: dict = {}


def probe_drivers(meta: dict, rows: int, steps: int, seed: int = 0):
    """A probe record ``[rows, steps, n_past_vars]`` float32 for the file's drivers: values across the
    envelope and a little beyond it, ~3 % missing (NaN), rain on ~10 % of the steps.
    """
    import torch

    rng = np.random.default_rng(seed)
    x = np.empty((rows, steps, len(meta["past_vars"])), dtype=np.float32)
    for k, v in enumerate(meta["past_vars"]):
        name = v["name"]
        if name == "precip":
            x[..., k] = np.where(rng.random((rows, steps)) < 0.1, rng.exponential(2.0, (rows, steps)), 0.0)
            continue
        env = meta["envelope"][name]
        lo, hi = float(env["min"]), float(env["max"])
        width = hi - lo if hi > lo else 1.0
        phase = 2 * np.pi * np.arange(steps) / max(1.0, 86400.0 / float(meta["step_seconds"]))
        mid = lo + width * rng.uniform(0.1, 0.9, (rows, 1))
        x[..., k] = mid + 0.15 * width * np.sin(phase) + 0.05 * width * rng.standard_normal((rows, steps))
        out = rng.random((rows, steps)) < 0.02           # a little outside the envelope
        x[..., k][out] = (hi + 0.2 * width) if name != "swc" else min(hi + 0.1, 1.0)
    x[rng.random(x.shape) < 0.03] = np.nan
    return torch.from_numpy(x)


def _same_run(a, b, x, rows: int) -> bool:
    import torch

    with torch.inference_mode():
        ya, sa = a.run(a.initial_state(rows), x)
        yb, sb = b.run(b.initial_state(rows), x)
        # and carried on from a state (the restart path)
        ya2, sa2 = a.run(sa, x[:, : x.shape[1] // 2])
        yb2, sb2 = b.run(sa, x[:, : x.shape[1] // 2])
    return all(torch.equal(p, q) for p, q in ((ya, yb), (sa, sb), (ya2, yb2), (sa2, sb2)))


def _prepare(module, meta: dict, rows: int = 0):
    """(prepared module, list of what was applied), unverified; ``rows``: the row count of every ``run``
    call (0: not fixed, so the heads are not chunked).
    """
    import torch

    from ..models.stream_chunked import ChunkedHeads, chunkable
    from ..models.stream_ensemble import StreamEnsemble, same_feature_recurrence

    applied = []
    # an ensemble file (its metadata names the members' kind) whose own step advances every member
    if getattr(module, "original_name", "") == "StreamEnsemble" and hasattr(module, "members") \
            and not bool(getattr(module, "shared_features", False)):
        members = [getattr(module.members, str(k)) for k in range(int(module.n_members))]
        if same_feature_recurrence(members):
            module = torch.jit.script(StreamEnsemble.around(module))
            applied.append("shared_features")
    if chunkable(module, rows):
        module = torch.jit.script(ChunkedHeads(module))
        applied.append("chunked_heads")
    module = torch.jit.freeze(module.eval(), preserved_attrs=["run", "step", "initial_state"],
                              optimize_numerics=False)
    applied.append("frozen")
    return module, applied


def prepared_module(path: str | os.PathLike, module, meta: dict, probe_rows: int = 16,
                    probe_steps: int = 192, rows: int = 0):
    """The file's streaming module prepared for offline runs (module docstring), or `module` itself.

    Parameters
    ----------
    path : the model file (the cache key, with its size and modification time).
    module, meta : the file's module and metadata as `rsoil_couple.modelfile.export.load_model` gives them.
    probe_rows, probe_steps : size of the bit-for-bit probe (and half of it again from the state it ends in);
        with chunked heads the probe has ``rows`` rows and a few steps more (a last, partial chunk).
    rows : the row count of every ``run`` call the module will get (0: any; no chunked heads).

    Returns
    -------
    (module, applied) : the module to run and the list of preparations kept (``[]``: the file's own).
    """
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns, int(rows))
    if key in _CACHE:
        return _CACHE[key]
    why = ""
    for fixed in ([int(rows), 0] if int(rows) else [0]):   # chunked heads first, then without them
        chunked = bool(fixed)     # (until _prepare says whether they applied)
        try:
            fast, applied = _prepare(module, meta, fixed)
            chunked = "chunked_heads" in applied
            # chunked heads: the probe at the run's row count, with a last partial chunk
            steps, prows = (int(probe_steps) + 9, fixed) if chunked else (int(probe_steps), int(probe_rows))
            ok = _same_run(module, fast, probe_drivers(meta, prows, steps), prows)
            if not ok:
                why += f" {applied}: outputs differ from the file's own module on the probe;"
        except Exception as exc:  # any failure to prepare: the next candidate, at last the file's module
            ok, why = False, why + f" {type(exc).__name__}: {exc};"
        if ok or not chunked:     # (without chunked heads the next candidate would be the same)
            break
    if not ok:
        warnings.warn(f"{path}: streaming module run as it is (not prepared:{why})", RuntimeWarning,
                      stacklevel=2)
        fast, applied = module, []
    _CACHE[key] = (fast, applied)
    return fast, applied
