"""A dask cluster for `predict` that leaves its cores to the blocks.

dask's distributed servers run periodic callbacks whatever their load: the event-loop watchdog every
20 ms, the system monitor every 500 ms, the nanny's memory poll every 100 ms, work stealing every
100 ms and the workers' statistical profiler every 10 ms. On this 2-core machine an idle 2-worker
`LocalCluster` with dask's defaults used 3.5 CPU-s per 30 s (12 % of a core: scheduler and nannies
1.4, each worker 1.0); with `LEAN_CONFIG` 0.48 CPU-s (docs/predict.md, "Dask scale-out"). A predict
task is seconds of CPU-bound work and at most two are in flight per worker, so none of these is needed
at their default rates, and on a machine whose every core runs a block, their CPU comes straight off
the speed-up.

`LEAN_CONFIG` is applied to the clusters `local_cluster` starts (the nanny hands it to its worker) and
to predict's own client. A cluster started otherwise (``dask scheduler`` / ``dask worker``) gets it
from the environment variables `lean_environment()` returns.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

#: dask settings for CPU-bound blocks of seconds each (dask's defaults in the comments)
LEAN_CONFIG: dict[str, object] = {
    "distributed.admin.tick.interval": "1s",              # event-loop watchdog, 20 ms
    "distributed.admin.system-monitor.interval": "5s",    # CPU/memory/network sampling, 500 ms
    "distributed.worker.memory.monitor-interval": "1s",   # the nanny's memory poll, 100 ms
    "distributed.worker.profile.enabled": False,          # statistical profiler sampling every 10 ms, on
    "distributed.scheduler.work-stealing": False,         # rebalancing every 100 ms, on (predict keeps
                                                          # at most two blocks per worker in flight)
}


def lean_environment() -> dict[str, str]:
    """`LEAN_CONFIG` as the ``DASK_...`` environment variables dask reads at import, for clusters started
    from the command line (``dask scheduler``, ``dask worker``).
    """
    def name(key: str) -> str:
        return "DASK_" + "__".join(part.upper().replace("-", "_") for part in key.split("."))

    return {name(k): str(v) for k, v in LEAN_CONFIG.items()}


def worker_settings(dask_worker) -> dict:
    """What a worker runs with (for ``client.run``): the `LEAN_CONFIG` keys' values in its config, and
    whether its statistical profiler's periodic callback exists.
    """
    import dask

    return {"config": {k: dask.config.get(k) for k in LEAN_CONFIG},
            "profiling": "profile" in dask_worker.periodic_callbacks}


def _warm_worker() -> int:
    """The imports a predict block needs (torch, xarray, the core), done once per worker."""
    import rsoil_couple.core.emulate  # noqa: F401
    import rsoil_couple.prediction.block  # noqa: F401
    return os.getpid()


def check_workers(n_workers: int) -> int:
    """``--workers N``: the number of worker processes of a local cluster, at least 1."""
    if int(n_workers) < 1:
        raise ValueError(f"--workers {n_workers}: expected at least 1 worker process")
    return int(n_workers)


@contextlib.contextmanager
def local_cluster(n_workers: int, *, lean: bool = True, warm: bool = True) -> Iterator[str]:
    """A `distributed.LocalCluster` of `n_workers` processes with one thread each and no dashboard; yields
    its scheduler address and closes it on exit.

    lean : apply `LEAN_CONFIG` (False: dask's defaults, for comparison).
    warm : import the model's modules in every worker before yielding, as a long-lived cluster has them.
    """
    import dask
    from distributed import Client, LocalCluster

    n_workers = check_workers(n_workers)
    with dask.config.set(LEAN_CONFIG if lean else {}):
        with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster:
            if warm:
                with Client(cluster) as client:
                    client.run(_warm_worker)
            yield cluster.scheduler_address
