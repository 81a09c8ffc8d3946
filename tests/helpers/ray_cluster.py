"""A Ray head of the test session's own, on ports free at run time."""

from __future__ import annotations

import os
from pathlib import Path


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
