"""Shared fixtures: the reference facts (tests/reference/) and a minimal valid command line."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference"
# Every process a test starts (tools/*.py, train.py, python -c, Ray's workers) imports this checkout's
# package first, also where another checkout is the installed one.
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])

# CI sets this so a missing runtime package fails the run instead of skipping its tests.
FULL_STACK = os.environ.get("SLIME_REQUIRE_FULL_STACK") == "1"


def require_module(name: str):
    """Skip when ``name`` is not installed, except in CI where the full stack must be present."""
    if importlib.util.find_spec(name) is not None:
        return
    if FULL_STACK:
        pytest.fail(f"{name} is not installed, but SLIME_REQUIRE_FULL_STACK=1 requires it")
    pytest.skip(f"{name} is not installed")


@pytest.fixture(scope="session")
def model_args() -> dict[str, list[str]]:
    return json.loads((REFERENCE / "model_args.json").read_text())


@pytest.fixture(scope="session")
def launcher_flags() -> list[str]:
    return [line.strip() for line in (REFERENCE / "launcher_flags.txt").read_text().splitlines() if line.strip()]


# The smallest command line that validates: a tiny dense model on one 8-GPU node, colocated.
TINY_MODEL = ["--num-layers", "2", "--hidden-size", "64", "--num-attention-heads", "8"]
MINIMAL_RUN = [
    "--hf-checkpoint", "/models/tiny", "--prompt-data", "/data/train.jsonl",
    "--rollout-batch-size", "8", "--n-samples-per-prompt", "4", "--num-rollout", "10",
    "--lr", "1e-6", "--colocate",
]
MINIMAL = TINY_MODEL + MINIMAL_RUN


@pytest.fixture
def minimal() -> list[str]:
    return list(MINIMAL)


class RayCluster:
    """A Ray head this test session started on ports free at run time; ``stop()`` ends exactly it."""

    def __init__(self, workdir: Path, num_cpus: int = 1, num_gpus: int = 0, env: dict | None = None):
        import subprocess
        import sys

        from slime.utils.ports import free_ports

        self.ray = str(Path(sys.executable).parent / "ray")
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", **(env or {})}
        self.env.pop("RAY_ADDRESS", None)
        self.port, self.dashboard_port, agent, client = free_ports(4)
        self.gcs = f"127.0.0.1:{self.port}"
        self.dashboard = f"http://127.0.0.1:{self.dashboard_port}"
        subprocess.run([self.ray, "get-auth-token", "--generate"], env=self.env, capture_output=True, check=True)
        self.process = subprocess.Popen(
            [self.ray, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(self.port),
             "--dashboard-host", "127.0.0.1", "--dashboard-port", str(self.dashboard_port),
             "--dashboard-agent-listen-port", str(agent), "--ray-client-server-port", str(client),
             "--num-cpus", str(num_cpus), "--num-gpus", str(num_gpus), "--disable-usage-stats", "--block"],
            cwd=workdir, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait(self, timeout: float = 120) -> "RayCluster":
        """Until its dashboard takes requests (which needs the GCS)."""
        import subprocess
        import time

        deadline = time.time() + timeout
        while subprocess.run([self.ray, "job", "list", "--address", self.dashboard], env=self.env,
                             capture_output=True, check=False, timeout=60).returncode != 0:
            if self.process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the test session's Ray head did not start (exit {self.process.poll()})")
            time.sleep(1)
        return self

    def stop(self) -> None:
        """SIGTERM to the `ray start --block` this session started: it stops its own processes."""
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=90)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """One Ray cluster shared by the tests that need one (as "another cluster on the node", or to run on)."""
    require_module("ray")
    cluster = RayCluster(tmp_path_factory.mktemp("ray-cluster"))
    try:
        yield cluster.wait()
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def training_ray(tmp_path_factory):
    """A Ray cluster that tiny runs join by RAY_ADDRESS, as a Ray job joins its launcher's cluster (its
    workers import the project from PYTHONPATH, as the launcher's runtime environment gives it): Ray's
    start-up is paid once. Tests of what a run leaves behind when it ends start their own Ray."""
    require_module("ray")
    cluster = RayCluster(tmp_path_factory.mktemp("ray-training"), num_cpus=2, num_gpus=8,
                         env={"PYTHONPATH": str(ROOT)})
    try:
        yield cluster.wait()
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    """The tiny model (tiny-cpu) and the toy tasks (tools/make_tiny_model.py), built once per test session."""
    import subprocess
    import sys

    require_module("transformers")
    base = tmp_path_factory.mktemp("tiny")
    subprocess.run([sys.executable, "tools/make_tiny_model.py", "--out", str(base), "--only", "tiny"], cwd=ROOT,
                   check=True, capture_output=True)
    return base


@pytest.fixture(scope="session")
def torch_engine(tiny_base):
    """One torch engine server process on loopback, shared by the tests that only send it requests."""
    from tests.helpers_engines import serve_torch_engine

    with serve_torch_engine(tiny_base / "tiny-cpu") as url:
        yield url


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Every tiny model and task of tools/make_tiny_model.py, built once per test session."""
    import subprocess
    import sys

    require_module("transformers")
    base = tmp_path_factory.mktemp("tiny-models")
    subprocess.run([sys.executable, "tools/make_tiny_model.py", "--out", str(base)], cwd=ROOT, check=True,
                   capture_output=True)
    return base
