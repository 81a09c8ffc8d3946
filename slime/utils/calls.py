"""Calls on daemon threads, each with a deadline: a call still running at its deadline is abandoned.

A user's function (a reward) may hang. ``concurrent.futures`` would join its thread on the way
out, so the run could neither go on nor stop; here a late call is given up (its thread is left to
finish or hang, never joined, and cannot hold up the interpreter's exit), and the caller waits in
short slices, so a signal handler of the main thread (SIGTERM) runs within a fraction of a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

OK, ERROR, TIMEOUT = "ok", "error", "timeout"


@dataclass
class Outcome:
    kind: str  # OK, ERROR or TIMEOUT
    value: Any = None  # the result, or the exception raised


def call_all(function: Callable[[Any], Any], items: Sequence, workers: int, timeout: float | None) -> list[Outcome]:
    """``function(item)`` for every item, at most ``workers`` at once, each given ``timeout`` seconds."""
    outcomes: list[Outcome | None] = [None] * len(items)
    pending = list(reversed(range(len(items))))
    running: dict[int, float] = {}  # index → start time
    changed = threading.Condition()

    def work(index: int) -> None:
        try:
            outcome = Outcome(OK, function(items[index]))
        except Exception as err:  # a user's function may raise anything: it is that call's outcome
            outcome = Outcome(ERROR, err)
        with changed:
            if outcomes[index] is None:  # not abandoned meanwhile
                outcomes[index] = outcome
            changed.notify()

    with changed:
        while pending or running:
            now = time.monotonic()
            for index, started in list(running.items()):
                if outcomes[index] is not None:
                    del running[index]
                elif timeout is not None and now - started >= timeout:
                    outcomes[index] = Outcome(TIMEOUT)
                    del running[index]
            while pending and len(running) < workers:
                index = pending.pop()
                running[index] = time.monotonic()
                threading.Thread(target=work, args=(index,), daemon=True, name=f"call-{index}").start()
            if running:
                next_deadline = min(running.values()) + timeout - time.monotonic() if timeout is not None else 0.5
                changed.wait(timeout=max(0.01, min(0.5, next_deadline)))
    return outcomes  # type: ignore[return-value]
