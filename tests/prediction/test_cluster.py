"""Tests of rsoil_couple.prediction.cluster: predict's own dask cluster and its lean settings."""
from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr

from rsoil_couple import prediction as P
from rsoil_couple.data.sites import SAMPLE_US_HN1
from rsoil_couple.prediction.cluster import LEAN_CONFIG, lean_environment, local_cluster, worker_settings


def test_lean_environment_is_what_dask_reads_as_the_lean_config():
    read = dask.config.collect_env(lean_environment())
    got = {k: dask.config.get(k, config=read) for k in LEAN_CONFIG}
    # dask parses the environment's strings as YAML: "False" -> False, "1s" stays a string
    assert got == LEAN_CONFIG
    assert lean_environment()["DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL"] == "1s"


def test_local_cluster_workers_run_with_the_lean_config_and_without_the_profiler():
    from distributed import Client

    with local_cluster(2) as address, Client(address) as client:
        lean = list(client.run(worker_settings).values())
    with local_cluster(1, lean=False) as address, Client(address) as client:
        default = list(client.run(worker_settings).values())
    assert len(lean) == 2
    assert all(w["config"] == LEAN_CONFIG and not w["profiling"] for w in lean)
    assert default[0]["profiling"] and default[0]["config"] != LEAN_CONFIG
    assert dask.config.get("distributed.admin.tick.interval") != "1s"  # the caller's config is left as it was


def test_predict_on_its_own_workers_equals_one_process(model_24h, tmp_path, monkeypatch):
    model = model_24h[0]
    src = P.write_perturbed_columns(SAMPLE_US_HN1, tmp_path / "cols.nc", 6, ntime=200, seed=3)
    one, two = tmp_path / "one.nc", tmp_path / "two.nc"
    P.predict(model, src, one, chunk_columns=2, progress=False)
    res = P.predict(model, src, two, chunk_columns=2, progress=False, workers=2)
    assert len(res.blocks_by_pid) == 2  # the three blocks ran in the two worker processes
    with xr.open_dataset(one) as a, xr.open_dataset(two) as b:
        for v in P.OUTPUT_VARS:
            np.testing.assert_array_equal(a[v].values, b[v].values)
    with pytest.raises(ValueError, match="--workers 2 and --scheduler"):
        P.predict(model, src, tmp_path / "x.nc", workers=2, scheduler="tcp://127.0.0.1:1", progress=False)
    # refused before the input is opened (and before any cluster starts)
    import rsoil_couple.prediction.run as R

    monkeypatch.setattr(R, "open_input", lambda spec: pytest.fail("opened the input before refusing --workers 0"))
    with pytest.raises(ValueError, match="--workers 0: expected at least 1"):
        P.predict(model, src, tmp_path / "x.nc", workers=0, progress=False)
