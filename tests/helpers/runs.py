"""Tiny training runs through train.py in a subprocess, and what their logs and processes show."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.helpers.paths import ROOT
from tests.helpers.stack import require_module

# One trainer rank and one engine: fewer processes to start where two ranks add nothing to the test.
ONE_GPU = "cluster.actor_num_gpus_per_node=1"
# ... and two prompts per rollout, for runs that end early
ONE_RANK = ["cluster.actor_num_gpus_per_node=1", "rollout.rollout_batch_size=2", "rollout.global_batch_size=16"]


def train(base: Path, *overrides: str, config: str = "run_tiny_cpu", timeout: int = 400, wait: bool = True,
          mark: str = "", ray=None, env: dict[str, str] | None = None):
    """``train.py`` in a subprocess; every process it starts (Ray, actors, engines, router) inherits
    SLIME_TEST_RUN=``mark``, by which ``leftovers`` finds them. With ``ray`` (the session's
    ``training_ray``) the run joins that cluster instead of starting its own: its actors are then that
    cluster's processes, which ``leftovers`` does not see. ``env`` adds to the environment."""
    env = {**os.environ, "BASE_FOLDER": str(base), "RAY_DEDUP_LOGS": "0", "SLIME_TEST_RUN": mark or uuid.uuid4().hex,
           **(env or {})}
    env.pop("RAY_ADDRESS", None)
    if ray is not None:
        env.update(RAY_ADDRESS=ray.gcs, RAY_AUTH_MODE="token")
    command = [sys.executable, "train.py", "--config-name", config, *overrides]
    if not wait:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def rewards(log: str) -> list[float]:
    return [float(x) for x in re.findall(r"^rollout \d+/\d+\s+reward ([\d.]+)", log, re.M)]


def leftovers(mark: str, timeout: float = 30) -> list[str]:
    """The processes of the run marked ``mark`` still alive ``timeout`` s after it ended (Ray and the
    engines stop asynchronously); other runs on the machine, other engineers' included, do not count."""
    import psutil

    deadline = time.time() + timeout
    while True:
        alive = []
        for process in psutil.process_iter(["pid", "name"]):
            try:
                if process.environ().get("SLIME_TEST_RUN") == mark and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{process.info['pid']} {process.info['name']}")
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        if not alive or time.time() > deadline:
            return alive
        time.sleep(0.2)


def train_one_rank(base: Path, *overrides: str, wait: bool = True, env: dict[str, str] | None = None):
    """``train`` on ONE_RANK: one trainer rank, one engine, two prompts per rollout."""
    require_module("ray")
    return train(base, *ONE_RANK, *overrides, wait=wait, env=env)
