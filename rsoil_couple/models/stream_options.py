"""The words kg_stream's options take (``[model]`` forms and envelope, ``[train]`` choices), in one place for
the model, the config loader, the trainer and ``calibrate``.
"""
from __future__ import annotations

#: the temperature response of the base: "q10" (exponential) or "lloyd_taylor" (Lloyd & Taylor 1994,
#: exp(E0 (1/(10 - T0) - 1/(T - T0))) with T0 = -46.02 degC: the sensitivity grows toward the cold)
TEMPERATURE_FORMS = ("lloyd_taylor", "q10")
#: the moisture factor of the base: "power" ((θ/θ_ref)^c, θ held inside the training range), "damm" (substrate
#: limitation S/(K(T)+S) after Davidson et al. 2012's DAMM, S = (θ/θ_ref)^c, half-saturation K rising with
#: temperature: the apparent sensitivity falls as soil dries) or "none" (the network alone carries soil water)
MOISTURE_FORMS = ("power", "damm", "none")
#: the network's modulation outside the training envelope (``model.envelope``): "fade" (`KGStream.trust`: the
#: base decides there) or "clamp" (whole, on features held at the edge of training, as in the window kg_lstm)
ENVELOPE_RULES = ("fade", "clamp")
#: the shares λ of the network's modulation tried after training (on validation rows) and by
#: ``rsoil-couple calibrate --fit-modulation`` (on a new site's calibration rows); 0 = the base alone
MODULATION_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: how training picks λ on validation rows (``train.modulation_choice``): the smallest share within one
#: standard error of the best (over days), the best (`rsoil_couple.training.stream.choose_modulation_weight`),
#: or none: the whole network (λ = 1) whatever the validation rows say
MODULATION_RULES = ("one_se", "min", "none")
#: how the joint training stage weighs several sites (``train.site_weighting``): "rows" (a site counts in
#: proportion to its usable rows) or "sites" (every site counts equally; `rsoil_couple.training.stream`)
SITE_WEIGHTINGS = ("rows", "sites")
#: whether the base's parameters keep training with the network after the base fit (``train.base_in_joint``)
BASE_IN_JOINT = ("trained", "frozen")
#: what each site's squared error is divided by in training (``train.site_normalization``): its variance or
#: its squared mean
SITE_NORMALIZATIONS = ("variance", "mean")
#: which rows each ensemble member validates on (``train.member_validation``): the same for all, or a block
#: sliding from the start of the training rows (first member) to their end (last member)
MEMBER_VALIDATIONS = ("shared", "slide")
#: the ``[train]`` options of kg_stream that take one of a few words, and those words
TRAIN_CHOICES = {"modulation_choice": MODULATION_RULES, "site_weighting": SITE_WEIGHTINGS,
                 "base_in_joint": BASE_IN_JOINT, "site_normalization": SITE_NORMALIZATIONS,
                 "member_validation": MEMBER_VALIDATIONS}


def check_train_choice(field: str, value: str) -> None:
    """ValueError naming ``train.<field>`` unless ``value`` is one of `TRAIN_CHOICES` [field] (the config
    loader and the trainer check with this one rule).
    """
    if value not in TRAIN_CHOICES[field]:
        raise ValueError(f"train.{field} = {value!r}; expected one of {list(TRAIN_CHOICES[field])}")
