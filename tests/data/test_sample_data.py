"""The packaged real sample (rsoil_couple/sample_data): small, cited, and the same Dataset as the full US-Hn1 file."""
from __future__ import annotations

import numpy as np

from rsoil_couple.data import read_site
from rsoil_couple.data.sites import SAMPLE_US_HN1


def test_sample_is_small_and_documented():
    assert SAMPLE_US_HN1.is_file() and SAMPLE_US_HN1.stat().st_size < 200_000
    readme = (SAMPLE_US_HN1.parent / "README.md").read_text()
    assert "CC-BY-4.0" in readme and "doi:10.3389/fenvs.2022.1035540" in readme


def test_sample_reads_as_the_full_file(shared_data):
    small = read_site(SAMPLE_US_HN1)
    full = read_site(shared_data / "US-Hn1" / "US-Hn1_2019_30min.csv")
    assert small.sizes == full.sizes and small.attrs["step_seconds"] == 1800
    np.testing.assert_array_equal(small["time"].values, full["time"].values)
    for v in ("tsoil", "swc", "precip", "rsoil", "tair", "rg", "qc"):
        np.testing.assert_array_equal(small[v].values, full[v].values, err_msg=v)
    assert small.attrs["rsoil_gapfilled_rows_in_file"] == full.attrs["rsoil_gapfilled_rows_in_file"] == 55
