"""rsoil_couple.prediction.block (one block's work, `heap_kept`) and output.BlockWriter (the background writer)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rsoil_couple import prediction as P
from rsoil_couple.prediction import output as predict_output

# Minor page faults of 100 allocations of 1.2 MB tensors, filled, outside and inside `heap_kept`.
_FAULTS = """
import resource, torch
from rsoil_couple.prediction.block import heap_kept
def faults():
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(100):
        torch.empty(300_000).fill_(1.0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
faults()
outside = faults()
with heap_kept():
    faults()
    inside = faults()
print(outside, inside)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")
def test_heap_kept_stops_the_page_faults_of_a_dask_workers_malloc_settings():
    """A dask nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which fixes the mmap threshold at
    128 KiB: every tensor above it is mmapped, faulted in and unmapped. Inside `heap_kept` they are reused."""
    env = dict(os.environ, MALLOC_TRIM_THRESHOLD_="65536")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", _FAULTS], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    outside, inside = map(int, out)
    assert outside > 100 * 200  # ~293 pages per 1.2 MB tensor
    assert inside < outside / 20
    # (afterwards the worker's settings are set again; whether a later tensor is then mmapped depends on
    # where the heap's free chunks lie, so fault counts after the block are not a reliable test of it)


def test_write_error_reaches_the_caller_and_leaves_no_partial(stream_model, tmp_path, monkeypatch):
    """The background writer's error is raised by predict, the partial file removed, the output untouched."""
    from rsoil_couple.data.synthetic import synthetic_site

    path, _ = stream_model
    src = tmp_path / "in.nc"
    one = synthetic_site(days=2, step_minutes=30, seed=0)[["tsoil", "swc", "precip"]]
    one.isel(column=[0] * 6).assign_coords(column=range(6)).to_netcdf(src)
    out = tmp_path / "o.nc"
    out.write_text("an older result")
    real = predict_output.BlockWriter._write

    def failing(self, i, res):
        if i == 1:
            raise OSError("disk full")
        real(self, i, res)

    monkeypatch.setattr(predict_output.BlockWriter, "_write", failing)
    with pytest.raises(OSError, match="disk full"):
        P.predict(path, src, out, chunk_columns=2, progress=False)
    assert out.read_text() == "an older result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.nc", "o.nc"]
