"""A torch engine server process for tests, started with the command the engine group uses."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from slime.rollout.client import EngineError, http_get
from slime.utils.ports import free_ports
from tests.helpers.paths import ROOT


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if http_get(url, "/health_generate", timeout=5)[0] == 200:
                return
        except EngineError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the server at {url} did not come up in {timeout} s:\n{log.read_text()[-3000:]}")


@contextmanager
def serve_torch_engine(model_path: Path, seed: int = 0, key: str | None = None, started: list | None = None):
    """``python -m slime.engines.torch_engine`` on a free loopback port; yields its URL. With ``key``, the
    engine gets it as the engine group gives it (a YAML file named by ``--config``); ``started`` then gets
    the process and its log."""
    port = free_ports(1)[0]
    folder = Path(tempfile.mkdtemp(prefix="slime-test-engine-"))
    log = folder / "engine.log"
    command = [sys.executable, "-m", "slime.engines.torch_engine", "--model-path", str(model_path), "--host",
               "127.0.0.1", "--port", str(port), "--random-seed", str(seed)]
    if key is not None:
        (folder / "key.yaml").write_text(f"api-key: {key}\n")
        command += ["--config", str(folder / "key.yaml")]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    if started is not None:
        started.extend([process, log])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
