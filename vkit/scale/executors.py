"""Where the items of a sweep run: "inline" (this process), "local" (a spawn process pool), "dask".

The pool and the ``LocalCluster`` started here are kept warm for the next call (``vkit.scale.workers``).

``limited`` tasks (e.g. runs against a network endpoint) are kept to at most ``max_limited`` in flight
at once, whatever the executor and its number of workers; the others are all submitted at once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED
from concurrent.futures import wait as wait_futures
from typing import Any

from vkit.errors import ConfigError, got
from vkit.scale.workers import code_stamp, discard_local_pool, local_cluster_client, local_pool

log = logging.getLogger(__name__)

Task = tuple[int, tuple[Any, ...]]


def run_tasks(fn: Callable[..., Any], tasks: Sequence[Task], executor: Any = "local",
              num_workers: int | None = None, *, limited: Collection[int] = (),
              max_limited: int | None = None, max_items_per_task: int = 1) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, fn(*args))`` as items finish, in any order (the caller sorts).

    With ``max_items_per_task > 1`` the tasks that are not ``limited`` travel to the workers in chunks of
    up to that many (about eight chunks per worker, so the workers stay evenly loaded): one submission,
    one pickled ``fn`` and one result message per chunk instead of per item."""
    if max_limited is not None and max_limited < 1:
        raise ConfigError(f"the concurrency limit must be at least 1 {got(max_limited)}")
    if max_items_per_task < 1:
        raise ConfigError(f"max_items_per_task must be at least 1 {got(max_items_per_task)}")
    if not tasks:
        return
    if executor == "inline":
        for index, args in tasks:
            yield index, fn(*args)
    elif executor == "local":
        workers = min(num_workers or os.cpu_count() or 1, len(tasks))
        pool = local_pool(workers, _stamp(fn, tasks))
        try:
            yield from _drive(lambda chunk: pool.submit(call_chunk, fn, chunk),
                              lambda fs: wait_futures(fs, return_when=FIRST_COMPLETED)[0],
                              _chunks(tasks, limited, max_items_per_task, workers), max_limited)
        except BaseException:  # a worker died, or the sweep was interrupted: its queued chunks go with the pool
            discard_local_pool(pool)
            raise
    elif is_dask(executor):
        yield from _run_dask(fn, tasks, executor, num_workers, limited, max_limited, max_items_per_task)
    else:
        raise ConfigError(f"executor must be 'inline', 'local', 'dask', a scheduler address or a dask Client {got(executor)}")


def _stamp(fn: Callable[..., Any], tasks: Sequence[Task]) -> tuple[tuple[str, int], ...]:
    """The code stamp of ``fn`` and of the callables among the first task's arguments (``make_graph``)."""
    return code_stamp([fn, *tasks[0][1]])


def call_chunk(fn: Callable[..., Any], chunk: Sequence[Task]) -> list[tuple[int, Any]]:
    """Run one chunk of tasks in a worker."""
    return [(index, fn(*args)) for index, args in chunk]


def _chunks(tasks: Sequence[Task], limited: Collection[int], max_items_per_task: int,
            num_workers: int) -> list[tuple[bool, list[Task]]]:
    """``(is_limited, tasks)`` per submission, in the order of ``tasks``: each limited task alone, the others
    in consecutive chunks of up to ``max_items_per_task``."""
    limited = set(limited)
    free = [task for task in tasks if task[0] not in limited]
    size = max(1, min(max_items_per_task, -(-len(free) // (8 * max(num_workers, 1)))))
    chunks = [(True, [task]) for task in tasks if task[0] in limited]
    chunks += [(False, free[i:i + size]) for i in range(0, len(free), size)]
    return sorted(chunks, key=lambda chunk: chunk[1][0][0])


def is_dask(executor: Any) -> bool:
    """``"dask"``, a scheduler address (``tcp://host:8786``) or a ``distributed.Client``."""
    return executor == "dask" or _is_dask_client(executor) or (isinstance(executor, str) and "://" in executor)


def _is_dask_client(obj: Any) -> bool:
    return type(obj).__name__ == "Client" and type(obj).__module__.startswith("distributed")


def _drive(submit: Callable[[list[Task]], Any], wait_any: Callable[[list[Any]], Collection[Any]],
           chunks: list[tuple[bool, list[Task]]], max_limited: int | None) -> Iterator[tuple[int, Any]]:
    """Submit every chunk in order, the limited ones at most ``max_limited`` at a time (the rest wait their
    turn); yield the results of each chunk as it comes."""
    cap = max_limited or len(chunks)
    pending: dict[Any, bool] = {}
    queue: list[list[Task]] = []
    num_limited = 0
    for is_limited, chunk in chunks:
        if is_limited and num_limited >= cap:
            queue.append(chunk)
            continue
        pending[submit(chunk)] = is_limited
        num_limited += is_limited
    while pending:
        for future in wait_any(list(pending)):
            if pending.pop(future):
                num_limited -= 1
                if queue:
                    pending[submit(queue.pop(0))] = True
                    num_limited += 1
            yield from future.result()


def dask_client(executor: Any, num_workers: int | None, stamp: tuple[tuple[str, int], ...] = ()) -> tuple[Any, list[Any]]:
    """A ``distributed.Client`` for ``executor`` and the objects to close afterwards (those opened here):
    the kept ``LocalCluster`` of ``num_workers`` single-threaded processes for ``"dask"`` (see ``workers``),
    a connection for an address."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError("the dask executor needs dask.distributed: pip install 'vkit[dask]'") from exc
    if _is_dask_client(executor):
        return executor, []
    if executor == "dask":
        return local_cluster_client(num_workers or os.cpu_count() or 1, stamp), []
    client = distributed.Client(executor)
    log.info("dask dashboard: %s", client.dashboard_link)
    return client, [client]


def _run_dask(fn: Callable[..., Any], tasks: Sequence[Task], executor: Any, num_workers: int | None,
              limited: Collection[int], max_limited: int | None, max_items_per_task: int) -> Iterator[tuple[int, Any]]:
    from distributed import wait

    client, owned = dask_client(executor, num_workers, _stamp(fn, tasks))
    try:
        workers = len(client.scheduler_info().get("workers", {})) or num_workers or 1
        yield from _drive(lambda chunk: client.submit(call_chunk, fn, chunk, pure=False),
                          lambda fs: wait(fs, return_when="FIRST_COMPLETED").done,
                          _chunks(tasks, limited, max_items_per_task, workers), max_limited)
    finally:
        for obj in owned:
            obj.close()
