"""Integration with a real Ray on this CPU-only machine: the tiny config's launcher starts a head on
127.0.0.1 with 8 declared GPUs, submits `train.py --dry-run`, the job succeeds with the plan in its
log, and afterwards the launcher's Ray is gone while another Ray cluster on the node (the test
session's) is untouched; a launcher never submits to that other cluster."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.launchers import gcs_processes, library, ray_ports
from tests.helpers.paths import ROOT

pytestmark = pytest.mark.slow


def ray_is_up(cluster, port: int) -> bool:
    """Whether a Ray head answers on this GCS port (a dead one makes `ray status` wait for a timeout)."""
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex(("127.0.0.1", port)) != 0:
            return False
    return subprocess.run([cluster.ray, "status", "--address", f"127.0.0.1:{port}"], capture_output=True,
                          check=False, env=cluster.env, timeout=60).returncode == 0


def jobs_of(cluster) -> str:
    """The cluster's jobs, as `ray list jobs` prints them ("No resource in the cluster" for none)."""
    return subprocess.run([cluster.ray, "list", "jobs", "--address", cluster.dashboard, "--format", "json"],
                          capture_output=True, text=True, env=cluster.env, check=True, timeout=60).stdout


def run_tiny_launcher(cluster, tmp_path: Path, env: dict[str, str] | None = None, **ports: int):
    env = {**cluster.env, "PATH": f"{Path(cluster.ray).parent}:/usr/bin:/bin", "BASE_FOLDER": str(tmp_path),
           "PYTHON": sys.executable, "SLIME_NUM_GPUS": "8", **ray_ports(**ports), **(env or {})}
    return subprocess.run(["bash", str(ROOT / "scripts" / "run-tiny-cpu.sh"), "+misc.dry_run=true"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=400, check=False, env=env)


def test_issue13_15_tiny_launcher_on_a_real_local_ray_leaves_rays_current_cluster_file_as_it_was(ray_cluster, tmp_path):
    import tempfile

    port = int(ray_ports()["RAY_PORT"])
    # Ray's own temp folder, short (socket paths are limited) and private, holding the "current cluster"
    # file that `ray status` reads: the launcher must leave it as it found it (issue 13, item 15).
    ray_tmp = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))
    (ray_tmp / "ray").mkdir()
    (ray_tmp / "ray" / "ray_current_cluster").write_text("10.9.9.9:6379")
    try:
        result = run_tiny_launcher(ray_cluster, tmp_path, env={"RAY_TMPDIR": str(ray_tmp)}, RAY_PORT=port)
        current = (ray_tmp / "ray" / "ray_current_cluster").read_text()
    finally:
        import shutil

        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert current == "10.9.9.9:6379", "the launcher left Ray's current-cluster file pointing at its dead cluster"
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "slime launch plan" in result.stdout and "succeeded" in result.stdout + result.stderr
    assert "GPUs         actor 2, critic 0, rollout 2 (shared)" in result.stdout
    assert not ray_is_up(ray_cluster, port), "the launcher's Ray is still running"
    assert gcs_processes(str(port)) == ""
    assert ray_is_up(ray_cluster, ray_cluster.port), "the launcher touched another Ray cluster"


def test_issue13_1_a_launcher_never_submits_to_another_cluster(ray_cluster, tmp_path):
    before = jobs_of(ray_cluster)
    # Its dashboard port is the other cluster's: refused before anything starts.
    result = run_tiny_launcher(ray_cluster, tmp_path, RAY_DASHBOARD_PORT=ray_cluster.dashboard_port)
    assert result.returncode == 1
    assert f"port {ray_cluster.dashboard_port} (RAY_DASHBOARD_PORT) is in use on this node" in result.stderr
    # A dashboard that answers but is not the started head's (taken after the check): refused too.
    # A stand-in for the started head, off the captured pipes and ended with the shell, so the test
    # waits for the launcher's answer and not for it.
    waited = library(f"export RAY_AUTH_MODE=token; sleep 60 >/dev/null 2>&1 & head=$!; trap 'kill $head' EXIT; "
                     f"slime::wait_for_ray {ray_cluster.dashboard} $head slime_launch_not_this_one",
                     env=ray_cluster.env)
    assert waited.returncode == 1
    assert f"the Ray dashboard at {ray_cluster.dashboard} belongs to another cluster" in waited.stderr
    assert "nothing was submitted" in waited.stderr
    assert jobs_of(ray_cluster) == before


def test_readiness_is_asked_of_the_dashboard_over_http_with_the_token(ray_cluster, monkeypatch):
    """What the launcher's wait asks (slime.utils.ray_ready): a node with the marker and a job API that
    answers, token included; a cluster without the marker is another's; a wrong token is not ready."""
    from slime.utils import ray_ready
    from slime.utils.ports import free_ports

    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    assert ray_ready.check(ray_cluster.dashboard, "CPU") == "ready"  # every node of the session's cluster has CPU
    assert ray_ready.check(ray_cluster.dashboard, "slime_launch_0_0") == "foreign"
    assert ray_ready.main([ray_cluster.dashboard, "slime_launch_0_0", "--within", "10"]) == 2
    assert ray_ready.main([f"http://127.0.0.1:{free_ports(1)[0]}", "CPU", "--within", "0.5"]) == 1
    monkeypatch.setenv("RAY_AUTH_TOKEN", "not-the-token")
    assert ray_ready.check(ray_cluster.dashboard, "CPU") == "waiting"
