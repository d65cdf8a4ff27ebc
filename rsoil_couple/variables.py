"""The one table of rsoil_couple's shared rules: variables, units, ranges, statuses, policies, Q10 forms.

Everything else imports these names. The C++ core is generated from or tested against this module
(``python3 rsoil_couple/variables.py --cpp FILE`` writes the C++ header the core compiles;
``tests/test_variables.py`` ties the C header, the compiled core and the Fortran module to it). This
module imports nothing but the standard library so that CMake can run it as a script at build time.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "VarSpec", "CANONICAL_VARS", "STATUS_ATTRS", "status_attrs", "DRIVERS", "DRIVER_UNITS", "BOUNDARY_UNITS", "OUTPUT_VARS",
    "GC_PER_UMOL_CO2", "STATUS_NAMES", "STATUS_DESCRIPTIONS", "POLICIES", "Q10_FORMS",
    "Q10_SWC_UNITS", "Q10_TREF_C", "Q10_REF_MIN", "CALL_ROW_MULTIPLE", "padded_call_rows", "RSOIL_UNITS",
    "SITE_SCALE_METHODS", "cpp_header",
]

#: 1 µmol CO2 m-2 s-1 = 12.011e-6 gC m-2 s-1 (DESIGN.md "Units at the edges").
GC_PER_UMOL_CO2 = 12.011e-6


@dataclass(frozen=True)
class VarSpec:
    """One canonical variable: its unit, CF names and the range a real value can lie in."""

    units: str
    standard_name: str | None
    long_name: str
    physical_range: tuple[float, float]


#: Canonical variables of a site Dataset (docs/data.md); ``physical_range`` [canonical unit] is what
#: a real value can be (outside it the value is impossible: wrong units, a sensor fault).
CANONICAL_VARS: dict[str, VarSpec] = {
    "tsoil": VarSpec("degC", "soil_temperature", "soil temperature at depth", (-50.0, 70.0)),
    "swc": VarSpec("m3 m-3", "volume_fraction_of_condensed_water_in_soil",
                   "volumetric soil water content at depth", (0.0, 1.0)),
    "precip": VarSpec("mm", "lwe_thickness_of_precipitation_amount",
                      "precipitation amount during the step", (0.0, 500.0)),
    "rsoil": VarSpec("umol m-2 s-1", None, "soil respiration (soil-surface CO2 efflux)",
                     (-20.0, 100.0)),
    "tair": VarSpec("degC", "air_temperature", "air temperature", (-80.0, 65.0)),
    "rg": VarSpec("W m-2", "surface_downwelling_shortwave_flux_in_air",
                  "global (incoming shortwave) radiation", (-50.0, 1600.0)),
    "ppfd": VarSpec("umol m-2 s-1", "surface_downwelling_photosynthetic_photon_flux_in_air",
                    "incoming photosynthetic photon flux density", (-50.0, 3000.0)),
}

#: Drivers of the respiration models, in the order models (and the core) index them.
DRIVERS: tuple[str, ...] = ("tsoil", "swc", "precip")
#: Canonical unit of each driver, as model files write it (``past_vars[i].units``).
DRIVER_UNITS: dict[str, str] = {v: CANONICAL_VARS[v].units for v in DRIVERS}
#: Units of the drivers at the C / Fortran boundary, where they are part of the argument names.
BOUNDARY_UNITS: dict[str, tuple[str, str]] = {
    "tsoil": ("tsoil_k", "K"), "swc": ("swc_m3m3", "m3 m-3"), "precip": ("precip_mm_s", "mm s-1")}
#: Units of a model's output (``output.units`` in the model file).
RSOIL_UNITS = "umol m-2 s-1"

#: The coupler's per-column outputs: name -> CF attributes (emulate, predict and the host's history).
OUTPUT_VARS: dict[str, dict[str, str]] = {
    "rsoil": {"units": "umol m-2 s-1",
              "long_name": "soil respiration (CO2 efflux from the soil surface)",
              "comment": "no CF standard name exists for total soil respiration "
                         "(heterotrophic + root); 1 umol CO2 m-2 s-1 = 12.011e-6 gC m-2 s-1",
              "cell_methods": "time: mean"},
    "rsoil_gc": {"units": "g m-2 s-1",
                 "long_name": "soil respiration as a carbon mass flux (gC m-2 s-1, CLM's unit)",
                 "cell_methods": "time: mean"},
    "resp_scalar": {"units": "1",
                    "long_name": "respiration scalar rsoil_model / rsoil_q10_reference",
                    "cell_methods": "time: mean"},
}
#: CF attributes of the per-column status variable (flag_values / flag_meanings are added from
#: STATUS_NAMES by `status_attrs`).
STATUS_ATTRS: dict[str, str] = {
    "long_name": "coupler status of each column and step",
    "comment": "0-1: the network ran; 2 and up: the model's Q10 fallback (docs/model_format.md)",
}

#: Per-column status codes (the index is the code; same numbers as C RSC_STATUS_* and Fortran).
STATUS_NAMES: tuple[str, ...] = ("ACTIVE", "EXTRAPOLATING", "SPINUP", "MISSING", "IMPOSSIBLE",
                                 "MASKED", "EXTRAPOLATION_FALLBACK", "BAD_OUTPUT")
STATUS_DESCRIPTIONS: dict[str, str] = {
    "ACTIVE": "network ran, all inputs inside the training envelope",
    "EXTRAPOLATING": "network ran, some window input outside the envelope",
    "SPINUP": "buffer not yet full -> Q10 fallback",
    "MISSING": "NaN/Inf driver in the window -> Q10 fallback",
    "IMPOSSIBLE": "driver in the window outside the physical range -> Q10 fallback",
    "MASKED": "host's mask chose Q10 for this column",
    "EXTRAPOLATION_FALLBACK": "outside the envelope with strict on -> Q10 fallback",
    "BAD_OUTPUT": "the network returned a non-finite or negative Rsoil -> Q10 fallback",
}
#: Future-driver policy name -> code (C RSC_POLICY_*), docs/core.md.
POLICIES: dict[str, int] = {"lagged": 0, "persistence": 1, "supplied": 2}

#: Q10 forms (Jiang et al. 2022 eq. 2) -> their parameter names, in the order of the formulas:
#:   q10:            a * b ** ((T - tref) / 10)
#:   q10_swc:        a * b ** ((T - tref) / 10) * W ** c
#:   logistic_power: a / (1 + exp(b * (c - T))) * W ** d
#: (T [degC], W in ``swc_units``); rsoil_couple.baselines.q10 evaluates them in Python, the core's
#: q10_predict in C++, and tests/test_variables.py compares the two on one corpus.
Q10_FORMS: dict[str, tuple[str, ...]] = {
    "q10": ("a", "b"), "q10_swc": ("a", "b", "c"), "logistic_power": ("a", "b", "c", "d")}
#: Units a Q10 fit may read SWC in (the paper's presets use percent).
Q10_SWC_UNITS: tuple[str, ...] = ("m3 m-3", "percent")
#: Reference temperature of the exponential forms [degC].
Q10_TREF_C = 10.0
#: Below this Q10 reference [umol m-2 s-1] (or where it is not finite) the respiration scalar
#: ``rsoil_model / rsoil_q10_reference`` is 1 (csrc/coupler.hpp kQ10RefMin, the generated kQ10RefMin).
Q10_REF_MIN = 1e-12

#: Every call on a fixed row count (the core with chunk_size > 0: a window model's ``forward``, a streaming
#: model's ``step``; `rsoil_couple.core.streaming.StreamingRun` with batch_rows > 0) is padded to a multiple of this many
#: rows: then every float32 tensor of the call is a whole number of libtorch's widest vector loops (2 x 16
#: floats with AVX-512) with no scalar tail, whose rounding differs in the last bit on such CPUs, and
#: matrix products give every row the same bits from 64 rows on: a column's value does not depend on its
#: row in the call, nor on the other columns (1 MPI rank == N ranks). Generated as kCallRowMultiple.
CALL_ROW_MULTIPLE = 64


def padded_call_rows(rows: int) -> int:
    """``rows`` (> 0) rounded up to a multiple of `CALL_ROW_MULTIPLE`."""
    return -(-int(rows) // CALL_ROW_MULTIPLE) * CALL_ROW_MULTIPLE


#: How the site scale a model file carries (its module's ``site_scale`` buffer, the metadata record
#: ``site_scale``; docs/model_format.md) was obtained:
SITE_SCALE_METHODS: dict[str, str] = {
    "trained": "learned with the network on the training sites",
    "training_median": "the median of the training sites' own scales",
    "calibrated": "fitted on a short record of a new site by `rsoil-couple calibrate`",
}


def status_attrs() -> dict:
    """CF attributes of a ``status`` variable: `STATUS_ATTRS` plus flag_values / flag_meanings."""
    import numpy as np  # only here: the module stays importable by CMake without numpy

    return {**STATUS_ATTRS, "flag_values": np.arange(len(STATUS_NAMES), dtype="i1"),
            "flag_meanings": " ".join(s.lower() for s in STATUS_NAMES)}


def _cpp_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def cpp_header() -> str:
    """The C++ header (``rsc_variables.hpp``) the core compiles: this table, generated, never edited."""
    n = len(DRIVERS)
    lines = [
        "// GENERATED by rsoil_couple/variables.py at build time. Do not edit: edit variables.py.",
        "#pragma once",
        "#include <array>",
        "namespace rsc::gen {",
        f"constexpr int kNVars = {n};",
        "constexpr std::array<const char*, kNVars> kVarNames = {"
        + ", ".join(_cpp_str(v) for v in DRIVERS) + "};",
        "constexpr std::array<const char*, kNVars> kVarUnits = {"
        + ", ".join(_cpp_str(DRIVER_UNITS[v]) for v in DRIVERS) + "};",
        "constexpr std::array<double, kNVars> kPhysicalMin = {"
        + ", ".join(repr(CANONICAL_VARS[v].physical_range[0]) for v in DRIVERS) + "};",
        "constexpr std::array<double, kNVars> kPhysicalMax = {"
        + ", ".join(repr(CANONICAL_VARS[v].physical_range[1]) for v in DRIVERS) + "};",
        f"constexpr const char* kRsoilUnits = {_cpp_str(RSOIL_UNITS)};",
        f"constexpr int kNQ10Forms = {len(Q10_FORMS)};",
        "constexpr std::array<const char*, kNQ10Forms> kQ10FormNames = {"
        + ", ".join(_cpp_str(f) for f in Q10_FORMS) + "};",
        "constexpr std::array<int, kNQ10Forms> kQ10NParams = {"
        + ", ".join(str(len(p)) for p in Q10_FORMS.values()) + "};",
        "constexpr std::array<std::array<const char*, 4>, kNQ10Forms> kQ10ParamNames = {{"
        + ", ".join("{" + ", ".join(_cpp_str(x) for x in (p + ("",) * (4 - len(p)))) + "}"
                    for p in Q10_FORMS.values()) + "}};",
        "constexpr std::array<const char*, " + str(len(Q10_SWC_UNITS)) + "> kQ10SwcUnits = {"
        + ", ".join(_cpp_str(u) for u in Q10_SWC_UNITS) + "};",
        f"constexpr double kGcPerUmolCo2 = {GC_PER_UMOL_CO2!r};",
        "constexpr std::array<const char*, " + str(len(SITE_SCALE_METHODS)) + "> kSiteScaleMethods = {"
        + ", ".join(_cpp_str(m) for m in SITE_SCALE_METHODS) + "};",
        f"constexpr double kQ10RefMin = {Q10_REF_MIN!r};",
        f"constexpr long long kCallRowMultiple = {CALL_ROW_MULTIPLE};",
        "}  // namespace rsc::gen",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python3 rsoil_couple/variables.py --cpp FILE``: write the generated C++ header (CMake)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpp", required=True, help="path of the C++ header to write")
    args = p.parse_args(argv)
    text = cpp_header()
    out = Path(args.cpp)
    if not out.is_file() or out.read_text() != text:  # unchanged: no rebuild of the core
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
