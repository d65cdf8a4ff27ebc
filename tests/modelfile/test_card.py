"""The model card is generated from a file's metadata (rsoil_couple.modelfile.card)."""
from __future__ import annotations

from rsoil_couple.modelfile.card import main, model_card


def test_card_lists_sites_envelope_scores_and_physics(model, capsys):
    path = model[0]
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Model card: ") and "## Envelope" in out and "| tsoil |" in out
    meta = {"model_id": "x", "model_kind": "kg_stream", "step_seconds": 1800, "future_hours": 0,
            "past_vars": [{"name": "tsoil", "units": "degC"}], "envelope": {"tsoil": {"min": -1.0, "max": 30.0}},
            "streaming": {"state_size": 17, "spinup_steps": 336, "missing": "hold"},
            "site_scale": {"value": 0.8, "method": "training_median", "sites": ["A", "B"]},
            "training": {"sites": ["A", "B"], "periods": [["2019-01-01", "2019-02-01"], ["2018-01-01", "2018-03-01"]],
                         "steps_s": {"A": 1800, "B": 3600}, "depths_m": {"A": 0.05, "B": None},
                         "test_metrics_per_site": {"A": {"n": 10, "nse": 0.5, "cc": 0.8, "kge": 0.6}},
                         "physics": {"q10": {"mean": 1.6, "sd": 0.03, "members": [1.6, 1.63]},
                                     "site_log_scales": {"A": [0.0, 0.0], "B": [1.0, 1.0]}}}}
    card = model_card(meta, "demo")
    assert "| B | 3600 | – | 2018-01-01 .. 2018-03-01 |" in card        # unknown depth shown as unknown
    assert "| A | 10 | 0.500 | 0.800 | 0.600 |" in card
    assert "- q10: 1.600 ± 0.030" in card and "B 2.72" in card and "training_median" in card
    assert "17 floats of state per column" in card
    assert "chosen on validation rows" not in card                      # files before the option: no line
    meta["training"]["hyperparameters"] = {"modulation_choice": "none", "refit": True}
    assert ("- the network's share λ chosen on validation rows by `none`; then every member trained again on "
            "training + validation rows (refit)") in model_card(meta, "demo")
    meta["training"]["hyperparameters"]["member_validation"] = "slide"
    assert ("by `none`; each member validated on its own block of the training rows (slide); then every member "
            "trained again on training + validation rows (refit, the members' median epochs)") in model_card(meta, "demo")


def test_card_sets_each_sites_score_beside_the_q10_fitted_on_that_site():
    meta = {"model_id": "x", "model_kind": "kg_stream", "step_seconds": 1800, "future_hours": 0,
            "past_vars": [{"name": "tsoil", "units": "degC"}],
            "training": {"scenario": "temporal",
                         "test_metrics_per_site": {"A": {"n": 10, "nse": 0.5, "cc": 0.8, "kge": 0.6},
                                                   "B": {"n": 5, "nse": 0.1, "cc": 0.4, "kge": 0.2},
                                                   "C": {"n": 7, "nse": 0.3, "cc": 0.5, "kge": 0.1}},
                         "q10_per_site": {"A": {"form": "q10_swc", "nse": 0.4, "cc": 0.7},
                                          "B": {"form": "q10", "nse": 0.2, "cc": 0.5}}}}
    card = model_card(meta, "demo")
    assert "| A | 10 | 0.500 | 0.800 | 0.600 | q10_swc | 0.400 | 0.700 |" in card
    assert "| C | 7 | 0.300 | 0.500 | 0.100 | | | |" in card               # no Q10 fit at C: blank, not counted
    assert "the ensemble's NSE is higher at 1 of 3 sites" in card
    del meta["training"]["q10_per_site"]                                    # files before the field: five columns
    assert "| A | 10 | 0.500 | 0.800 | 0.600 |\n" in model_card(meta, "demo") and "best Q10" not in model_card(meta, "demo")
