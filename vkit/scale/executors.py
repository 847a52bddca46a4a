"""Where the items of a sweep run: "inline" (this process), "local" (a spawn process pool), "dask"."""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from vkit.errors import ConfigError, got

log = logging.getLogger(__name__)

Task = tuple[int, tuple[Any, ...]]


def run_tasks(fn: Callable[..., Any], tasks: Sequence[Task], executor: Any = "local",
              num_workers: int | None = None) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, fn(*args))`` as items finish, in any order (the caller sorts)."""
    if not tasks:
        return
    if executor == "inline":
        for index, args in tasks:
            yield index, fn(*args)
    elif executor == "local":
        workers = min(num_workers or os.cpu_count() or 1, len(tasks))
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(fn, *args): index for index, args in tasks}
            for future in as_completed(futures):
                yield futures[future], future.result()
    elif executor == "dask" or _is_dask_client(executor) or (isinstance(executor, str) and "://" in executor):
        yield from _run_dask(fn, tasks, executor, num_workers)
    else:
        raise ConfigError(f"executor must be 'inline', 'local', 'dask', a scheduler address or a dask Client {got(executor)}")


def _is_dask_client(obj: Any) -> bool:
    return type(obj).__name__ == "Client" and type(obj).__module__.startswith("distributed")


def _run_dask(fn: Callable[..., Any], tasks: Sequence[Task], executor: Any, num_workers: int | None) -> Iterator[tuple[int, Any]]:
    try:
        from distributed import Client, LocalCluster
        from distributed import as_completed as dask_completed
    except ImportError as exc:
        raise ImportError("the dask executor needs dask.distributed: pip install 'vkit[dask]'") from exc
    owned: list[Any] = []
    if _is_dask_client(executor):
        client = executor
    elif executor == "dask":
        cluster = LocalCluster(n_workers=num_workers or os.cpu_count() or 1, threads_per_worker=1, processes=True)
        client = Client(cluster)
        owned += [client, cluster]
    else:
        client = Client(executor)
        owned.append(client)
    log.info("dask dashboard: %s", client.dashboard_link)
    try:
        futures = {client.submit(fn, *args, pure=False): index for index, args in tasks}
        for future in dask_completed(futures):
            yield futures[future], future.result()
    finally:
        for obj in owned:
            obj.close()
