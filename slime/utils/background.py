"""A function run on a daemon thread, its result or exception as a ``concurrent.futures.Future``.

A daemon thread is one a stopping process does not wait for (a generation in flight when SIGTERM
comes, an HTTP call to an engine that never answers), where ``ThreadPoolExecutor``'s threads are
joined at exit."""

from __future__ import annotations

import threading
from concurrent.futures import Future


def in_background(function, *args, name: str = "background") -> Future:
    future = Future()

    def work():
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(function(*args))
            except BaseException as err:  # handed to whoever waits on the future
                future.set_exception(err)

    threading.Thread(target=work, name=name, daemon=True).start()
    return future
