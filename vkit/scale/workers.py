"""Worker processes kept warm between sweeps: a spawn process pool and a Dask ``LocalCluster``.

A spawned worker pays its start-up once (the interpreter, ``import vkit``, numpy, onnxruntime, and the
first load of each model); a sweep of a few hundred short items spends as long on that as on its items.
So the pool (``executor="local"``) and the cluster (``executor="dask"``) a sweep starts are kept for the
next sweep of the same size and closed when the interpreter exits, or by ``close_workers()``.

A kept worker keeps the modules it imported, so the workers are replaced when a module that defines the
code of a sweep (``make_graph`` and the like) changed on disk since they started (``code_stamp``).
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["code_stamp", "local_pool", "discard_local_pool", "local_cluster_client", "close_workers"]

_lock = threading.Lock()
Key = tuple[int, tuple[tuple[str, int], ...]]  # (num_workers, code_stamp)
_pool: tuple[Key, ProcessPoolExecutor] | None = None
_cluster: tuple[Key, Any, Any] | None = None  # (key, LocalCluster, Client)


def code_stamp(objects: Iterable[Any]) -> tuple[tuple[str, int], ...]:
    """The source file and its modification time (ns) of the module of each function or class in ``objects``
    (functools.partial unwrapped; objects of the standard library and of built-ins skipped)."""
    stamps = set()
    for obj in objects:
        obj = getattr(obj, "func", obj)
        module = sys.modules.get(getattr(obj, "__module__", None) or "")
        path = getattr(module, "__file__", None)
        if callable(obj) and path and os.path.exists(path):
            stamps.add((path, os.stat(path).st_mtime_ns))
    return tuple(sorted(stamps))


def local_pool(num_workers: int, stamp: tuple[tuple[str, int], ...] = ()) -> ProcessPoolExecutor:
    """The kept spawn pool of ``num_workers`` processes (replaced for another size or a changed ``stamp``)."""
    global _pool
    key = (num_workers, stamp)
    with _lock:
        if _pool is not None and _pool[0] != key:
            _pool[1].shutdown(wait=False, cancel_futures=True)
            _pool = None
        if _pool is None:
            _pool = (key, ProcessPoolExecutor(num_workers, mp_context=multiprocessing.get_context("spawn")))
        return _pool[1]


def discard_local_pool(pool: ProcessPoolExecutor) -> None:
    """Forget ``pool`` (after one of its workers died, or a sweep was interrupted): the next sweep starts afresh."""
    global _pool
    with _lock:
        if _pool is not None and _pool[1] is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def local_cluster_client(num_workers: int, stamp: tuple[tuple[str, int], ...] = ()) -> Any:
    """A client of the kept ``LocalCluster`` of ``num_workers`` single-threaded worker processes (replaced
    for another size, a changed ``stamp`` or a client that is no longer running)."""
    global _cluster
    from distributed import Client, LocalCluster

    key = (num_workers, stamp)
    with _lock:
        if _cluster is not None and (_cluster[0] != key or _cluster[2].status != "running"):
            _close_cluster(_cluster)
            _cluster = None
        if _cluster is None:
            cluster = LocalCluster(n_workers=num_workers, threads_per_worker=1, processes=True)
            client = Client(cluster)
            log.info("dask dashboard: %s", client.dashboard_link)
            _cluster = (key, cluster, client)
        return _cluster[2]


def close_workers() -> None:
    """Close the kept pool and cluster (they are also closed when the interpreter exits)."""
    global _pool, _cluster
    with _lock:
        pool, cluster = _pool, _cluster
        _pool = _cluster = None
    if pool is not None:
        pool[1].shutdown(wait=True, cancel_futures=True)
    if cluster is not None:
        _close_cluster(cluster)


def _close_cluster(kept: tuple[Key, Any, Any]) -> None:
    _, cluster, client = kept
    for obj in (client, cluster):
        try:
            obj.close()
        except Exception:  # noqa: BLE001 - closing at exit, after the cluster may already be gone
            log.debug("closing the kept dask cluster", exc_info=True)


atexit.register(close_workers)
