"""scripts/run-*.sh: dry runs print exactly the argv of the config's generated arrays; errors stop
the launcher before any Ray command; every launcher has one shape and passes ShellCheck."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from slime.arguments.parser import parse_args
from slime.config.compose import primary_configs
from tests.helpers.bash import run_shellcheck
from tests.helpers.launchers import (BASE, gcs_processes, golden_argv, golden_text, launch, launcher_of, library,
                                    multi_node_env, ray_ports, submitted_argv, words)
from tests.helpers.paths import ROOT


@pytest.mark.slow
@pytest.mark.parametrize("config", primary_configs())
def test_dry_run_submits_exactly_the_generated_arrays(config, tmp_path):
    result = launch(config, "--dry-run", env=multi_node_env(tmp_path, 15))
    assert result.returncode == 0, result.stderr
    argv = submitted_argv(result.stdout)
    entry_point = re.search(r"^SLIME_ENTRY_POINT=(\S+)$", (ROOT / "tests" / "golden" / f"{config}.sh").read_text(),
                            re.M).group(1)
    assert argv[:2] == ["python3", entry_point]  # the script the args file names: train.py or train_async.py
    assert argv[2:] == golden_argv(config)  # token by token
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)  # where the job runs: relative paths such as the role file resolve there
        parse_args(argv[2:])
    finally:
        os.chdir(cwd)
    commands = [line for line in result.stdout.splitlines()
                 if not line.startswith("#") and not line.startswith("ray get-auth-token")]
    assert commands[0] == f"cd {ROOT}"
    assert commands[1].startswith("ray start --head") and commands[1].endswith("--block &")
    nodes = int(re.search(r"on (\d+) node", subprocess.run(
        [sys.executable, "tools/generate_args.py", "--config-name", config, "--plan"],
        capture_output=True, text=True, cwd=ROOT, check=True).stdout).group(1))
    ssh = [line for line in commands if line.startswith("ssh ")]
    assert len(ssh) == nodes - 1
    assert all(words(line.removesuffix(" &"))[:3] == ["ssh", "-tt", f"node{i}"] for i, line in enumerate(ssh, 1))


@pytest.mark.slow
def test_launcher_overrides_reach_the_argv():
    result = launch("run_qwen3_4B", "--dry-run", "optimizer.lr=3e-6", "+experiment=quick_test")
    argv = submitted_argv(result.stdout)
    assert argv[argv.index("--lr") + 1] == "3e-6"
    assert argv[argv.index("--num-rollout") + 1] == "3"


def test_a_dry_run_keeps_the_args_file_its_submit_line_names(tmp_path):
    result = launch("run_tiny_cpu", "--dry-run", tmpdir=tmp_path)
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("ray job submit ")]
    runtime_env = json.loads(words(line)[words(line).index("--runtime-env-json") + 1])
    kept = Path(runtime_env["env_vars"]["SLIME_ARGS_FILE"])
    assert kept.parent == tmp_path.resolve() and kept.read_text().endswith("SLIME_ARGS_COMPLETE=1\n")
    assert result.stdout.splitlines()[-1] == f"# SLIME_ARGS_FILE above is the generated args file, kept: {kept}"
    assert submitted_argv(result.stdout)[2:] == golden_argv("run_tiny_cpu")


def test_a_dry_run_that_stops_keeps_nothing(tmp_path):
    result = launch("run_qwen3_4B", "--dry-run", env={"BASE_FOLDER": ""}, tmpdir=tmp_path)
    assert result.returncode == 1 and "BASE_FOLDER is not set" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_upstream_flags_at_the_launcher_get_the_override_they_meant():
    result = launch("run_qwen3_4B", "--dry-run", "--lr", "2e-6")
    assert result.returncode == 1 and "usage:" not in result.stderr
    assert "--lr 2e-6: the trainer's flags go through Hydra overrides here (each flag is a key of its config " \
           "group): write optimizer.lr=2e-6" in result.stderr
    assert "ray " not in result.stdout


def test_the_launchers_help_lists_the_primary_configs():
    result = launch("run_qwen3_4B", "--help")
    assert result.returncode == 0
    assert ", ".join(primary_configs()) in result.stdout
    assert "--lr 2e-6 is\noptimizer.lr=2e-6" in result.stdout


def test_a_bad_override_stops_before_ray():
    result = launch("run_qwen3_4B", "--dry-run", "rollout.global_batch_size=24")
    assert result.returncode != 0
    assert "not a multiple of --global-batch-size 24" in result.stderr
    assert "nothing was started" in result.stderr
    assert "ray " not in result.stdout


@pytest.mark.slow
def test_an_args_file_is_used_as_is(tmp_path):
    args = tmp_path / "args.sh"
    subprocess.run([sys.executable, "tools/generate_args.py", "--config-name", "run_glm4_9B", "-o", str(args)],
                   cwd=ROOT, check=True)
    result = launch("run_qwen3_4B", "--dry-run", env={"ARGS_FILE": str(args)})
    assert result.returncode == 0, result.stderr
    assert submitted_argv(result.stdout)[2:] == golden_argv("run_glm4_9B")


def test_an_args_file_cut_short_is_refused(tmp_path):
    full = subprocess.run([sys.executable, "tools/generate_args.py", "--config-name", "run_qwen3_4B"],
                          capture_output=True, text=True, cwd=ROOT, check=True).stdout
    cut = tmp_path / "args.sh"
    cut.write_text(full[: full.index("GRPO_ARGS=(")])
    result = launch("run_qwen3_4B", "--dry-run", env={"ARGS_FILE": str(cut)})
    assert result.returncode != 0 and "is incomplete" in result.stderr and "ray " not in result.stdout


def test_overrides_and_an_args_file_do_not_mix(tmp_path):
    result = launch("run_qwen3_4B", "optimizer.lr=1e-6", env={"ARGS_FILE": str(tmp_path / "x.sh")})
    assert result.returncode != 0 and "regenerate that file instead" in result.stderr


def test_missing_environment_is_reported_all_at_once():
    result = launch("run_qwen3_235B_A22B", "--dry-run", env={"BASE_FOLDER": ""})
    assert result.returncode != 0
    for text in ("BASE_FOLDER is not set", "MASTER_ADDR is not set", "HOSTFILE is not set"):
        assert text in result.stderr
    assert "ray " not in result.stdout


@pytest.mark.slow
def test_a_short_hostfile_is_refused(tmp_path):
    result = launch("run_deepseek_r1", "--dry-run", env=multi_node_env(tmp_path, 3))
    assert result.returncode != 0 and "lists 3 worker(s); this run needs 15" in result.stderr


def test_a_running_cluster_is_joined_not_started():
    result = launch("run_qwen3_4B", "--dry-run", env={"RAY_ADDRESS": "http://10.1.1.1:8265"})
    lines = result.stdout.splitlines()
    assert not any(line.startswith("ray start") for line in lines)
    assert words([x for x in lines if x.startswith("ray job submit")][0])[3:5] == ["--address", "http://10.1.1.1:8265"]


def test_config_env_reaches_the_runtime_env():
    from slime.config.overrides import override

    result = launch("run_qwen3_4B", "--dry-run", "+env.NCCL_DEBUG=WARN", override("+env.DATA_ROOT", "${BASE_FOLDER}/x"))
    line = [x for x in result.stdout.splitlines() if x.startswith("ray job submit")][0]
    import json

    env_vars = json.loads(words(line)[words(line).index("--runtime-env-json") + 1])["env_vars"]
    assert env_vars["NCCL_DEBUG"] == "WARN" and env_vars["DATA_ROOT"] == f"{BASE}/x"
    assert env_vars["PYTHONPATH"] == str(ROOT) and env_vars["CUDA_DEVICE_MAX_CONNECTIONS"] == "1"


def test_every_primary_config_has_a_launcher_of_the_one_shape():
    from slime.config.launcher_template import description_of, render_launcher

    for config in primary_configs():
        expected = render_launcher(config, description_of(ROOT / "conf" / f"{config}.yaml"))
        assert launcher_of(config).read_text() == expected, config
    launchers = {p.name for p in (ROOT / "scripts").glob("run-*.sh")}
    assert launchers == {launcher_of(config).name for config in primary_configs()}


@pytest.mark.slow
def test_shell_is_shellcheck_clean():
    files = [*sorted((ROOT / "scripts").rglob("*.sh")), ROOT / ".ci" / "run"]
    result = run_shellcheck(*files)
    assert result.stdout == "", result.stdout


def test_no_launcher_kills_processes_by_name():
    for path in (ROOT / "scripts").rglob("*.sh"):
        text = path.read_text()
        assert not re.search(r"\b(pkill|killall)\b|ray stop", text), path


def test_issue13_1_a_taken_port_is_refused_before_anything_starts():
    import socket

    with socket.socket() as holder:  # what another cluster's dashboard looks like to a new head
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        ports = ray_ports(RAY_DASHBOARD_PORT=taken)
        result = launch("run_tiny_cpu", env={**ports, "SLIME_NUM_GPUS": "8"})
    assert result.returncode == 1, result.stderr
    assert f"port {taken} (RAY_DASHBOARD_PORT) is in use on this node" in result.stderr
    assert "set RAY_DASHBOARD_PORT to a free port (" in result.stderr and "is free now)" in result.stderr
    assert result.stdout == "" and gcs_processes(ports["RAY_PORT"]) == ""


@pytest.mark.slow
def test_issue13_1_ports_that_are_no_ports_or_given_twice_are_refused():
    result = launch("run_tiny_cpu", env={"RAY_PORT": "63x", "RAY_DASHBOARD_PORT": "9", "RAY_AGENT_PORT": "9",
                                          "RAY_CLIENT_PORT": "70000", "SLIME_NUM_GPUS": "8"})
    assert result.returncode == 1 and result.stdout == ""
    assert "RAY_PORT=63x is not a port number" in result.stderr
    assert "RAY_CLIENT_PORT=70000 is not a port number" in result.stderr
    assert "RAY_AGENT_PORT=9: that port is already given to another of" in result.stderr


def test_issue13_1_cleanup_signals_only_its_own_running_children():
    outsider = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # The PID list holds a PID whose process is not the launcher's child, as after PID reuse.
        result = library(f"slime::run_background sleep 60; mine=\"${{SLIME_STARTED_PIDS[0]}}\"; "
                         f"SLIME_STARTED_PIDS+=({outsider.pid}); slime::cleanup; "
                         "if kill -0 \"${mine}\" 2>/dev/null; then echo mine-alive; else echo mine-stopped; fi")
        assert result.stdout.strip() == "mine-stopped", result.stderr
        assert outsider.poll() is None, "cleanup signalled a process the launcher did not start"
    finally:
        outsider.kill()
        outsider.wait()


def test_issue13_10_a_bad_python_does_not_hide_the_missing_variables(tmp_path):
    args = tmp_path / "args.sh"
    subprocess.run([sys.executable, "tools/generate_args.py", "--config-name", "run_qwen3_4B", "-o", str(args)],
                   cwd=ROOT, check=True)
    result = launch("run_qwen3_4B", "--dry-run", env={"ARGS_FILE": str(args), "PYTHON": "/no/such/python",
                                                      "BASE_FOLDER": ""})
    assert result.returncode == 1 and "ray " not in result.stdout
    assert "PYTHON=/no/such/python is not a command on PATH" in result.stderr
    assert "BASE_FOLDER is not set: the config refers to ${BASE_FOLDER}" in result.stderr
    alone = launch("run_qwen3_4B", "--dry-run", env={"PYTHON": "/no/such/python"})
    assert alone.returncode == 1 and "PYTHON=/no/such/python is not a command on PATH" in alone.stderr


@pytest.mark.slow
def test_issue13_15_the_ray_token_is_created_readable_by_its_owner_only(tmp_path):
    result = library("umask 022; export RAY_AUTH_MODE=token; slime::ensure_ray_token", env={"HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    token = tmp_path / ".ray" / "auth_token"
    assert token.stat().st_size > 0 and oct(token.stat().st_mode & 0o777) == oct(0o600)


@pytest.mark.slow
def test_issue13_15_hostfile_entries_starting_with_a_dash_are_refused(tmp_path):
    hostfile = tmp_path / "hosts"
    hostfile.write_text("node1\n-oProxyCommand=touch /tmp/pwned\n" + "".join(f"node{i}\n" for i in range(2, 16)))
    result = launch("run_deepseek_r1", "--dry-run", env={"MASTER_ADDR": "10.0.0.1", "HOSTFILE": str(hostfile)})
    assert result.returncode == 1 and "ssh " not in result.stdout
    assert "lists '-oProxyCommand=touch /tmp/pwned', which starts with '-' and would reach ssh as an option" \
        in result.stderr


def test_issue13_16_a_leading_equals_sign_is_quoted_for_zsh(tmp_path):
    import shutil

    from slime.config.overrides import override

    target = tmp_path / "args.sh"
    result = subprocess.run([sys.executable, "tools/generate_args.py", "--config-name", "run_tiny_cpu",
                             override("+wandb.wandb_group", "=ls"), "-o", str(target)], cwd=ROOT, check=False)
    assert result.returncode == 0
    assert "--wandb-group '=ls'" in target.read_text()
    assert library("slime::quote_line echo =ls").stdout == "echo '=ls'\n"  # the dry run's lines too
    if shutil.which("zsh"):
        read = subprocess.run(["zsh", "-c", 'source "$1" && print -r -- "${WANDB_ARGS[2]}"', "zsh", str(target)],
                              capture_output=True, text=True, env={"BASE_FOLDER": "/b", "PATH": "/usr/bin:/bin"})
        assert read.stdout == "=ls\n", read.stderr


def test_issue13_16_variables_bash_sets_itself_are_refused(tmp_path):
    (tmp_path / "mine.yaml").write_text("defaults:\n  - run_tiny_cpu\n  - _self_\nwandb:\n  wandb_group: \\${_}/x\n"
                                        "  wandb_project: \\${RANDOM}\n")
    result = subprocess.run([sys.executable, "tools/generate_args.py", "-cd", str(tmp_path), "--config-name", "mine"],
                            capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert "wandb.wandb_group: refers to ${_}, which bash sets itself" in result.stderr
    assert "wandb.wandb_project: refers to ${RANDOM}, which bash sets itself" in result.stderr


def test_issue13_16_sourcing_from_sh_says_bash_is_needed(tmp_path):
    import shutil

    dash = shutil.which("dash")
    if dash is None:
        pytest.skip("no dash here to source the file with a shell that is not bash")
    target = tmp_path / "args.sh"
    target.write_text(golden_text("run_tiny_cpu"))
    result = subprocess.run([dash, "-c", '. "$1"', "dash", str(target)], capture_output=True, text=True,
                            env={"BASE_FOLDER": "/b", "PATH": "/usr/bin:/bin"}, check=False)
    assert result.returncode == 1
    assert result.stderr == "args file of run_tiny_cpu: source it from bash (or zsh), not from sh\n"


@pytest.mark.slow
def test_issue15_13_make_train_launches_config_with_overrides(tmp_path):
    import shutil

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "BASE_FOLDER": BASE, "TMPDIR": str(tmp_path)}
    result = subprocess.run(["make", "-s", "train", "CONFIG=run_qwen3_4B", f"PYTHON={sys.executable}",
                             "OVERRIDES=--dry-run optimizer.lr=3e-6"], capture_output=True, text=True, cwd=ROOT,
                            env=env, check=False)
    assert result.returncode == 0, result.stderr
    argv = submitted_argv(result.stdout)
    assert argv[argv.index("--lr") + 1] == "3e-6"
    shown = subprocess.run(["make", "-s", "help"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "train\tlaunch CONFIG with OVERRIDES" in shown and "CONFIG=run_qwen3_4B" in shown and "OVERRIDES=" in shown
