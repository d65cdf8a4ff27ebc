"""The C++ core through rsoil_couple.Coupler (pybind11): agreement with the TorchScript module called
directly, policies, status codes and Q10 fallback, restart, and every bad-input error."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rsoil_couple import Coupler
from rsoil_couple.baselines import q10
from rsoil_couple.core import coupler as cp
from rsoil_couple.modelfile.export import export_model
from rsoil_couple.modelfile.identity import model_identity
from rsoil_couple.training.example import example_model


def drivers(meta: dict, ntime: int, ncol: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Diel drivers inside the training envelope, [time, column], canonical units."""
    env = meta["envelope"]
    t = np.arange(ntime)[:, None]
    c = np.arange(ncol)[None, :]
    rng = np.random.default_rng(seed)

    def mid(v, frac):
        lo, hi = env[v]["min"], env[v]["max"]
        return 0.5 * (lo + hi), frac * 0.5 * (hi - lo)

    tm, ta = mid("tsoil", 0.5)
    sm, sa = mid("swc", 0.4)
    tsoil = tm + ta * np.sin(2 * np.pi * (t / 48.0 + c / max(ncol, 1))) + rng.uniform(-0.2, 0.2, (ntime, ncol))
    swc = sm + sa * np.cos(2 * np.pi * (t / 200.0 + c / max(ncol, 1)))
    precip = np.where((t + c) % 17 == 0, 0.5 * env["precip"]["max"], 0.0) * np.ones((ntime, ncol))
    return {"tsoil": tsoil, "swc": swc, "precip": precip}


def eager(module, meta: dict, x: dict, t: int, future: dict | None = None) -> np.ndarray:
    """The TorchScript module called directly for step t over all columns (reference)."""
    P, F = meta["past_steps"], meta["future_steps"]
    pv = [v["name"] for v in meta["past_vars"]]
    fv = [v["name"] for v in meta["future_vars"]]
    past = np.stack([x[v][t - P + 1:t + 1].T for v in pv], axis=-1)
    if future is None:
        future = {v: x[v][t + 1:t + 1 + F].T for v in fv}
    fut = np.stack([future[v] for v in fv], axis=-1) if F else np.zeros((past.shape[0], 0, 0))
    with torch.no_grad():
        out = module(torch.from_numpy(past).float(), torch.from_numpy(np.ascontiguousarray(fut)).float())
    return out.double().numpy()


def run(c: Coupler, x: dict, steps: range, F: int, supplied: bool):
    outs = []
    for t in steps:
        fut = {f"future_{v}": x[v][t + 1:t + 1 + F].T for v in c.future_vars} if supplied else {}
        outs.append(c.step(x["tsoil"][t], x["swc"][t], x["precip"][t], **fut))
    return outs


def q10_ref(meta: dict, tsoil, swc) -> np.ndarray:
    fq = meta["fallback_q10"]
    return q10.predict(fq["form"], fq["params"], tsoil, swc, fq["swc_units"], tref_c=fq["tref_c"])


@pytest.mark.parametrize("ncol", [1, 7, 1000])
def test_agrees_with_torchscript_called_directly(model, ncol):
    path, meta, module = model
    P, F = meta["past_steps"], meta["future_steps"]
    x = drivers(meta, P + 3 + F, ncol)
    c = Coupler(path, ncol, "supplied")
    outs = run(c, x, range(P + 3), F, supplied=True)
    for t in (P - 1, P + 2):
        ref = eager(module, meta, x, t)
        got = outs[t]
        assert np.all(got.status <= cp.EXTRAPOLATING)
        rel = np.max(np.abs(got.rsoil - ref) / np.abs(ref))
        assert rel <= 1e-5, f"max relative difference {rel:.2e} at step {t}"
        np.testing.assert_array_equal(got.rsoil_gc, got.rsoil * 12.011e-6)
        np.testing.assert_allclose(got.resp_scalar, got.rsoil / q10_ref(meta, x["tsoil"][t], x["swc"][t]), rtol=1e-12)


def test_chunking_and_threads_do_not_change_results(model):
    path, meta, _ = model
    P, F = meta["past_steps"], meta["future_steps"]
    x = drivers(meta, P + 2 + F, 10)
    whole = run(Coupler(path, 10, "supplied"), x, range(P + 2), F, True)[-1]
    before = torch.get_num_threads()
    try:
        chunked = run(Coupler(path, 10, "supplied", chunk_size=3, num_threads=1), x, range(P + 2), F, True)[-1]
        assert torch.get_num_threads() == 1  # documented: num_threads is process-wide
    finally:
        torch.set_num_threads(before)
    np.testing.assert_allclose(chunked.rsoil, whole.rsoil, rtol=1e-6)
    np.testing.assert_array_equal(chunked.status, whole.status)


def test_a_columns_value_does_not_depend_on_its_batch(model):
    """With chunk_size > 0 (fixed-size forward calls), bit for bit the same value for a column alone,
    among 7, with a mask leaving it the only active column, and with 2 of 7 active: what makes 1 MPI
    rank equal N ranks. libtorch's float32 kernels depend on the batch size (checked below with
    chunk_size = 0, where a lone column may differ in the last bits)."""
    path, meta, _ = model
    P, F = meta["past_steps"], meta["future_steps"]
    x = drivers(meta, P + 40 + F, 7)
    steps = range(P + 40)

    def rsoil(cols, mask=None, chunk=4):
        c = Coupler(path, len(cols), "supplied", chunk_size=chunk)
        if mask is not None:
            c.set_mask(mask)
        outs = run(c, {k: v[:, cols] for k, v in x.items()}, steps, F, True)
        return np.array([o.rsoil for o in outs[P - 1:]]), np.array([o.status for o in outs[P - 1:]])

    all7, st = rsoil(np.arange(7))
    assert np.all(st <= cp.EXTRAPOLATING)
    alone = np.concatenate([rsoil(np.array([j]))[0] for j in range(7)], axis=1)
    np.testing.assert_array_equal(alone, all7)
    only4, st4 = rsoil(np.arange(7), mask=np.arange(7) == 4)
    assert np.all(np.delete(st4, 4, axis=1) == cp.MASKED)
    np.testing.assert_array_equal(only4[:, 4], all7[:, 4])
    two, _ = rsoil(np.array([1, 5]))
    np.testing.assert_array_equal(two, all7[:, [1, 5]])
    # chunk_size = 0: one call over the active columns; equal to float32 rounding only
    free7, _ = rsoil(np.arange(7), chunk=0)
    np.testing.assert_allclose(free7, all7, rtol=1e-6)


def test_lagged_is_supplied_delayed_by_future_steps(model):
    path, meta, _ = model
    P, F = meta["past_steps"], meta["future_steps"]
    T = P + F + 10
    x = drivers(meta, T + F, 5)
    sup = run(Coupler(path, 5, "supplied"), x, range(T), F, True)
    lag_c = Coupler(path, 5, "lagged")
    assert lag_c.lag_steps == F and lag_c.spinup_steps == P + F
    lag = run(lag_c, x, range(T), F, False)
    for t in range(T):
        if t < F:  # no step t-F yet: Q10 on the current drivers, SPINUP
            assert np.all(lag[t].status == cp.SPINUP)
            np.testing.assert_allclose(lag[t].rsoil, q10_ref(meta, x["tsoil"][t], x["swc"][t]), rtol=1e-13)
        else:
            for k in range(4):
                np.testing.assert_array_equal(lag[t][k], sup[t - F][k])


def test_persistence_future_is_yesterday_shifted_to_today(model):
    path, meta, module = model
    P, F = meta["past_steps"], meta["future_steps"]
    D = int(86400 / meta["step_seconds"])
    c = Coupler(path, 4, "persistence")
    assert c.spinup_steps == max(P, D + 1)
    T = c.spinup_steps + 3
    x = drivers(meta, T, 4)
    outs = run(c, x, range(T), F, False)
    assert np.all(outs[c.spinup_steps - 2].status == cp.SPINUP)
    t = T - 1
    tt = x["tsoil"]
    fut = {"tsoil": np.stack([tt[t - D + k] + tt[t] - tt[t - D] for k in range(1, F + 1)], axis=1)}
    ref = eager(module, meta, x, t, future=fut)
    assert np.max(np.abs(outs[t].rsoil - ref) / np.abs(ref)) <= 1e-5


def test_status_codes_where_they_belong_and_q10_values(model):
    """Each status exactly where it should be; Q10 fallback equal to rsoil_couple.q10."""
    path, meta, _ = model
    P, F = meta["past_steps"], meta["future_steps"]
    env = meta["envelope"]
    T, ncol = P + F + 40, 6
    x = drivers(meta, T + F, ncol)
    k = P + 10  # the step where each column gets its problem
    x["tsoil"][k, 1] = np.nan                      # missing
    x["tsoil"][k, 2] = x["tsoil"][k, 2] + 273.15   # K given where degC is declared: impossible
    x["tsoil"][k, 3] = env["tsoil"]["max"] + 1.0   # outside the envelope, physically fine
    x["precip"][k, 5] = -1.0                       # negative rain (past input only)
    expected = np.zeros((T, ncol), dtype=np.int32)
    expected[:P - 1] = cp.SPINUP
    in_window = (np.arange(T) >= k - F) & (np.arange(T) <= k + P - 1)   # tsoil: past + future window
    past_only = (np.arange(T) >= k) & (np.arange(T) <= k + P - 1)       # precip: past window only
    expected[in_window & (np.arange(T) >= P - 1), 1] = cp.MISSING
    expected[in_window & (np.arange(T) >= P - 1), 2] = cp.IMPOSSIBLE
    expected[past_only, 5] = cp.IMPOSSIBLE
    expected[:, 4] = cp.MASKED
    for strict, code in ((False, cp.EXTRAPOLATING), (True, cp.EXTRAPOLATION_FALLBACK)):
        c = Coupler(path, ncol, "supplied", strict=strict)
        c.set_mask([True, True, True, True, False, True])
        outs = run(c, x, range(T), F, True)
        status = np.array([o.status for o in outs])
        rsoil = np.array([o.rsoil for o in outs])
        scalar = np.array([o.resp_scalar for o in outs])
        exp = expected.copy()
        exp[in_window & (np.arange(T) >= P - 1), 3] = code
        np.testing.assert_array_equal(status, exp)
        # Q10 fallback values: rsoil_couple.q10 on the metadata's parameters at the step's drivers
        fallback = status >= cp.SPINUP
        fallback[k, 1] = fallback[k, 2] = False  # checked below: NaN
        ref = q10_ref(meta, x["tsoil"][:T], x["swc"][:T])
        np.testing.assert_allclose(rsoil[fallback], ref[fallback], rtol=1e-13)
        assert np.all(scalar[status >= cp.SPINUP] == 1.0)
        # the current drivers missing / impossible: NaN, not a made-up number
        assert np.isnan(rsoil[k, 1]) and np.isnan(rsoil[k, 2])
        assert np.isfinite(rsoil[k, 5])  # Q10 does not read precipitation
        np.testing.assert_array_equal(c.counters, np.bincount(status.ravel(), minlength=len(cp.STATUS_NAMES)))


def test_diagnostic_names_the_bad_input(model):
    path, meta, _ = model
    c = Coupler(path, 3, "lagged")
    ok = drivers(meta, 1, 3)
    cases = [
        ("tsoil", np.nan, "column 1 tsoil = nan degC is NaN"),
        ("tsoil", np.inf, "infinite"),
        ("tsoil", 300.0, "temperature in K given where degC is declared"),
        ("precip", -0.5, "negative precipitation"),
        ("swc", 35.0, "percent"),
    ]
    for var, value, words in cases:
        x = {v: ok[v][0].copy() for v in ok}
        x[var][1] = value
        c.step(x["tsoil"], x["swc"], x["precip"])
        assert words in c.diagnostic, (var, value, c.diagnostic)
        assert "1 column(s)" in c.diagnostic
    c.step(ok["tsoil"][0], ok["swc"][0], ok["precip"][0])
    assert c.diagnostic == ""


@pytest.mark.parametrize("policy", ["supplied", "lagged", "persistence"])
def test_restart_is_bit_for_bit(model, policy):
    path, meta, _ = model
    P, F = meta["past_steps"], meta["future_steps"]
    N = P + F + 5
    x = drivers(meta, 2 * N + F, 4)
    x["tsoil"][N + 3, 2] = np.nan  # statuses and counters cross the restart too
    sup = policy == "supplied"
    a = Coupler(path, 4, policy)
    a.set_mask([True, True, True, False])
    full = run(a, x, range(2 * N), F, sup)
    b = Coupler(path, 4, policy)
    b.set_mask([True, True, True, False])
    run(b, x, range(N), F, sup)
    blob = b.get_state()
    assert len(blob) == b.state_size() and blob[:8] == b"RSCSTATE"
    del b
    c = Coupler(path, 4, policy)
    c.set_state(blob)
    assert c.steps_taken == N and not c.mask[3]
    second = run(c, x, range(N, 2 * N), F, sup)
    for t in range(N, 2 * N):
        for k in range(4):
            np.testing.assert_array_equal(second[t - N][k], full[t][k])
    np.testing.assert_array_equal(c.counters, a.counters)
    assert c.get_state() == a.get_state()


def test_state_put_refuses_other_setups(model, tmp_path):
    path, meta, _ = model
    blob = Coupler(path, 4, "supplied").get_state()
    with pytest.raises(ValueError, match="ncol: blob has 4 columns"):
        Coupler(path, 5, "supplied").set_state(blob)
    with pytest.raises(ValueError, match="policy"):
        Coupler(path, 4, "lagged").set_state(blob)
    with pytest.raises(ValueError, match="strict"):
        Coupler(path, 4, "supplied", strict=True).set_state(blob)
    with pytest.raises(ValueError, match="checksum"):
        Coupler(path, 4, "supplied").set_state(blob[:-20] + bytes(20))
    with pytest.raises(ValueError, match="magic"):
        Coupler(path, 4, "supplied").set_state(b"X" * len(blob))
    other = tmp_path / "other.pt"
    example_model(other, kind="lstm", past_hours=meta["past_hours"], future_hours=meta["future_hours"], seed=1)
    with pytest.raises(ValueError, match="model_id"):
        Coupler(other, 4, "supplied").set_state(blob)


# ------------------------------------------------------------------------------------------------
# Bad input: each an exception whose message names the problem.
# ------------------------------------------------------------------------------------------------
def resave(module, meta: dict, path, **changes) -> None:
    m = json.loads(json.dumps(meta))
    for key, value in changes.items():
        if value is None:
            m.pop(key)
        else:
            m[key] = value
    m["model_id"] = module_identity(module)
    torch.jit.save(module, str(path), _extra_files={"rsoil_meta.json": json.dumps(m)})


def module_identity(module) -> str:
    """The model_id of ``module`` saved as it is (the loaded fixture module pickles differently from the
    module export_model saved, so its identity differs from the fixture file's)."""
    buf = io.BytesIO()
    torch.jit.save(module, buf)
    return model_identity(buf.getvalue())[:16]


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        Coupler(missing, 3)


def test_not_torchscript(tmp_path):
    p = tmp_path / "weights.pt"
    p.write_bytes(b"this is not a model" * 10)
    with pytest.raises(ValueError, match="not a TorchScript model file.*weights.pt"):
        Coupler(p, 3)
    q = tmp_path / "state_dict.pt"
    torch.save({"w": torch.zeros(3)}, q)
    with pytest.raises(ValueError, match="not a TorchScript model file"):
        Coupler(q, 3)


def test_metadata_missing(model, tmp_path):
    _, _, module = model
    p = tmp_path / "nometa.pt"
    torch.jit.save(module, str(p))
    with pytest.raises(ValueError, match="has no rsoil_meta.json"):
        Coupler(p, 3)


@pytest.mark.parametrize("changes, words", [
    ({"schema_version": 3}, "schema_version: unknown schema version 3"),
    ({"schema": "other"}, "schema:"),
    ({"step_seconds": None}, "step_seconds: required field is missing"),
    ({"fallback_q10": {"form": "exp", "params": {}, "tref_c": 10, "swc_units": "m3 m-3", "fitted_on": ""}},
     "fallback_q10.form: unknown value \"exp\""),
    ({"past_vars": [{"name": "tsoil", "units": "K"}]}, "past_vars[0].units"),
    ({"past_steps": 47}, "past_steps: 47 but past_hours*3600/step_seconds = 48"),
])
def test_metadata_malformed_names_the_field(model, tmp_path, changes, words):
    _, meta, module = model
    p = tmp_path / "bad.pt"
    resave(module, meta, p, **changes)
    with pytest.raises(ValueError) as err:
        Coupler(p, 3)
    assert words in str(err.value)


def test_metadata_not_json(model, tmp_path):
    _, _, module = model
    p = tmp_path / "nan.pt"
    torch.jit.save(module, str(p), _extra_files={"rsoil_meta.json": '{"schema": NaN}'})
    with pytest.raises(ValueError, match="rsoil_meta.json: schema: NaN is not a JSON number.*byte 12"):
        Coupler(p, 3)


class LastRowLinear(torch.nn.Module):
    """A module that records nothing about its inputs: only a dry forward can check the metadata."""

    def __init__(self, n_past: int):
        super().__init__()
        self.lin = torch.nn.Linear(n_past, 1)

    def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        return self.lin(past[:, -1, :]).squeeze(-1) + 0.0 * future.sum()


def test_metadata_inconsistent_with_module(model, tmp_path):
    _, meta, module = model
    p = tmp_path / "inconsistent.pt"
    # the module takes three past variables, the metadata declares two: the dry forward fails
    two = {k: v for k, v in meta.items() if k not in ("model_id", "torch_version", "rsoil_couple_version")}
    two["past_vars"] = meta["past_vars"][:2]
    export_model(LastRowLinear(3), two, p)
    with pytest.raises(ValueError, match=r"inconsistent with the module's inputs.*past \[2, 48, 2\].*failed"):
        Coupler(p, 3)
    export_model(LastRowLinear(2), two, p)  # consistent: accepted
    assert Coupler(p, 3).past_vars == ["tsoil", "swc"]
    # metadata that contradicts what the module records about itself
    resave(module, meta, p, past_vars=meta["past_vars"][:2])
    with pytest.raises(ValueError, match=r"past_vars: metadata inconsistent with the module \(module.n_past = 3"):
        Coupler(p, 3)
    resave(module, meta, p, past_hours=48.0, past_steps=96)
    with pytest.raises(ValueError, match="past_steps: metadata inconsistent with the module"):
        Coupler(p, 3)


def test_bad_arguments(model):
    path, meta, _ = model
    F = meta["future_steps"]
    with pytest.raises(ValueError, match="ncol must be >= 1"):
        Coupler(path, 0)
    with pytest.raises(ValueError, match="policy 'future'"):
        Coupler(path, 3, "future")
    c = Coupler(path, 7, "supplied")
    with pytest.raises(ValueError, match=r"tsoil: expected shape \(7,\)"):
        c.step(np.zeros(5), np.zeros(7), np.zeros(7), future_tsoil=np.zeros((7, F)))
    with pytest.raises(ValueError, match="future_tsoil"):
        c.step(np.zeros(7), np.zeros(7), np.zeros(7))
    with pytest.raises(ValueError, match=r"future_tsoil: expected shape \(7, 24\)"):
        c.step(np.zeros(7), np.zeros(7), np.zeros(7), future_tsoil=np.zeros((7, 3)))
    with pytest.raises(ValueError, match="future_swc given but the model takes no future swc"):
        c.step(np.zeros(7), np.zeros(7), np.zeros(7), future_tsoil=np.zeros((7, F)), future_swc=np.zeros((7, F)))
    assert c.steps_taken == 0  # call errors leave the state unchanged
    lag = Coupler(path, 7, "lagged")
    with pytest.raises(ValueError, match="the policy is not supplied"):
        lag.step(np.zeros(7), np.zeros(7), np.zeros(7), future_tsoil=np.zeros((7, F)))
    with pytest.raises(ValueError, match=r"mask: expected shape \(7,\)"):
        lag.set_mask([True])


def test_nan_inf_negative_precip_kelvin_give_statuses_not_crashes(model):
    path, meta, _ = model
    P = meta["past_steps"]
    c = Coupler(path, 4, "lagged")
    x = drivers(meta, P + 30, 4)
    x["tsoil"][P + 25, 0] = np.nan
    x["swc"][P + 25, 1] = np.inf
    x["precip"][P + 25, 2] = -2.0
    x["tsoil"][P + 25, 3] = 298.15
    outs = run(c, x, range(P + 26), 0, False)
    # lagged: the bad row is in the future window of the reported step, where only the future
    # variable (tsoil) is read: swc and precip there do not touch the reported step
    np.testing.assert_array_equal(outs[-1].status, [cp.MISSING, cp.ACTIVE, cp.ACTIVE, cp.IMPOSSIBLE])
    assert "4 column(s)" in c.diagnostic


@pytest.mark.slow
def test_benchmark_quick_run(repo_root, tmp_path):
    """benchmarks/bench_core.py --quick writes its JSON; agreement and state size are exact facts."""
    import os
    import subprocess
    import sys

    out = tmp_path / "bench.json"
    import rsoil_couple  # the subprocess imports the same package as this test (installed or source tree)

    pkg_parent = str(Path(rsoil_couple.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([pkg_parent, os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, str(repo_root / "benchmarks" / "bench_core.py"), "--quick", "--out", str(out)],
                   check=True, env=env, capture_output=True, text=True, timeout=900)
    res = json.loads(out.read_text())
    assert [r["ncol"] for r in res["rows"]] == [1, 16, 64]
    assert all(r["core_column_steps_per_s"] > 0 and 0 <= r["core_overhead_fraction"] < 1 for r in res["rows"])
    for a in res["agreement"]:
        assert a["max_rel_pybind11_vs_torchscript"] <= 1e-5 and a["max_rel_capi_vs_pybind11"] <= 1e-5
    assert res["memory"]["state_bytes_per_column"] == (336 + 0) * 3 * 8 + 4  # ring of past_steps rows + mask


def test_a_window_columns_value_does_not_depend_on_the_decomposition(tmp_path):
    """A window kg_lstm with chunk_size 7 (not a multiple of 64): 14 columns on one "rank" equal the same
    columns split 5 + 9 over two, bit for bit. Calls of exactly 7 rows gave rows in a vector loop's scalar
    tail other bits on AVX-512 (measured: forward over 7 rows vs the same rows reversed differed in 2-3 of 7
    outputs); the core pads every chunk call to a multiple of 64 rows and the load probe says so."""
    path = tmp_path / "kg.pt"
    meta = example_model(path, kind="kg_lstm", past_hours=24, future_hours=24, seed=0)
    P, F = meta["past_steps"], meta["future_steps"]
    x = drivers(meta, P + 12 + F, 14, seed=3)

    def rsoil(cols):
        c = Coupler(path, len(cols), "supplied", chunk_size=7)
        assert c.streaming_rows_independent      # the window load probe
        outs = run(c, {k: v[:, cols] for k, v in x.items()}, range(P + 12), F, True)
        return np.array([o.rsoil for o in outs[P - 1:]])

    one = rsoil(np.arange(14))
    two = np.concatenate([rsoil(np.arange(5)), rsoil(np.arange(5, 14))], axis=1)
    assert np.isfinite(one).all()
    np.testing.assert_array_equal(two, one)
    assert not Coupler(path, 14, "supplied", chunk_size=0).streaming_rows_independent   # not probed


def test_the_window_load_probe_finds_a_module_whose_rows_round_differently(scaled_q10, tmp_path):
    """rows_independent is False for a window module whose value depends on its row in a call."""
    from typing import List

    from rsoil_couple.core import capi

    class RowDependentQ10(torch.nn.Module):
        __annotations__ = {"past_var_names": List[str], "future_var_names": List[str]}

        def __init__(self):
            super().__init__()
            self.past_var_names = ["tsoil", "swc", "precip"]
            self.future_var_names = []
            self.register_buffer("site_scale", torch.tensor(1.0))

        def forward(self, past: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
            t = past[:, -1, 0]
            odd = (torch.arange(t.shape[0]) % 2).to(t.dtype)
            return self.site_scale * 0.25 * torch.pow(2.0, (t - 10.0) / 10.0) * (1.0 + 1e-6 * odd)

    meta = scaled_q10(tmp_path / "q10.pt")
    assert Coupler(tmp_path / "q10.pt", 5, "supplied", chunk_size=4).streaming_rows_independent
    path = tmp_path / "rowdep.pt"
    export_model(RowDependentQ10(), {k: v for k, v in meta.items() if k != "model_id"}, path)
    with pytest.warns(RuntimeWarning, match="streaming_rows_independent is False"):   # and says so
        assert not Coupler(path, 5, "supplied", chunk_size=4).streaming_rows_independent
    assert not capi.CapiCoupler(path, 5, chunk_size=4).rows_independent
