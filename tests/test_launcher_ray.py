"""Integration with a real Ray on this CPU-only machine: the tiny config's launcher starts a head on
127.0.0.1 with 8 declared GPUs, submits `train.py --dry-run`, the job succeeds with the plan in its
log, and afterwards the launcher's Ray is gone while another Ray cluster on the node is untouched."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_module

pytestmark = pytest.mark.slow


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def ray_is_up(ray: str, port: int) -> bool:
    """Whether a Ray head answers on this GCS port (a dead one makes `ray status` wait for a timeout)."""
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex(("127.0.0.1", port)) != 0:
            return False
    return subprocess.run([ray, "status", "--address", f"127.0.0.1:{port}"], capture_output=True, check=False,
                          env={**os.environ, "RAY_AUTH_MODE": "token"}, timeout=60).returncode == 0


def gcs_processes(port: int) -> str:
    return subprocess.run(["pgrep", "-f", f"gcs_server_port={port}"], capture_output=True, text=True,
                          check=False).stdout


def test_tiny_launcher_on_a_real_local_ray(tmp_path):
    require_module("ray")
    bin_dir = Path(sys.executable).parent
    ray = str(bin_dir / "ray")
    decoy_port, decoy_dashboard = free_ports(2)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RAY_AUTH_MODE": "token"}
    subprocess.run([ray, "get-auth-token", "--generate"], env=env, capture_output=True, check=True)
    # Another user's cluster on the same node: it must survive the launch.
    decoy = subprocess.Popen(
        [ray, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(decoy_port),
         "--dashboard-port", str(decoy_dashboard), "--dashboard-agent-listen-port", str(free_ports(1)[0]),
         "--ray-client-server-port", "20101", "--num-cpus", "1", "--num-gpus", "1", "--disable-usage-stats", "--block"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not ray_is_up(ray, decoy_port):
            assert time.time() < deadline and decoy.poll() is None, "the decoy Ray cluster did not start"
            time.sleep(2)
        port, dashboard, agent = free_ports(3)  # chosen once the decoy holds its own ports
        result = subprocess.run(
            ["bash", str(ROOT / "scripts" / "run-tiny-cpu.sh"), "+misc.dry_run=true"],
            capture_output=True, text=True, cwd=tmp_path, timeout=400, check=False,
            env={**env, "BASE_FOLDER": str(tmp_path), "PYTHON": sys.executable, "SLIME_NUM_GPUS": "8",
                 "RAY_PORT": str(port), "RAY_DASHBOARD_PORT": str(dashboard), "RAY_AGENT_PORT": str(agent),
                 "RAY_CLIENT_PORT": "20102"})
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        assert "slime launch plan" in result.stdout and "succeeded" in result.stdout + result.stderr
        assert "GPUs         actor 2, critic 0, rollout 2 (shared)" in result.stdout
        assert not ray_is_up(ray, port), "the launcher's Ray is still running"
        assert gcs_processes(port) == ""
        assert ray_is_up(ray, decoy_port), "the launcher touched another Ray cluster"
    finally:
        decoy.terminate()
        decoy.wait(timeout=90)
    assert gcs_processes(decoy_port) == ""
