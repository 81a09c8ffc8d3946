"""The launchers (scripts/run-*.sh) and their library (scripts/lib/launch.sh) run as a user runs them, in a
bare environment, and what their dry runs print, read back."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tests.helpers.bash import source_arrays, variables_of
from tests.helpers.paths import ROOT

BASE = "/data/base folder"


def launcher_of(config: str) -> Path:
    from slime.config.launcher_template import launcher_name

    return ROOT / "scripts" / launcher_name(config)


def golden_text(config: str) -> str:
    return (ROOT / "tests" / "golden" / f"{config}.sh").read_text()


def launch(config: str, *args: str, env: dict[str, str] | None = None,
           tmpdir: Path | None = None) -> subprocess.CompletedProcess:
    """The launcher of ``config`` with ``args``; its temporary files (a dry run keeps its args file) go to
    ``tmpdir``, or to a folder removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="slime-launch-test-") as own:
        environment = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", **variables_of(golden_text(config), BASE),
                       "BASE_FOLDER": BASE, "PYTHON": sys.executable, "TMPDIR": str(tmpdir or own), **(env or {})}
        return subprocess.run(["bash", str(launcher_of(config)), *args], capture_output=True, text=True,
                              env=environment, cwd="/", check=False)


def words(line: str) -> list[str]:
    """Split a printed command the way bash would."""
    result = subprocess.run(["bash", "-c", 'eval "set -- $1"; printf "%s\\0" "$@"', "bash", line],
                            capture_output=True, check=True)
    return result.stdout.decode().split("\0")[:-1]


def submitted_argv(stdout: str) -> list[str]:
    [line] = [line for line in stdout.splitlines() if line.startswith("ray job submit ")]
    tokens = words(line)
    return tokens[tokens.index("--") + 1:]


def golden_argv(config: str) -> list[str]:
    text = golden_text(config)
    arrays = source_arrays(text, {**variables_of(text, BASE), "BASE_FOLDER": BASE})
    return [token for name, values in arrays.items() if name.endswith("_ARGS") for token in values]


def multi_node_env(tmp_path: Path, workers: int) -> dict[str, str]:
    hostfile = tmp_path / "hosts"
    hostfile.write_text("# workers\n" + "".join(f"node{i}\n" for i in range(1, workers + 1)))
    return {"MASTER_ADDR": "10.0.0.1", "HOSTFILE": str(hostfile)}


def library(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run bash code with scripts/lib/launch.sh sourced, as a launcher has it."""
    environment = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHON": sys.executable, **(env or {})}
    return subprocess.run(["bash", "-c", f'set -euo pipefail; source "$1"; {script}', "bash",
                           str(ROOT / "scripts" / "lib" / "launch.sh")],
                          capture_output=True, text=True, env=environment, cwd=ROOT, check=False, timeout=120)


def ray_ports(**given: int) -> dict[str, str]:
    from slime.utils.ports import free_ports

    names = ("RAY_PORT", "RAY_DASHBOARD_PORT", "RAY_AGENT_PORT", "RAY_CLIENT_PORT")
    return {name: str(given.get(name) or port) for name, port in zip(names, free_ports(len(names)))}


def gcs_processes(port: str) -> str:
    return subprocess.run(["pgrep", "-f", f"gcs_server_port={port}"], capture_output=True, text=True,
                          check=False).stdout
