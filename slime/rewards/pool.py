"""Reward calls in worker processes, each with a deadline: a call still running at its deadline has its
worker killed (SIGKILL) and a fresh one takes its place.

A reward function is the user's code, or ours on the model's output: it may hang, or compute for hours
under Python's global lock (``\\boxed{1e10000000}`` once made the math reward build 10**N), where no
thread of the trainer can stop it. In a process of its own it can always be ended, so
``--reward-timeout`` holds for any reward function, and the trainer's main thread, which waits in
short slices, handles SIGTERM within a fraction of a second.

    python -m slime.rewards.worker IN_FD OUT_FD    # a worker (slime.rewards.worker), started by RewardPool

A worker gets the trainer's ``sys.path`` and ``args`` once, loads ``--custom-rm-path`` (if any) itself,
then answers one sample at a time (``slime.rewards.hub.RewardDispatch``: the sample's own reward path,
``--custom-rm-path`` or the built-in ``--rm-type``) with the reward as a float or the error as text.
Workers end with the process that started them (PR_SET_PDEATHSIG). What a reward function changes on
its sample or its args stays in the worker.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

OK, ERROR, TIMEOUT = "ok", "error", "timeout"
_SLICE = 0.5  # the longest wait between looks at deadlines and signals
STARTUP_SECONDS = 120.0  # for a worker to start and load the reward function (at least --reward-timeout)


@dataclass
class Outcome:
    kind: str  # OK, ERROR or TIMEOUT
    value: Any = None  # the reward, or the error as "Type: message"


def _die_with_parent() -> None:
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


_spawner = None


def _start(command: list[str], fds: tuple[int, int]) -> subprocess.Popen:
    """Start a worker from one long-lived thread: PR_SET_PDEATHSIG fires when the *thread* that started a
    process ends, and rollouts run in threads of their own (train_async.py) that end after each rollout."""
    global _spawner
    from concurrent.futures import ThreadPoolExecutor

    if _spawner is None:
        _spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reward-workers")
    return _spawner.submit(subprocess.Popen, command, pass_fds=fds, stdin=subprocess.DEVNULL,
                           preexec_fn=_die_with_parent).result()


class _Worker:
    """One worker process and the pipes to it; ``job`` is (sample index, start time) while it computes."""

    def __init__(self, args: argparse.Namespace):
        requests_read, requests_write = os.pipe()
        results_read, results_write = os.pipe()
        self.process = _start([sys.executable, "-m", "slime.rewards.worker", str(requests_read), str(results_write)],
                              (requests_read, results_write))
        os.close(requests_read)
        os.close(results_write)
        self.requests = Connection(requests_write, readable=False)
        self.results = Connection(results_read, writable=False)
        self.requests.send((list(sys.path), args))
        self.ready = False
        self.started = time.monotonic()
        self.job: tuple[int, float] | None = None

    def give(self, index: int, sample, reward_key: str | None) -> None:
        self.requests.send((sample, reward_key))
        self.job = (index, time.monotonic())

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.requests.close()
        self.results.close()


class RewardPool:
    """Up to ``size`` worker processes for the reward function ``args`` names, started as needed."""

    def __init__(self, args: argparse.Namespace, size: int):
        self.args, self.size = args, size
        self.workers: list[_Worker] = []

    def score(self, samples: list, reward_key: str | None, timeout: float | None) -> list[Outcome]:
        """The reward of every sample (``value[reward_key]`` of a dict reward), each within ``timeout``."""
        try:
            return self._score(samples, reward_key, timeout)
        except BaseException:  # a signal (SIGTERM) or an error: workers mid-call may never return
            self.close()
            raise

    def _score(self, samples: list, reward_key: str | None, timeout: float | None) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(samples)
        pending = deque(range(len(samples)))
        while pending or any(w.job for w in self.workers):
            wanted = min(self.size, len(pending) + sum(1 for w in self.workers if w.job))
            while len(self.workers) < wanted:
                self.workers.append(_Worker(self.args))
            for worker in list(self.workers):
                if worker.ready and worker.job is None and pending:
                    index = pending.popleft()
                    try:
                        worker.give(index, samples[index], reward_key)
                    except OSError:  # it died while idle (killed from outside): the sample goes to another
                        pending.appendleft(index)
                        self._drop(worker)
            for connection in wait([w.results for w in self.workers], timeout=self._next_wait(timeout)):
                worker = next(w for w in self.workers if w.results is connection)
                self._receive(worker, outcomes)
            self._end_late_calls(outcomes, timeout)
        return outcomes  # type: ignore[return-value]

    def _next_wait(self, timeout: float | None) -> float:
        if timeout is None:
            return _SLICE
        now = time.monotonic()
        deadlines = [w.job[1] + timeout - now if w.job else w.started + _startup(timeout) - now
                     for w in self.workers if w.job or not w.ready]
        return max(0.01, min([_SLICE, *deadlines]))

    def _receive(self, worker: _Worker, outcomes: list) -> None:
        try:
            kind, value = worker.results.recv()
        except (EOFError, OSError):
            code = worker.process.wait()
            if worker.job is not None:
                outcomes[worker.job[0]] = Outcome(ERROR, f"the reward process died (exit code {code})")
            self._drop(worker)
            if not worker.ready:
                raise ValueError(f"the reward process exited with code {code} while loading the reward function")
            return
        if not worker.ready:
            if kind == ERROR:
                self.close()
                raise ValueError(value)
            worker.ready = True
            return
        outcomes[worker.job[0]] = Outcome(kind, value)
        worker.job = None

    def _end_late_calls(self, outcomes: list, timeout: float | None) -> None:
        if timeout is None:
            return
        now = time.monotonic()
        for worker in list(self.workers):
            if worker.job is not None and now - worker.job[1] >= timeout:
                outcomes[worker.job[0]] = Outcome(TIMEOUT)
                self._drop(worker)
            elif not worker.ready and now - worker.started >= _startup(timeout):
                self._drop(worker)
                raise ValueError(f"loading the reward function took longer than {_startup(timeout):g} s")

    def _drop(self, worker: _Worker) -> None:
        worker.kill()
        self.workers.remove(worker)

    def close(self) -> None:
        for worker in list(self.workers):
            self._drop(worker)


def _startup(timeout: float) -> float:
    return max(timeout, STARTUP_SECONDS)


_pool: tuple[tuple, RewardPool] | None = None


def pool_for(args: argparse.Namespace, size: int) -> RewardPool:
    """The pool of this process for ``args`` (one at a time: a new reward function or args replaces it)."""
    global _pool
    key = (id(args), args.custom_rm_path, args.rm_type, size)
    if _pool is None or _pool[0] != key:
        if _pool is None:
            import atexit

            atexit.register(close_pool)
        close_pool()
        _pool = (key, RewardPool(args, size))
    return _pool[1]


def close_pool() -> None:
    global _pool
    if _pool is not None:
        _pool[1].close()
        _pool = None
