"""Streaming training (truncated BPTT), `rsoil-couple train` for kg_stream, and the CI-sized benchmarks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rsoil_couple.config import load_run_config
from rsoil_couple.modelfile.export import export_model, load_model
from rsoil_couple.models import KGStream
from rsoil_couple.training.run import synthetic_sites
from rsoil_couple.training.stream import predict_sequence, prepare_site, train_stream
from rsoil_couple.training.stream_run import split_masks, stream_train_run


@pytest.fixture(autouse=True)
def one_thread():
    """Training runs with run.threads = 1 (as `rsoil-couple train`); restore the process setting after."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


SAMPLE = Path(__file__).resolve().parents[2] / "rsoil_couple" / "sample_data" / "US-Hn1_2019_demo_30min.csv.gz"


def _config(tmp_path: Path, members: int = 1, hidden: int = 0, extra: str = "") -> Path:
    p = tmp_path / "run.toml"
    p.write_text(f"""
[run]
name = "stream_test"
seed = 0
[data]
sites = [{{ path = "{SAMPLE.as_posix()}", name = "US-Hn1", depth_m = 0.15 }}]
past_vars = ["tsoil", "swc", "precip"]
future_vars = []
past_hours = 168
future_hours = 0
[split]
scenario = "temporal"
fractions = [0.6, 0.1, 0.3]
[model]
kind = "kg_stream"
hidden = {hidden}
modulation_max = 10.0
[train]
epochs = 3
lr = 0.003
patience = 3
members = {members}
{extra}
""")
    return p


def test_training_learns_and_the_vectorised_path_equals_the_scripted_run():
    site = synthetic_sites(days=30)[0]
    torch.manual_seed(0)
    m = KGStream(["tsoil", "swc", "precip"], [], 336, 0, 1800, hidden=4)
    ss = prepare_site(m, site)
    n = len(site.time)
    tr = np.arange(n) < 0.8 * n
    h = train_stream(m, [ss], [tr], [~tr], epochs=4, seed=0, progress=False)
    assert len(h["val_loss"]) >= 1 and np.isfinite(h["val_loss"]).all()
    m.site_scale.fill_(float(np.exp(h["log_scales"][ss.name])))
    fast = predict_sequence(m, ss)
    sm = torch.jit.script(m)
    with torch.no_grad():
        slow, _ = sm.run(sm.initial_state(1), torch.from_numpy(ss.drivers).unsqueeze(0))
    np.testing.assert_allclose(fast, slow[0].numpy(), rtol=2e-4, atol=1e-6)
    # better than the physical base alone would be is not guaranteed in 4 epochs; the fit must beat a constant
    y = ss.y.numpy()
    ok = np.isfinite(y) & ss.spun_up.numpy()
    assert np.mean((fast[ok] - y[ok]) ** 2) < np.var(y[ok])


@pytest.mark.parametrize("recent_hours", [0.0, 5.0])
def test_numpy_features_equal_the_step_by_step_features(recent_hours):
    """Also the delay line's features (model.recent_hours): `recent_sequence` over the record == the state's line."""
    from rsoil_couple.training.stream import feature_sequence_np
    site = synthetic_sites(days=12)[0]
    m = KGStream(["tsoil", "swc", "precip"], [], 336, 0, 1800, hidden=0, recent_hours=recent_hours)
    x = np.stack([site.drivers[v] for v in ("tsoil", "swc", "precip")], 1).astype(np.float32)
    x[5:9, 1] = np.nan          # held values
    x[0:3, 0] = np.nan          # tsoil unseen at the start
    f_np, b_np = feature_sequence_np(x, 1800, m)
    f_t, b_t = m.feature_sequence(torch.from_numpy(x).unsqueeze(0), 1800)
    np.testing.assert_allclose(f_np.numpy(), f_t[0].numpy(), rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(b_np.numpy(), b_t[0].numpy(), rtol=1e-4, atol=2e-5)
    assert f_np.shape[1] == 12 + 3 * m.recent_steps and m.recent_steps == int(2 * recent_hours)


def test_split_masks_are_disjoint_and_in_time_order():
    site = synthetic_sites(days=30)[0]
    from rsoil_couple.config import SplitSection
    tr, va, te = split_masks(site, SplitSection(scenario="temporal", fractions=[0.6, 0.2, 0.2]), 0)
    assert not (tr & va).any() and not (va & te).any() and (tr | va | te).all()
    assert np.flatnonzero(tr).max() < np.flatnonzero(va).min() < np.flatnonzero(te).min()
    tr, va, te = split_masks(site, SplitSection(scenario="extrapolation", test_start="2019-06-20",
                                                test_end="2019-06-25", val_fraction=0.1), 0)
    t = site.time
    assert te.any() and (t[te] >= np.datetime64("2019-06-20")).all()
    assert t[tr | va].max() < np.datetime64("2019-06-20")   # nothing after the test window trains


def test_validation_in_random_blocks_of_days_spans_the_training_period():
    from rsoil_couple.config import SplitSection
    site = synthetic_sites(days=60)[0]
    split = SplitSection(scenario="temporal", fractions=[0.54, 0.06, 0.4], val_block_days=3.0)
    tr, va, te = split_masks(site, split, 0)
    n = len(site.time)
    assert not (tr & va).any() and not ((tr | va) & te).any() and (tr | va | te).all()
    assert np.flatnonzero(te).min() == int(0.6 * n)               # the test is the last 40 %, as before
    day = ((site.time - site.time[0]) // np.timedelta64(3 * 86400, "s")).astype(int)
    for b in np.unique(day[va]):                                     # whole 3-day blocks
        assert va[day == b].all()
    assert len(np.unique(day[va])) == round(0.1 * len(np.unique(day[:int(0.6 * n)])))   # 10 % of the blocks
    again = split_masks(site, split, 0)[1]
    other = split_masks(site, split, 1)[1]
    assert np.array_equal(va, again) and not np.array_equal(va, other)   # seeded
    assert np.flatnonzero(va).min() < np.flatnonzero(tr).max()           # not only the last part


def test_train_exports_a_streaming_file_with_physics_and_scale(tmp_path):
    cfg = load_run_config(_config(tmp_path, members=2))
    res = stream_train_run(cfg, progress=False)
    meta = export_model(res.model, res.meta, tmp_path / "m.pt")
    module, meta2 = load_model(tmp_path / "m.pt")
    assert meta2["streaming"]["state_size"] == int(module.state_size) == 2 * 17
    assert meta2["model_kind"] == "kg_stream" and meta2["future_vars"] == []
    assert meta2["site_scale"]["method"] == "trained" and meta2["site_scale"]["value"] == float(module.site_scale)
    ph = meta2["training"]["physics"]
    assert len(ph["q10"]["members"]) == 2 and 1.0 < ph["q10"]["mean"] < 5.0
    assert meta2["ensemble"]["members"] == 2 and meta["test_metrics"]["n"] > 100
    q, site, (tr, va, te) = meta2["training"]["q10_per_site"], res.prepared[0], res.masks[0]
    assert set(q) == set(meta2["training"]["test_metrics_per_site"]) == {site.name}
    from rsoil_couple.baselines import q10
    from rsoil_couple.metrics import nse
    d, y = site.drivers.astype(np.float64), site.y.numpy().astype(np.float64)   # the same form refitted by hand
    ok = np.isfinite(y) & np.isfinite(d[:, :2]).all(1)       # tsoil, swc (past_vars above)
    fit, ev = (tr | va) & ok, te & ok
    swc = None if q[site.name]["form"] == "q10" else d[:, 1]
    f = q10.fit(q[site.name]["form"], d[fit, 0], None if swc is None else swc[fit], y[fit])
    assert q[site.name]["nse"] == pytest.approx(nse(y[ev], f.predict(d[ev, 0], None if swc is None else swc[ev])))
    x = torch.from_numpy(res.prepared[0].drivers).unsqueeze(0)
    with torch.no_grad():
        out, _ = module.run(module.initial_state(1), x)
    ok = np.isfinite(out.numpy()[0])
    assert ok.all() and (out.numpy()[0] > 0).all()


@pytest.mark.parametrize("choose", ["", "choose_recent_hours = [0.0, 3.0]", "choose_hidden = [0, 2]"])
def test_ci_sized_benchmark_own_split(tmp_path, shared_data, choose):
    """Also with the delay line's length chosen on validation rows (choose_recent_hours), and the LSTM's width
    by the members' cross-validation losses (choose_hidden, with member_validation = "slide")."""
    from rsoil_couple.training.stream_bench import cross_validation_loss, run_benchmark
    p = tmp_path / "bench.toml"
    p.write_text(f"""
[benchmark]
{choose}
kind = "own_split"
sites = ["US-Hn1_2019"]
past_vars = ["tsoil", "swc", "precip"]
members = 1
[model]
kind = "kg_stream"
hidden = 0
modulation_max = 10.0
[train]
epochs = 2
patience = 2
""" + ('member_validation = "slide"\n' if "hidden" in choose else ""))
    res = run_benchmark(p, tmp_path / "out", progress=False)
    r = res["sites"]["US-Hn1"]
    assert r["n"] > 500 and np.isfinite(r["nse"]) and r["q10"]["best"] in ("q10", "q10_swc", "logistic_power")
    assert (tmp_path / "out" / "own_split.png").stat().st_size > 5000
    assert json.loads((tmp_path / "out" / "benchmark.json").read_text())["summary"]["n_beats"] in (0, 1)
    if "hidden" in choose:   # the width with the lowest cross-validation loss, both recorded
        cv = r["hidden_cross_validation_loss"]
        assert set(cv) == {"0", "2"} and r["hidden_chosen"] == int(min(cv, key=cv.get))
        assert cross_validation_loss([{"refit": {"first_pass_val_loss": [3.0, 1.0]}}, {"val_loss": [2.0]}]) == 1.5
        p.write_text(p.read_text().replace('member_validation = "slide"', ""))
        with pytest.raises(ValueError, match="choose_hidden compares the members' cross-validation"):
            run_benchmark(p, tmp_path / "out2", progress=False)
    elif choose:   # the length with the best validation NSE, both recorded
        v = r["recent_hours_validation_nse"]
        assert set(v) == {"0", "3"} and all(np.isfinite(x) for x in v.values())
        assert r["recent_hours_chosen"] == float(max(v, key=v.get))
    else:
        assert "recent_hours_chosen" not in r


def _untrained_on_synthetic(seed: int):
    """An untrained hidden-0 kg_stream on a 20-day synthetic site: (model, prepared site, spun-up rows)."""
    torch.manual_seed(seed)
    site = synthetic_sites(days=20)[0]
    m = KGStream(["tsoil", "swc", "precip"], [], 48, 0, site.step_seconds, hidden=0)
    ss = prepare_site(m, site)
    m.set_feature_normalization(ss.feats[ss.spun_up])
    return m, ss, np.asarray(ss.spun_up.numpy(), bool)


def _with_target(ss, y: np.ndarray):
    """The prepared site ``ss`` with the target ``y``."""
    return type(ss)(ss.name, ss.step_seconds, ss.time, ss.feats, ss.base_in,
                    torch.from_numpy(y.astype(np.float32)), ss.spun_up, ss.drivers, ss.past_vars)


def test_a_modulation_that_hurts_on_validation_is_shrunk_to_the_physics():
    from rsoil_couple.training.stream import choose_modulation_weight
    m, ss, mask = _untrained_on_synthetic(0)
    log_s = torch.zeros(1)
    with torch.no_grad():     # the target IS the base, the network a large random modulation
        ss_true = predict_sequence(m, ss, 0.0)
        for p in m.head.parameters():
            p.normal_(0, 1.0)
    fake = _with_target(ss, ss_true)
    assert choose_modulation_weight(m, [fake], [mask], log_s, [1.0]) == 0.0
    assert float(m.modulation_weight) == 0.0
    assert np.allclose(predict_sequence(m, fake, 0.0), ss_true, rtol=1e-5)


def test_one_se_rule_keeps_a_clear_network_and_drops_one_the_days_cannot_tell_apart():
    from rsoil_couple.training.stream import choose_modulation_weight
    m, ss, mask = _untrained_on_synthetic(1)
    with torch.no_grad():
        for p in m.head.parameters():
            p.normal_(0, 1.0)
        m.modulation_weight.fill_(1.0)
        full = predict_sequence(m, ss, 0.0)
        m.modulation_weight.fill_(0.25)
        quarter = predict_sequence(m, ss, 0.0)
        m.modulation_weight.fill_(0.0)
        base = predict_sequence(m, ss, 0.0)

    # the observations ARE the full model: every day says so, both rules keep the whole network
    for rule in ("one_se", "min"):
        assert choose_modulation_weight(m, [_with_target(ss, full)], [mask], torch.zeros(1), [1.0], rule) == 1.0
    # a quarter of the network, buried in noise 20x its effect: the days cannot tell it from the base
    rng = np.random.default_rng(0)
    sd = 20.0 * float(np.sqrt(np.mean((quarter[mask] - base[mask]) ** 2)))
    noisy = _with_target(ss, quarter + rng.normal(0.0, sd, quarter.shape))
    lam_min = choose_modulation_weight(m, [noisy], [mask], torch.zeros(1), [1.0], "min")
    lam_se = choose_modulation_weight(m, [noisy], [mask], torch.zeros(1), [1.0], "one_se")
    assert lam_se == 0.0 and float(m.modulation_weight) == 0.0
    assert lam_min > lam_se
    # one block of all the validation rows (block_hours longer than the 20-day record): no standard error,
    # so "one_se" is "min"
    one = choose_modulation_weight(m, [noisy], [mask], torch.zeros(1), [1.0], "one_se", block_hours=24.0 * 40)
    assert one == lam_min
    with pytest.raises(ValueError, match="modulation_choice"):
        choose_modulation_weight(m, [noisy], [mask], torch.zeros(1), [1.0], "median")
    # "none": no choice, the whole network even where validation says it hurts (the base is the truth)
    assert choose_modulation_weight(m, [_with_target(ss, base)], [mask], torch.zeros(1), [1.0], "none") == 1.0
    assert float(m.modulation_weight) == 1.0
    assert choose_modulation_weight(m, [_with_target(ss, base)], [mask], torch.zeros(1), [1.0], "min") == 0.0


def test_refit_trains_each_member_again_on_training_and_validation_rows(tmp_path):
    """train.refit: the members are trained a second time on training + validation rows, for the epochs and
    with the λ the validated first pass chose; the file's envelope and periods include the validation rows."""
    from rsoil_couple.training.stream_run import load_stream_sites, train_members

    plain = load_run_config(_config(tmp_path, members=2, extra='modulation_choice = "min"'))
    refit = load_run_config(_config(tmp_path, members=2, extra='modulation_choice = "min"\nrefit = true'))
    m0, h0, _, _ = train_members(plain, load_stream_sites(plain), 1800, False)
    res = stream_train_run(refit, progress=False)
    tr, va, _ = res.masks[0]
    for k, (first, h) in enumerate(zip(h0, res.histories)):
        # the first pass of the refit run is the plain run (same seed, same rows): its choices are reused
        assert h["refit"]["first_pass_val_loss"] == first["val_loss"]
        assert h["refit"]["epochs"] == int(np.argmin(first["val_loss"])) + 1 == h["epochs"]
        assert h["refit"]["modulation_weight"] == float(m0[k].modulation_weight) == float(res.members[k].modulation_weight)
    # the refit members were fitted on more rows: their weights differ from the plain run's
    assert not torch.equal(res.members[0].head[-1].weight, m0[0].head[-1].weight)
    meta = res.meta
    assert meta["training"]["hyperparameters"]["refit"] is True
    both = tr | va
    t = res.prepared[0].time
    assert meta["training"]["periods"][0] == [str(t[both][0])[:19], str(t[both][-1])[:19]]
    assert str(t[tr][-1])[:19] < meta["training"]["periods"][0][1]      # the validation days are in it
    y = res.prepared[0].y.numpy()
    assert meta["training"]["n_train"] == int(np.isfinite(y[both]).sum())
    assert meta["training"]["n_val"] == int(np.isfinite(y[va]).sum()) > 0
    # a window kind has no refit: refused by name
    bad = _config(tmp_path, extra="refit = true").read_text().replace('kind = "kg_stream"', 'kind = "lstm"')
    (tmp_path / "bad.toml").write_text(bad.replace("hidden = 0", "hidden = 4"))
    with pytest.raises(ValueError, match="train.refit = true applies to streaming kinds"):
        load_run_config(tmp_path / "bad.toml")


def test_member_masks_slide_a_validation_block_from_the_first_training_row_to_the_shared_block():
    """member_masks: member k of n validates on a contiguous block (in the order of the training + validation
    rows, skipping rows of neither) of the shared block's size, at k/(n-1) of the way from the first row;
    the last member's block is the shared one; each member trains on the rest; test rows never move."""
    from rsoil_couple.training.stream_run import member_masks

    n = 40
    tr = np.zeros(n, bool)
    tr[2:30] = True
    tr[10:12] = False                   # rows of no split (a gap): never validated, never trained on
    va = np.zeros(n, bool)
    va[30:34] = True
    te = np.zeros(n, bool)
    te[34:] = True
    pool = np.flatnonzero(tr | va)      # 30 rows
    for k in range(5):
        (mtr, mva, mte), = member_masks([(tr, va, te)], k, 5)
        start = round(k * (len(pool) - 4) / 4)
        assert np.array_equal(np.flatnonzero(mva), pool[start:start + 4])
        assert np.array_equal(mtr | mva, tr | va) and not (mtr & mva).any() and mte is te
    (ltr, lva, _), = member_masks([(tr, va, te)], 4, 5)
    assert np.array_equal(lva, va) and np.array_equal(ltr, tr)
    (ftr, fva, _), = member_masks([(tr, va, te)], 0, 5)
    assert np.flatnonzero(fva).tolist() == [2, 3, 4, 5] and ftr[30:34].all()
    # one member, or no validation rows: the masks as given
    assert member_masks([(tr, va, te)], 0, 1)[0][1] is va
    assert member_masks([(tr, np.zeros(n, bool), te)], 1, 3)[0][0] is tr


def test_member_validation_slide_trains_members_on_each_others_validation_rows(tmp_path):
    """train.member_validation = "slide": every member's history comes from its own validation block, the
    file counts validation rows as training rows (envelope, periods, n_train, fallback Q10) and records the
    rule; with refit the members are trained again with one choice; a window kind is refused by name."""
    from rsoil_couple.modelfile.card import model_card
    from rsoil_couple.training.stream_run import learnt_masks, load_stream_sites, train_members

    cfg = load_run_config(_config(tmp_path, members=3, extra='member_validation = "slide"'))
    res = stream_train_run(cfg, progress=False)
    shared = load_run_config(_config(tmp_path, members=3))
    plain = stream_train_run(shared, progress=False)
    # the last member validated on the shared block: the same run as the shared rule's last member
    assert res.histories[2]["val_loss"] == plain.histories[2]["val_loss"]
    assert res.histories[0]["val_loss"] != plain.histories[0]["val_loss"]
    tr, va, _ = res.masks[0]
    y = res.prepared[0].y.numpy()
    meta = res.meta
    assert meta["training"]["hyperparameters"]["member_validation"] == "slide"
    assert meta["training"]["n_train"] == int(np.isfinite(y[tr | va]).sum())
    assert plain.meta["training"]["n_train"] == int(np.isfinite(y[tr]).sum()) < meta["training"]["n_train"]
    assert learnt_masks(shared, res.masks) is res.masks
    assert meta["fallback_q10"] != plain.meta["fallback_q10"]          # fitted on the rows the members learnt
    assert "(slide)" in model_card(meta) and "(slide)" not in model_card(plain.meta)
    # with refit: cross-validation, then refit; every member again on all rows for the members' upper median
    # of chosen epochs and λ (the first pass is the slide run above: same seeds, same blocks)
    both = stream_train_run(load_run_config(_config(tmp_path, members=3, extra='member_validation = "slide"\n'
                                                    'modulation_choice = "min"\nrefit = true')), progress=False)
    first = load_run_config(_config(tmp_path, members=3, extra='member_validation = "slide"\nmodulation_choice = "min"'))
    m1, h1, _, _ = train_members(first, load_stream_sites(first), 1800, False)
    epochs = sorted(int(np.argmin(h["val_loss"])) + 1 for h in h1)[1]
    lam = sorted(float(m.modulation_weight) for m in m1)[1]
    for h, m, h_first in zip(both.histories, both.members, h1):
        assert h["refit"]["first_pass_val_loss"] == h_first["val_loss"]
        assert h["refit"]["epochs"] == epochs == h["epochs"] and float(m.modulation_weight) == lam
    assert both.meta["training"]["n_train"] == meta["training"]["n_train"]
    with pytest.raises(ValueError, match=r"train.member_validation = 'sliding'; expected one of \['shared', 'slide'\]"):
        load_run_config(_config(tmp_path, members=3, extra='member_validation = "sliding"'))
    bad = _config(tmp_path, extra='member_validation = "slide"').read_text().replace('kind = "kg_stream"', 'kind = "lstm"')
    (tmp_path / "bad.toml").write_text(bad.replace("hidden = 0", "hidden = 4"))
    with pytest.raises(ValueError, match="member_validation = 'slide' applies to streaming kinds"):
        load_run_config(tmp_path / "bad.toml")


def test_site_weighting_sites_gives_every_site_the_same_total_weight():
    """train.site_weighting = "sites": in the joint stage a site's weight times its usable rows is the same
    for every site (an average site's), whatever its record length; "rows" (default) keeps the per-row
    weights, so a site with 4x the rows counts 4x; train.site_normalization divides a site's squared error
    by its variance (default) or its squared mean; every combination trains."""
    from rsoil_couple.training.stream import _equal_site_weights, _rows, _site_weights

    long_site, short_site = synthetic_sites(days=40)[0], synthetic_sites(days=12, seed=1)[0]
    m = KGStream(["tsoil", "swc", "precip"], [], 336, 0, 1800, hidden=0)
    sites = [prepare_site(m, long_site), prepare_site(m, short_site)]
    sites[1].name = "SHORT"
    masks = [np.ones(len(ss.y), bool) for ss in sites]
    n = [len(_rows(ss, mk)) for ss, mk in zip(sites, masks)]
    assert n[0] > 3 * n[1] > 0
    w = _site_weights(sites, masks)
    y = [ss.y.numpy() for ss in sites]
    np.testing.assert_allclose(w, [1.0 / float(np.nanvar(v)) for v in y], rtol=1e-12)          # "variance" (default)
    np.testing.assert_allclose(_site_weights(sites, masks, "mean"), [1.0 / float(np.nanmean(v)) ** 2 for v in y], rtol=1e-12)
    with pytest.raises(ValueError, match="train.site_normalization = 'sd'"):
        _site_weights(sites, masks, "sd")
    eq = _equal_site_weights(sites, masks, w)
    np.testing.assert_allclose([e * k / wi for e, k, wi in zip(eq, n, w)], [np.mean(n)] * 2, rtol=1e-12)
    for how, norm in (("rows", "variance"), ("sites", "mean")):
        torch.manual_seed(0)
        h = train_stream(KGStream(["tsoil", "swc", "precip"], [], 336, 0, 1800, hidden=0), sites, masks,
                         epochs=2, seed=0, progress=False, site_weighting=how, site_normalization=norm)
        assert np.isfinite(h["val_loss"]).all()
    with pytest.raises(ValueError, match="train.site_weighting = 'equal'"):
        train_stream(m, sites, masks, epochs=1, progress=False, site_weighting="equal")


def test_base_in_joint_frozen_keeps_the_fitted_physics_while_the_network_trains():
    """train.base_in_joint = "frozen": after the base fit only the network and the site scales train, so the
    physics parameters end where `fit_base` left them; "trained" (default) moves them."""
    from rsoil_couple.training.stream import PHYSICS_PARAMS, fit_base

    site = synthetic_sites(days=30)[0]
    n = len(site.time)
    tr = np.arange(n) < 0.8 * n
    ends = {}
    for how in ("frozen", "trained"):
        torch.manual_seed(0)
        m = KGStream(["tsoil", "swc", "precip"], [], 336, 0, 1800, hidden=0)
        ss = prepare_site(m, site)
        m.set_feature_normalization(ss.feats[torch.from_numpy(tr) & ss.spun_up])
        probe = KGStream(["tsoil", "swc", "precip"], [], 336, 0, 1800, hidden=0)
        probe.load_state_dict(m.state_dict())
        fit_base(probe, [ss], [tr], seed=0)                      # what the base fit gives from this start
        net0 = m.head[0].weight.detach().clone()
        train_stream(m, [ss], [tr], [~tr], epochs=3, seed=0, progress=False, base_in_joint=how)
        ends[how] = [float(getattr(m, k).detach()) - float(getattr(probe, k).detach()) for k in PHYSICS_PARAMS]
        assert not torch.equal(m.head[0].weight.detach(), net0)   # the network trained
    assert max(abs(d) for d in ends["frozen"]) == 0.0
    assert max(abs(d) for d in ends["trained"]) > 0.0
    with pytest.raises(ValueError, match="train.base_in_joint = 'fixed'"):
        train_stream(m, [ss], [tr], epochs=1, progress=False, base_in_joint="fixed")


@pytest.mark.parametrize("recent_hours, hidden", [(0.0, 0), (6.0, 0), (0.0, 4)])
def test_the_window_structure_trains_exports_and_runs_the_same_in_the_core(tmp_path, recent_hours, hidden):
    """model.envelope = "clamp", moisture_form = "none", learn_q10 = false (the *_window_like_q10fixed
    benchmark configs, hidden 0 here): Q10 stays 2 through training, and the exported file gives the same
    numbers prepared for offline runs (chunked heads + frozen) and stepped by the C++ core, also outside
    the training envelope (where the clamped modulation stays whole). With recent_hours = 6 (the
    *_recent24 configs' delay line, shorter) the state carries the line through the same paths; with hidden = 4
    an LSTM carried step to step (benchmark d's, smaller) does, and a restart halfway is bit for bit."""
    from rsoil_couple import Coupler
    from rsoil_couple.core import stream_fast

    extra = ('temperature_form = "q10"\nmoisture_form = "none"\nsees_level = true\nenvelope = "clamp"\n'
             f'learn_q10 = false\nrecent_hours = {recent_hours}\n')
    p = _config(tmp_path, members=2, hidden=hidden)
    p.write_text(p.read_text().replace("modulation_max = 10.0\n", "modulation_max = 10.0\n" + extra))
    cfg = load_run_config(p)
    res = stream_train_run(cfg, progress=False)
    meta = export_model(res.model, res.meta, tmp_path / "wl.pt")
    module, meta = load_model(tmp_path / "wl.pt")
    hp = meta["training"]["hyperparameters"]
    assert (hp["envelope"], hp["moisture_form"], hp["learn_q10"], hp["recent_hours"]) == ("clamp", "none", False,
                                                                                          recent_hours)
    assert meta["streaming"]["state_size"] == 2 * (17 + 3 * int(2 * recent_hours) + 2 * hidden)   # 2 members, 30 min
    assert meta["training"]["physics"]["q10"]["members"] == pytest.approx([2.0, 2.0])
    fast, applied = stream_fast.prepared_module(tmp_path / "wl.pt", module, meta, probe_steps=40, rows=64)
    assert ("chunked_heads" in applied) == (hidden == 0) and applied[-1] == "frozen"   # an LSTM's head is not chunked
    x = stream_fast.probe_drivers(meta, 64, int(meta["streaming"]["spinup_steps"]) + 40, seed=3)
    with torch.inference_mode():
        ya, sa = module.run(module.initial_state(64), x)
        yb, sb = fast.run(fast.initial_state(64), x)
    assert torch.equal(ya, yb) and torch.equal(sa, sb)
    c = Coupler(tmp_path / "wl.pt", 64, "supplied", chunk_size=64)
    xs = x.numpy().astype("float64")
    half = x.shape[1] // 2
    for t in range(x.shape[1]):
        r = c.step(xs[:, t, 0], xs[:, t, 1], xs[:, t, 2])
        if t == half:
            restarted = Coupler(tmp_path / "wl.pt", 64, "supplied", chunk_size=64)
            restarted.set_state(c.get_state())
        elif t > half:
            r2 = restarted.step(xs[:, t, 0], xs[:, t, 1], xs[:, t, 2])
            np.testing.assert_array_equal(r2.rsoil, r.rsoil)
    assert restarted.get_state() == c.get_state()
    net = (r.status == 0) | (r.status == 1)          # ACTIVE, EXTRAPOLATING: the model's own value
    assert net.sum() > 32 and (r.status == 1).any()   # some columns outside the envelope
    np.testing.assert_array_equal(r.rsoil[net], ya[:, -1].double().numpy()[net])


def test_a_delay_line_or_an_lstm_refuses_a_site_at_another_step():
    from rsoil_couple.training.stream import prepare_site
    site = synthetic_sites(days=10)[0]
    assert site.step_seconds == 1800
    with pytest.raises(ValueError, match=r"1800 s step .* 3600 s and model.recent_hours"):
        prepare_site(KGStream(["tsoil", "swc", "precip"], [], 168, 0, 3600, hidden=0, recent_hours=6.0), site)
    with pytest.raises(ValueError, match=r"model.hidden \(an LSTM\)"):
        prepare_site(KGStream(["tsoil", "swc", "precip"], [], 168, 0, 3600, hidden=4), site)
    prepare_site(KGStream(["tsoil", "swc", "precip"], [], 168, 0, 3600, hidden=0), site)   # hours: any step


def test_rsoil_couple_train_prints_each_sites_score_beside_its_own_q10(tmp_path, capsys):
    from rsoil_couple.training.stream_run import report_stream_run
    assert report_stream_run(load_run_config(_config(tmp_path)), str(tmp_path / "m.pt")) == 0
    _, meta = load_model(tmp_path / "m.pt")
    q = meta["training"]["q10_per_site"]["US-Hn1"]
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("test US-Hn1:"))
    assert line.endswith(f"| best Q10 fitted on this site ({q['form']}): nse {q['nse']:.3f}")
