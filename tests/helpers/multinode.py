"""Functions the multi-node tests name on the command line (module.path:function)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from slime.rollout.sglang_rollout import generate_one

_paused = threading.Lock()
_calls = [0]
_done = threading.Event()


def pause_for_a_host_loss_then_generate(args, sample, params, client):
    """Every request as usual, but the one after $SLIME_TEST_PAUSE_AFTER requests first touches
    $SLIME_TEST_PAUSED and waits (with the requests after it) until $SLIME_TEST_RESUME exists: the test
    loses a host meanwhile, so that the loss lands in a generation, never in a weight push."""
    with _paused:
        _calls[0] += 1
        if _calls[0] == int(os.environ["SLIME_TEST_PAUSE_AFTER"]) + 1:
            Path(os.environ["SLIME_TEST_PAUSED"]).touch()
            deadline = time.time() + 120
            while not Path(os.environ["SLIME_TEST_RESUME"]).exists() and time.time() < deadline:
                time.sleep(0.05)
            _done.set()
    return generate_one(args, sample, params, client)
