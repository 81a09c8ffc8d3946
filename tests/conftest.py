"""The session's fixtures: the reference facts (tests/reference/), a minimal valid command line, Ray
clusters of the session's own, the tiny models and a torch engine. What tests share besides fixtures is
in tests/helpers/."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers.command_lines import MINIMAL
from tests.helpers.paths import REFERENCE, ROOT
from tests.helpers.ray_cluster import RayCluster
from tests.helpers.stack import require_module

# Every process a test starts (tools/*.py, train.py, python -c, Ray's workers) imports this checkout's
# package first, also where another checkout is the installed one.
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])


@pytest.fixture(scope="session")
def model_args() -> dict[str, list[str]]:
    return json.loads((REFERENCE / "model_args.json").read_text())


@pytest.fixture(scope="session")
def launcher_flags() -> list[str]:
    return [line.strip() for line in (REFERENCE / "launcher_flags.txt").read_text().splitlines() if line.strip()]


@pytest.fixture
def minimal() -> list[str]:
    return list(MINIMAL)


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
    from tests.helpers.engines import serve_torch_engine

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
