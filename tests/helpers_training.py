"""Functions the training tests name on the command line (module.path:function)."""

from __future__ import annotations

import os
import signal

import psutil

from slime.rollout.sglang_rollout import generate_one


def kill_engine_then_generate(args, sample, params, client):
    """Kill the engine process behind the first URL (as a crash would), then generate as usual."""
    port = int(client.urls[0].rsplit(":", 1)[1])
    for connection in psutil.net_connections(kind="tcp"):
        if connection.laddr and connection.laddr.port == port and connection.status == psutil.CONN_LISTEN and connection.pid:
            os.kill(connection.pid, signal.SIGKILL)
    return generate_one(args, sample, params, client)  # round robin reaches the dead engine within two calls


def broken_reward(args, sample):
    raise KeyError("answer")
