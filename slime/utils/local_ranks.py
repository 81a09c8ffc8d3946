"""Run a function on several fresh local processes joined by one port, as torch.distributed ranks:
for converters, benchmarks and tests that need megatron's process groups without a cluster."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import traceback

from slime.utils.ports import free_ports


class RankFailed(RuntimeError):
    """A rank raised; the message holds its traceback."""


def _entry(rank: int, world_size: int, port: int, function, args: tuple, results, environ: dict) -> None:
    os.environ.update(environ)
    try:
        # plain pickle: torch's queue pickler would share tensors through files that die with the rank
        results.put((rank, True, pickle.dumps(function(rank, world_size, port, *args))))
    except BaseException:
        results.put((rank, False, traceback.format_exc()))


def run_ranks(world_size: int, function, *args, timeout: float | None = None, environ: dict | None = None) -> list:
    """``function(rank, world_size, port, *args)`` on ``world_size`` spawned processes; the results by
    rank. The first rank that fails stops the others and raises RankFailed with its traceback."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    port = free_ports(1)[0]
    environ = {"OMP_NUM_THREADS": "1", **(environ or {})}
    processes = [context.Process(target=_entry, args=(rank, world_size, port, function, args, results, environ))
                 for rank in range(world_size)]
    for process in processes:
        process.start()
    by_rank, failure = {}, None
    try:
        for _ in processes:
            rank, ok, value = results.get(timeout=timeout)
            if not ok:
                failure = f"rank {rank} of {world_size} failed:\n{value}"
                break
            by_rank[rank] = pickle.loads(value)
    finally:
        for process in processes:
            process.join(timeout=0.5 if failure else 10)
            if process.is_alive():
                process.kill()
                process.join()
    if failure:
        raise RankFailed(failure)
    return [by_rank[rank] for rank in range(world_size)]
