"""rsoil_couple.variables is the one table: the C header, the compiled core and the Q10 formulas agree with it."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import rsoil_couple
from rsoil_couple import variables as V
from rsoil_couple.baselines import q10


def c_header() -> str:
    """rsoil_couple.h of the installed package, else of the source tree."""
    pkg = Path(rsoil_couple.__file__).resolve().parent
    for p in (pkg / "include" / "rsoil_couple.h", pkg.parent / "csrc" / "rsoil_couple.h"):
        if p.is_file():
            return p.read_text()
    pytest.skip("rsoil_couple.h not found (no compiled parts)")


def enum(text: str, prefix: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(rf"\b{prefix}([A-Z_]+)\s*=\s*(\d+)", text)}


def test_statuses_and_policies_match_the_c_header():
    h = c_header()
    assert enum(h, "RSC_STATUS_") == {name: code for code, name in enumerate(V.STATUS_NAMES)}
    assert int(re.search(r"#define RSC_NSTATUS (\d+)", h)[1]) == len(V.STATUS_NAMES)
    assert enum(h, "RSC_POLICY_") == {k.upper(): v for k, v in V.POLICIES.items()}
    assert set(V.STATUS_DESCRIPTIONS) == set(V.STATUS_NAMES)


def test_the_compiled_core_counts_the_same_statuses():
    from rsoil_couple import _core
    assert _core.NSTATUS == len(V.STATUS_NAMES)


def test_generated_cpp_header_lists_the_table():
    text = V.cpp_header()
    for v in V.DRIVERS:
        assert f'"{v}"' in text and f'"{V.DRIVER_UNITS[v]}"' in text
    for form, params in V.Q10_FORMS.items():
        assert f'"{form}"' in text
    assert f"kNQ10Forms = {len(V.Q10_FORMS)};" in text


# Every Q10 form, both SWC units, over a grid that includes the cold, hot, dry and wet edges.
CASES = [
    ("q10", {"a": 0.8, "b": 2.3}),
    ("q10_swc", {"a": 1.7, "b": 1.9, "c": 0.45}),
    ("logistic_power", {"a": 3.1, "b": 0.21, "c": 14.0, "d": 0.8}),
]


@pytest.mark.parametrize("form,params", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("swc_units", V.Q10_SWC_UNITS)
def test_every_q10_form_agrees_between_cpp_and_python(model, form, params, swc_units):
    from rsoil_couple import _core
    assert set(params) == set(V.Q10_FORMS[form])
    _, meta, _ = model
    meta = dict(meta, fallback_q10={"form": form, "params": params, "tref_c": V.Q10_TREF_C,
                                    "swc_units": swc_units, "fitted_on": "test"})
    text = json.dumps(meta)
    temps = np.array([-30.0, -5.0, 0.0, 7.5, 10.0, 21.3, 35.0, 55.0])
    swcs = np.array([0.01, 0.05, 0.12, 0.3, 0.55, 0.95])
    py = np.broadcast_to(q10.predict(form, params, temps[:, None], swcs[None, :], swc_units=swc_units),
                         (temps.size, swcs.size))
    cpp = np.array([[_core.q10_predict(text, t, w) for w in swcs] for t in temps])
    assert np.all(np.isfinite(py)) and np.all(py > 0)
    np.testing.assert_allclose(cpp, py, rtol=1e-13, atol=0)


def test_q10_python_forms_take_exactly_the_tables_parameters():
    for form, names in V.Q10_FORMS.items():
        assert q10.PARAM_NAMES[form] == names
        q10.predict(form, {k: 1.0 for k in names}, 10.0, 0.2)
        with pytest.raises(ValueError):
            q10.predict(form, {k: 1.0 for k in names[:-1]}, 10.0, 0.2)


def test_q10_reference_minimum_matches_the_core():
    """The respiration scalar's threshold: variables.Q10_REF_MIN (Python's streaming path, the generated
    header) is the core's kQ10RefMin."""
    src = Path(rsoil_couple.__file__).resolve().parent.parent / "csrc" / "coupler.hpp"
    if not src.is_file():
        pytest.skip("csrc/coupler.hpp not found (installed package without sources)")
    m = re.search(r"constexpr double kQ10RefMin = ([0-9.eE+-]+);", src.read_text())
    assert m and float(m[1]) == V.Q10_REF_MIN
    assert f"kQ10RefMin = {V.Q10_REF_MIN!r};" in V.cpp_header()
