"""Where the items of a sweep run: "inline" (this process), "local" (a spawn process pool), "dask".

``limited`` tasks (e.g. runs against a network endpoint) are kept to at most ``max_limited`` in flight
at once, whatever the executor and its number of workers; the others are all submitted at once.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Any

from vkit.errors import ConfigError, got

log = logging.getLogger(__name__)

Task = tuple[int, tuple[Any, ...]]


def run_tasks(fn: Callable[..., Any], tasks: Sequence[Task], executor: Any = "local",
              num_workers: int | None = None, *, limited: Collection[int] = (),
              max_limited: int | None = None) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, fn(*args))`` as items finish, in any order (the caller sorts)."""
    if max_limited is not None and max_limited < 1:
        raise ConfigError(f"the concurrency limit must be at least 1 {got(max_limited)}")
    if not tasks:
        return
    if executor == "inline":
        for index, args in tasks:
            yield index, fn(*args)
    elif executor == "local":
        workers = min(num_workers or os.cpu_count() or 1, len(tasks))
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            yield from _drive(lambda args: pool.submit(fn, *args),
                              lambda fs: wait_futures(fs, return_when=FIRST_COMPLETED)[0], tasks, limited, max_limited)
    elif is_dask(executor):
        yield from _run_dask(fn, tasks, executor, num_workers, limited, max_limited)
    else:
        raise ConfigError(f"executor must be 'inline', 'local', 'dask', a scheduler address or a dask Client {got(executor)}")


def is_dask(executor: Any) -> bool:
    """``"dask"``, a scheduler address (``tcp://host:8786``) or a ``distributed.Client``."""
    return executor == "dask" or _is_dask_client(executor) or (isinstance(executor, str) and "://" in executor)


def _is_dask_client(obj: Any) -> bool:
    return type(obj).__name__ == "Client" and type(obj).__module__.startswith("distributed")


def _drive(submit: Callable[[tuple[Any, ...]], Any], wait_any: Callable[[list[Any]], Collection[Any]],
           tasks: Sequence[Task], limited: Collection[int], max_limited: int | None) -> Iterator[tuple[int, Any]]:
    """Submit every task in order, the ``limited`` ones at most ``max_limited`` at a time (the rest wait
    their turn); yield results as they come."""
    limited = set(limited)
    cap = max_limited or len(tasks)
    pending: dict[Any, int] = {}
    queue: list[Task] = []
    num_limited = 0
    for index, args in tasks:
        if index in limited and num_limited >= cap:
            queue.append((index, args))
            continue
        pending[submit(args)] = index
        num_limited += index in limited
    while pending:
        for future in wait_any(list(pending)):
            index = pending.pop(future)
            if index in limited:
                num_limited -= 1
                if queue:
                    next_index, args = queue.pop(0)
                    pending[submit(args)] = next_index
                    num_limited += 1
            yield index, future.result()


def dask_client(executor: Any, num_workers: int | None) -> tuple[Any, list[Any]]:
    """A ``distributed.Client`` for ``executor`` and the objects to close afterwards (those started here):
    a ``LocalCluster`` of ``num_workers`` single-threaded processes for ``"dask"``, a connection for an address."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ImportError("the dask executor needs dask.distributed: pip install 'vkit[dask]'") from exc
    if _is_dask_client(executor):
        return executor, []
    if executor == "dask":
        cluster = LocalCluster(n_workers=num_workers or os.cpu_count() or 1, threads_per_worker=1, processes=True)
        client = Client(cluster)
        log.info("dask dashboard: %s", client.dashboard_link)
        return client, [client, cluster]
    client = Client(executor)
    log.info("dask dashboard: %s", client.dashboard_link)
    return client, [client]


def _run_dask(fn: Callable[..., Any], tasks: Sequence[Task], executor: Any, num_workers: int | None,
              limited: Collection[int], max_limited: int | None) -> Iterator[tuple[int, Any]]:
    from distributed import wait

    client, owned = dask_client(executor, num_workers)
    try:
        yield from _drive(lambda args: client.submit(fn, *args, pure=False),
                          lambda fs: wait(fs, return_when="FIRST_COMPLETED").done, tasks, limited, max_limited)
    finally:
        for obj in owned:
            obj.close()
