"""A CF checker on `predict` outputs: 0 errors; the warnings that stay are listed in docs/predict.md."""
from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import xarray as xr

from rsoil_couple import prediction as P
from rsoil_couple.data.synthetic import synthetic_site

CHECKER = shutil.which("compliance-checker")  # IOOS compliance-checker (pip install compliance-checker)
SUITE = "cf:1.10"  # the version the output declares (Conventions = CF-1.10)
#: Warnings (medium priority) that stay, with the reason in docs/predict.md: (time, column) order.
ACCEPTED_WARNINGS = {"§2.4 Dimensions"}

pytestmark = pytest.mark.skipif(CHECKER is None, reason="compliance-checker not installed (.ci/install installs it)")


def _site_columns(path):
    """Three columns of the synthetic site with string ids (NC_STRING, as xarray writes names)."""
    ds = synthetic_site(days=4)
    xr.concat([ds.assign_coords(column=[f"site-{i}"]) for i in range(3)], dim="column").to_netcdf(path)
    return path


def _clm_file(path):
    """A 30-min CLM-style history file (noleap calendar) with column lat/lon."""
    n, lev = 192, np.array([0.01, 0.04, 0.09, 0.16, 0.26], "f4")
    tsoi = 298.0 + 4 * np.sin(2 * np.pi * (np.arange(n) / 2 % 24 - 9) / 24)[:, None, None] + np.zeros((1, 5, 2))
    xr.Dataset({"TSOI": (("time", "levgrnd", "column"), tsoi.astype("f4"), {"units": "K"}),
                "H2OSOI": (("time", "levsoi", "column"), np.full((n, 5, 2), 0.08, "f4"), {"units": "mm3/mm3"}),
                "RAIN": (("time", "column"), np.zeros((n, 2), "f4"), {"units": "mm/s"}),
                "cols1d_lat": ("column", [46.4, 46.5]), "cols1d_lon": ("column", [240.5, 240.6])},
               coords={"levgrnd": lev, "levsoi": lev, "time": ("time", np.arange(1, n + 1) / 48,
                       {"units": "days since 2019-06-01", "calendar": "noleap"})}).to_netcdf(path)
    return path


def _check(path) -> dict:
    r = subprocess.run([CHECKER, f"--test={SUITE}", "-f", "json", "-o", "-", str(path)],
                       capture_output=True, text=True, timeout=300, check=False)
    return json.loads(r.stdout)[SUITE]


@pytest.mark.parametrize("make", [_site_columns, _clm_file], ids=["site_columns", "clm_lat_lon"])
def test_predict_output_has_no_cf_errors(model, tmp_path, make):
    out = tmp_path / "o.nc"
    P.predict(model[0], make(tmp_path / "in.nc"), out, progress=False)
    res = _check(out)
    errors = [(x["name"], x["msgs"]) for x in res["high_priorities"] if x["msgs"]]
    assert res["high_count"] == 0 and not errors, errors
    warned = {x["name"] for x in res["medium_priorities"] + res["low_priorities"] if x["msgs"]}
    assert warned <= ACCEPTED_WARNINGS, f"new CF warnings (fix them or list them in docs/predict.md): {warned}"
