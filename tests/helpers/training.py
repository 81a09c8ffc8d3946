"""Functions the training tests name on the command line (module.path:function)."""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil

from slime.rollout.sglang_rollout import generate_one

_kill_once = threading.Lock()
_killed: list[int] = []


def _server_pids(port: int) -> set[int]:
    """The torch engine process listening on ``port`` (never anything else)."""
    pids = {c.pid for c in psutil.net_connections(kind="tcp")
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid}
    return {pid for pid in pids if "slime.engines.torch_engine" in " ".join(psutil.Process(pid).cmdline())}


def _wait_dead(process: psutil.Process) -> None:
    """Until the killed server is gone or a zombie its parent (the engine's actor) has yet to reap."""
    while True:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)


def _signal_engine_0_once(client, signum: int) -> None:
    with _kill_once:
        if not _killed:
            port = int(client.engine_urls[0].rsplit(":", 1)[1])
            for pid in _server_pids(port):
                process = psutil.Process(pid)
                process.send_signal(signum)
                if signum == signal.SIGKILL:
                    _wait_dead(process)
                _killed.append(pid)
            assert _killed, f"no torch engine listens on port {port}"


def kill_engine_then_generate(args, sample, params, client):
    """At the first request of the run, kill engine 0's server process (as a crash would) and wait until
    it is gone; then generate as usual, through the router."""
    _signal_engine_0_once(client, signal.SIGKILL)
    return generate_one(args, sample, params, client)


def freeze_engine_then_generate(args, sample, params, client):
    """At the first request of the run, stop engine 0's server process (SIGSTOP: alive, answering
    nothing, as a hung server); then generate as usual."""
    _signal_engine_0_once(client, signal.SIGSTOP)
    return generate_one(args, sample, params, client)


def broken_reward(args, sample):
    raise KeyError("answer")


def hanging_reward(args, sample):
    """A reward that never returns (a deadlocked client, say); it first touches $SLIME_TEST_HANG_MARKER if set."""
    import threading

    if os.environ.get("SLIME_TEST_HANG_MARKER"):
        open(os.environ["SLIME_TEST_HANG_MARKER"], "a").close()
    threading.Event().wait()


def hang_on_odd_samples(args, sample):
    if sample.index % 2:
        hanging_reward(args, sample)
    return 1.0


def nan_for_the_first_sample(args, sample):
    """NaN for the first sample of every rollout, a plain reward for the others."""
    return float("nan") if sample.index == 0 else 1.0


def pid_or_sleep_forever(args, sample):
    """The worker's PID as the reward; for a sample labelled "sleep", its PID written to the file its
    prompt names, then a sleep that never ends."""
    import time

    if sample.label == "sleep":
        with open(sample.prompt, "w") as out:
            out.write(str(os.getpid()))
        while True:
            time.sleep(3600)
    return float(os.getpid())


def exact_power_of_ten(args, sample):
    """What the math reward did with \\boxed{1e100000000} before its bound: 10**100000000, built under
    Python's global lock (minutes), which no thread can interrupt."""
    from fractions import Fraction

    return float(Fraction("1e100000000") > 0)


_probed = threading.Lock()


def probe_engines_then_generate(args, sample, params, client):
    """At the first request of the run: what the engines and the router answer a local process that lacks
    the run's key, and whether the key is on any process's command line, written as JSON to the file
    $SLIME_TEST_PROBE_FILE names; then generate as usual."""
    import json
    import urllib.error
    import urllib.request

    def status(url: str, path: str, method: str = "GET") -> int:
        request = urllib.request.Request(url + path, data=b"{}" if method == "POST" else None, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status
        except urllib.error.HTTPError as err:
            return err.code

    with _probed:
        out = os.environ["SLIME_TEST_PROBE_FILE"]
        if not os.path.exists(out):
            secret = client.key.reveal()
            found = {"engines": {url: {path: status(url, path, method) for path, method in (
                ("/server_info", "GET"), ("/get_weights_by_name", "POST"), ("/update_weights_from_disk", "POST"),
                ("/init_weights_update_group", "POST"), ("/release_memory_occupation", "POST"))}
                for url in client.engine_urls},
                "router": {path: status(client.url, path, method) for path, method in (
                    ("/generate", "POST"), ("/workers", "GET"))},
                "cmdlines": [p.pid for p in psutil.process_iter(["cmdline"])
                             if secret in " ".join(p.info["cmdline"] or [])]}
            with open(out, "w") as handle:
                json.dump(found, handle)
    return generate_one(args, sample, params, client)
