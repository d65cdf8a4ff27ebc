"""The site_scale record against the module's site_scale buffer: Python's load_model and the C++ core
(pybind11 and the C API) accept the same files and refuse the same files, naming both numbers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rsoil_couple.core.capi import CapiCoupler, CapiError, lib
from rsoil_couple.core.coupler import Coupler
from rsoil_couple.errors import MetaError
from rsoil_couple.modelfile.export import load_model


def _rsoil(path, ncol=3):
    """The core's Rsoil after the 4-step window is full (tsoil 20..30 degC, swc 0.1..0.3)."""
    c = Coupler(path, ncol)
    t, w = np.linspace(20, 30, ncol), np.linspace(0.1, 0.3, ncol)
    for _ in range(4):
        r = c.step(t, w, np.zeros(ncol))
    assert np.all(r.status == 0), r.status
    return r.rsoil, t, w


def _both_refuse(path, *needles):
    with pytest.raises(MetaError) as py:
        load_model(path)
    with pytest.raises(ValueError) as core:
        Coupler(path, 2)
    with pytest.raises(CapiError) as capi:
        CapiCoupler(path, 2)
    assert capi.value.code == lib.RSC_E_METADATA
    for msg in (str(py.value), str(core.value), capi.value.message):
        assert "rsoil_meta.json: site_scale.value: " in msg, msg
        for n in needles:
            assert n in msg, (n, msg)
    return str(py.value), str(core.value)


def test_the_buffer_multiplies_the_output_and_equal_records_load_everywhere(tmp_path, scaled_q10):
    one, three = tmp_path / "one.pt", tmp_path / "three.pt"
    scaled_q10(one, 1.0)
    meta = scaled_q10(three, 1.5)
    module, meta2 = load_model(three)
    assert meta2["site_scale"] == {"value": 1.5, "method": "trained", "sites": ["SYNTHETIC-DRY"]} == meta["site_scale"]
    assert float(module.site_scale) == 1.5
    r1, t, w = _rsoil(one)
    r3, _, _ = _rsoil(three)
    np.testing.assert_allclose(r1, 0.25 * 2 ** ((t - 10) / 10) * np.sqrt(w / 0.1), rtol=1e-6)
    np.testing.assert_allclose(r3, 1.5 * r1, rtol=1e-6)
    CapiCoupler(three, 2)   # the C API accepts it too


def test_record_equal_as_float32_is_accepted(tmp_path, scaled_q10):
    """0.1 is not a float32: the buffer holds float32(0.1) and the record's double 0.1 matches it."""
    p = tmp_path / "tenth.pt"
    scaled_q10(p, 0.1, record={"value": 0.1, "method": "training_median", "sites": ["A", "B"]}, raw=True)
    module, meta = load_model(p)
    assert float(module.site_scale) != 0.1 and meta["site_scale"]["value"] == 0.1
    Coupler(p, 2)
    CapiCoupler(p, 2)


def test_record_other_than_the_buffer_is_refused_naming_both_numbers(tmp_path, scaled_q10):
    p = tmp_path / "mismatch.pt"
    scaled_q10(p, 1.5, record={"value": 1.25, "method": "trained", "sites": []}, raw=True)
    py, core = _both_refuse(p, "1.25", "1.5", str(p))
    assert "metadata inconsistent with the module" in py and "metadata inconsistent with the module" in core
    # one float32 step away is still refused
    q = tmp_path / "ulp.pt"
    near = float(np.nextafter(np.float32(1.5), np.float32(2)))
    scaled_q10(q, 1.5, record={"value": near, "method": "trained", "sites": []}, raw=True)
    _both_refuse(q, "1.5")


def test_record_without_a_buffer_is_refused(tmp_path, scaled_q10):
    p = tmp_path / "plain.pt"
    scaled_q10(p, plain=True, record={"value": 1.0, "method": "trained", "sites": []}, raw=True)
    _both_refuse(p, "no site_scale buffer")


def test_buffer_that_is_not_float32_0d_is_refused(tmp_path, scaled_q10):
    p = tmp_path / "f64.pt"
    scaled_q10(p, 1.0, dtype=torch.float64, raw=True)
    _both_refuse(p, "not a float32 0-d tensor")


def test_buffer_without_a_record_is_accepted(tmp_path, scaled_q10):
    """The record is optional: files written before it (or by a trainer that does not fill it) load."""
    p = tmp_path / "norecord.pt"
    meta = scaled_q10(p, 2.0, record=None)
    assert "site_scale" not in meta
    load_model(p)
    Coupler(p, 2)


def test_export_refuses_a_record_other_than_the_buffer(tmp_path, scaled_q10):
    with pytest.raises(MetaError, match=r"site_scale\.value: .*gives 1\.0, the module's site_scale buffer holds 2\.0"):
        scaled_q10(tmp_path / "x.pt", 2.0, record={"value": 1.0, "method": "trained", "sites": []})
    assert not (tmp_path / "x.pt").exists()
