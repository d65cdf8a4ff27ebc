"""A model card from a model file's metadata: ``python -m rsoil_couple.modelfile.card MODEL [> card.md]``.

Everything in the card is read from the file's ``rsoil_meta.json`` (sites, periods, steps, depths,
envelope, per-site held-out metrics, learned physics with spreads, site scales, streaming state), so
the card cannot drift from the file it describes.
"""
from __future__ import annotations

import math
import sys


def _f(x, nd=3) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{nd}f}"


def model_card(meta: dict, name: str = "") -> str:
    """Markdown model card of ``meta`` (a model file's metadata)."""
    tr = meta.get("training", {})
    lines = [f"# Model card: {name or meta.get('model_id', '')}", "",
             f"- model_id `{meta.get('model_id', '')}`, kind `{meta['model_kind']}`, step {meta['step_seconds']} s, "
             f"drivers {', '.join(v['name'] + ' [' + v['units'] + ']' for v in meta['past_vars'])}, "
             f"future window {meta['future_hours']:g} h",
             f"- torch {meta.get('torch_version', '')}, rsoil_couple {meta.get('rsoil_couple_version', '')}"]
    hp = tr.get("hyperparameters", {})
    if "moisture_form" in hp:
        lines.append(f"- base: temperature `{hp.get('temperature_form')}`, moisture `{hp['moisture_form']}`, "
                     f"network modulation within x/÷ {hp.get('modulation_max')}, LSTM width {hp.get('hidden')}"
                     + (f", outside the training envelope the modulation {hp['envelope']}s" if "envelope" in hp else "")
                     + (f", the head reads the last {hp['recent_hours']:g} h of drivers" if hp.get("recent_hours") else ""))
    if "modulation_choice" in hp:
        lines.append(f"- the network's share λ chosen on validation rows by `{hp['modulation_choice']}`"
                     + ("; each member validated on its own block of the training rows (slide)"
                        if hp.get("member_validation") == "slide" else "")
                     + ("; then every member trained again on training + validation rows (refit"
                        + (", the members' median epochs)" if hp.get("member_validation") == "slide" else ")")
                        if hp.get("refit") else ""))
    st = meta.get("streaming")
    if st:
        lines.append(f"- streaming: {st['state_size']} floats of state per column, spin-up {st['spinup_steps']} steps, "
                     f"missing drivers: {st['missing']}")
    if "ensemble" in meta:
        e = meta["ensemble"]
        lines.append(f"- ensemble of {e['members']} members (seeds {e['seeds']}), output = member mean")
    sc = meta.get("site_scale")
    if sc:
        members = tr.get("physics", {}).get("member_site_scales")
        what = (f"factor {sc['value']:.4g} on the members' own scales {[round(x, 3) for x in members]}"
                if members else f"{sc['value']:.4g}")
        lines.append(f"- site scale: {what} ({sc['method']}; from {', '.join(sc.get('sites', []))}); "
                     "refit it at a new site with `rsoil-couple calibrate`")
    lines += ["", "## Training sites and periods", "", "Depths are those the training config gives (a site file that "
              "states its depth is checked against it).", "", "| site | step [s] | depth [m] | training period |",
              "|---|---|---|---|"]
    steps, depths = tr.get("steps_s", {}), tr.get("depths_m", {})
    for s, p in zip(tr.get("sites", []), tr.get("periods", [])):
        lines.append(f"| {s} | {steps.get(s, '')} | {_f(depths.get(s), 2)} | {p[0]} .. {p[1]} |")
    lines += ["", "## Envelope (training range of the drivers)", "", "| driver | min | max |", "|---|---|---|"]
    for v, r in meta.get("envelope", {}).items():
        lines.append(f"| {v} | {_f(r['min'])} | {_f(r['max'])} |")
    per = tr.get("test_metrics_per_site", {})
    if per:
        q = tr.get("q10_per_site", {})
        lines += ["", f"## Held-out scores per site (split `{tr.get('scenario', '')}`)", ""]
        if q:
            won = sum(s in q and m["nse"] > q[s]["nse"] for s, m in per.items())
            lines += ["Beside them, the best of the Q10 family fitted on that site's own training and validation rows "
                      f"and scored on the same rows: the ensemble's NSE is higher at {won} of {len(per)} sites.", "",
                      "| site | n | NSE | CC | KGE | best Q10 (own site) | its NSE | its CC |",
                      "|---|---|---|---|---|---|---|---|"]
        else:
            lines += ["| site | n | NSE | CC | KGE |", "|---|---|---|---|---|"]
        for s, m in per.items():
            row = f"| {s} | {m['n']} | {_f(m['nse'])} | {_f(m['cc'])} | {_f(m['kge'])} |"
            if q:
                b = q.get(s)
                row += f" {b['form']} | {_f(b['nse'])} | {_f(b['cc'])} |" if b else " | | |"
            lines.append(row)
    ph = tr.get("physics")
    if ph:
        lines += ["", "## Learned physics (mean ± sd over members)", ""]
        labels = {"q10": "q10 (Rsoil ratio 15 vs 5 degC)" if "e0_K" in ph else "q10",
                  "e0_K": "Lloyd-Taylor E0 [K]", "q10_0_10C": "q10 over 0-10 degC", "q10_20_30C": "q10 over 20-30 degC",
                  "moisture_exponent": "SWC exponent c", "anomaly_share": "diel-anomaly share w of the base temperature",
                  "half_saturation_10C": "DAMM half-saturation K at 10 degC (relative to S(θ = 0.1) = 1)",
                  "half_saturation_q10": "ratio of K over 10 degC (K rises with temperature)",
                  "modulation_weight": "share λ of the network's modulation kept (chosen on validation rows)"}
        for k in [k for k, v in ph.items() if isinstance(v, dict) and "mean" in v]:
            mem = [round(x, 3) for x in ph[k]["members"]]
            lines.append(f"- {labels.get(k, k)}: {ph[k]['mean']:.3f} ± {ph[k]['sd']:.3f} (members {mem})")
        ls = ph.get("site_log_scales", {})
        if ls:
            lines.append("- site scales (rate at 10 °C and θ = 0.1 m3 m-3, µmol m-2 s-1; mean over members): " + ", ".join(
                f"{s} {math.exp(sum(v) / len(v)):.3g}" for s, v in ls.items()))
    fb = meta.get("fallback_q10", {})
    if fb:
        lines += ["", f"Fallback Q10: form `{fb.get('form')}`, parameters {fb.get('params')} ({fb.get('fitted_on', '')})."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the card of the model file (or registered name) ``argv[0]``."""
    from .export import load_model
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m rsoil_couple.modelfile.card MODEL", file=sys.stderr)
        return 2
    _, meta = load_model(argv[0])
    print(model_card(meta, argv[0]), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
