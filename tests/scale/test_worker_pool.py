"""Kept workers and chunked tasks: the pool survives between calls, is replaced when its code changed or a
worker died, and chunking keeps the order, the concurrency limit and every item."""

from __future__ import annotations

import os
from concurrent.futures.process import BrokenProcessPool

import pytest

from vkit.scale import workers
from vkit.scale.executors import _chunks, run_tasks


def pid_of(index: int) -> tuple[int, int]:
    return index, os.getpid()


def die(index: int) -> int:
    if index == 3:
        os._exit(3)
    return index


def test_chunks_keep_order_put_limited_tasks_alone_and_bound_their_size():
    tasks = [(i, (i,)) for i in range(40)]
    chunks = _chunks(tasks, limited={5, 6}, max_items_per_task=16, num_workers=2)
    firsts = [chunk[0][0] for _, chunk in chunks]
    assert firsts == sorted(firsts)  # submitted in the order of the tasks
    assert sorted(index for _, chunk in chunks for index, _ in chunk) == list(range(40))
    assert [chunk for is_limited, chunk in chunks if is_limited] == [[(5, (5,))], [(6, (6,))]]
    sizes = [len(chunk) for is_limited, chunk in chunks if not is_limited]
    assert max(sizes) == 3 and sum(sizes) == 38  # 38 items, about eight chunks per worker
    assert max(len(c) for _, c in _chunks(tasks, (), max_items_per_task=3, num_workers=1)) == 3
    assert all(len(c) == 1 for _, c in _chunks(tasks, (), max_items_per_task=1, num_workers=1))


def test_the_local_pool_is_kept_between_calls_and_chunked_results_are_all_there():
    workers.close_workers()
    tasks = [(i, (i,)) for i in range(30)]
    first = dict(run_tasks(pid_of, tasks, "local", num_workers=2, max_items_per_task=4))
    pool = workers.local_pool(2, workers.code_stamp([pid_of]))
    second = dict(run_tasks(pid_of, tasks, "local", num_workers=2, max_items_per_task=4))
    assert sorted(first) == sorted(second) == list(range(30))
    assert {pid for _, pid in first.values()} == {pid for _, pid in second.values()}  # the same two processes
    assert os.getpid() not in {pid for _, pid in first.values()}
    assert workers.local_pool(2, workers.code_stamp([pid_of])) is pool
    assert workers.local_pool(1, workers.code_stamp([pid_of])) is not pool  # another size: a new pool
    workers.close_workers()


def test_a_changed_source_file_changes_the_code_stamp(tmp_path, monkeypatch):
    module_file = tmp_path / "user_graphs.py"
    module_file.write_text("def make_graph(item):\n    return item\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import user_graphs

    before = workers.code_stamp([user_graphs.make_graph, 3, "text"])
    assert before == ((str(module_file), module_file.stat().st_mtime_ns),)
    os.utime(module_file, ns=(module_file.stat().st_atime_ns, module_file.stat().st_mtime_ns + 10**9))
    assert workers.code_stamp([user_graphs.make_graph]) != before


def test_a_worker_that_dies_breaks_that_call_only():
    workers.close_workers()
    with pytest.raises(BrokenProcessPool):
        list(run_tasks(die, [(i, (i,)) for i in range(6)], "local", num_workers=2))
    assert sorted(dict(run_tasks(die, [(i, (i,)) for i in (0, 1, 2)], "local", num_workers=2))) == [0, 1, 2]
    workers.close_workers()
