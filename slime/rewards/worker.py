"""One reward worker process of ``slime.rewards.pool``, started as

    python -m slime.rewards.worker IN_FD OUT_FD

It gets the trainer's ``sys.path`` and ``args`` once on IN_FD, loads ``--custom-rm-path`` (if any), says
on OUT_FD whether that worked, then answers one sample at a time, rewarded as the hub dispatches it
(``slime.rewards.hub.RewardDispatch``: the sample's own reward path, ``--custom-rm-path`` or the built-in
``--rm-type``), with ``(OK, reward)`` or ``(ERROR, "Type: message")`` until the pool closes the pipe."""

from __future__ import annotations

import signal
import sys
from multiprocessing.connection import Connection

from slime.rewards.pool import ERROR, OK


def _error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _serve(requests: Connection, results: Connection) -> None:
    path, args = requests.recv()
    sys.path[:] = path
    from slime.rewards.hub import RewardDispatch, reward_value

    try:
        reward = RewardDispatch(args)
    except Exception as err:  # noqa: BLE001 - the user's module may raise anything: the run's error
        results.send((ERROR, str(err) if isinstance(err, ValueError) else _error_text(err)))
        return
    results.send((OK, None))
    while True:
        try:
            sample, reward_key = requests.recv()
        except EOFError:  # the pool closed the pipe
            return
        try:
            results.send((OK, reward_value(reward(sample), reward_key)))
        except Exception as err:  # noqa: BLE001 - a reward that raises is that sample's outcome
            results.send((ERROR, _error_text(err)))


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the trainer's to handle; it ends the workers
    _serve(Connection(int(argv[0]), writable=False), Connection(int(argv[1]), readable=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
