"""The rules of a run on several nodes that hold without a cluster: what the launcher sends each worker
host over ssh, Ray's token kept private, one place for every address handed to another process, and
what a run that loses a host says (the hosts themselves: tests/scripts/test_multinode.py)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from tests.helpers.launchers import launch, library, multi_node_env, words
from tests.helpers.paths import ROOT

TINY_ON_THREE_HOSTS = ("cluster.actor_num_nodes=2", "cluster.actor_num_gpus_per_node=1", "+cluster.rollout_num_gpus=1",
                       "cluster.colocate=false", "+cluster.num_gpus_per_node=1")


@pytest.fixture(scope="module")
def three_hosts(tmp_path_factory) -> tuple[Path, str]:
    """The tiny megatron run's dry run on three hosts: the HOSTFILE, and what the launcher prints."""
    folder = tmp_path_factory.mktemp("three-hosts")
    result = launch("run_tiny_megatron", "--dry-run", *TINY_ON_THREE_HOSTS, env=multi_node_env(folder, 2))
    assert result.returncode == 0, result.stderr
    return folder / "hosts", result.stdout


def test_each_worker_host_starts_ray_with_the_launchers_auth_mode_and_a_marker_of_its_own(three_hosts):
    lines = [line for line in three_hosts[1].splitlines() if line.startswith("ssh ")]
    assert len(lines) == 2
    for index, line in enumerate(lines, 1):
        ssh, tt, host, remote = words(line.removesuffix(" &"))
        assert (ssh, tt, host) == ("ssh", "-tt", f"node{index}")
        command = words(remote.split(" && ", 1)[1])
        # `env` sets it whatever the login shell of the worker host is (without it the head refuses the worker)
        assert command[:2] == ["env", "RAY_AUTH_MODE=token"] and command[2].endswith("ray")
        assert command[3:6] == ["start", "--address", "10.0.0.1:6379"]
        marker = json.loads(command[command.index("--resources") + 1])
        assert len(marker) == 1 and re.fullmatch(rf"slime_launch_\d+_\d+_w{index}", next(iter(marker)))


def test_the_job_knows_the_command_that_launches_it_again(three_hosts):
    hostfile, printed = three_hosts
    line = next(x for x in printed.splitlines() if x.startswith("ray job submit"))
    env_vars = json.loads(words(line)[words(line).index("--runtime-env-json") + 1])["env_vars"]
    command = env_vars["SLIME_LAUNCH_COMMAND"]
    assert command.startswith(f"cd {ROOT} && BASE_FOLDER=\"$BASE_FOLDER\" MASTER_ADDR=10.0.0.1 HOSTFILE={hostfile} ")
    assert command.endswith("bash scripts/run-tiny-megatron.sh " + " ".join(TINY_ON_THREE_HOSTS))


def test_a_ray_token_others_can_read_is_made_private_and_a_dry_run_only_says_so(tmp_path):
    token = tmp_path / ".ray" / "auth_token"
    token.parent.mkdir()
    token.write_text("secret")
    token.chmod(0o644)
    shown = library("export RAY_AUTH_MODE=token SLIME_DRY_RUN=1; slime::ensure_ray_token", env={"HOME": str(tmp_path)})
    assert shown.returncode == 0 and oct(token.stat().st_mode & 0o777) == oct(0o644)
    assert f"# Ray token {token} is readable by others (mode 644): a launch makes it private (chmod 600)" in shown.stdout
    made = library("export RAY_AUTH_MODE=token; slime::ensure_ray_token", env={"HOME": str(tmp_path)})
    assert made.returncode == 0, made.stderr
    assert oct(token.stat().st_mode & 0o777) == oct(0o600) and token.read_text() == "secret"
    assert f"Ray's token {token} was readable by others (mode 644): made private (0600)" in made.stderr


def test_every_address_handed_to_another_process_comes_from_one_function():
    """The rendezvous, the router, the engines (and an engine's dist-init address), the weight-update group:
    none of the modules that hand them out names loopback itself."""
    handing_out = [*sorted((ROOT / "slime" / "ray").glob("*.py")), *sorted((ROOT / "slime" / "rollout").glob("*.py")),
                   *(ROOT / "slime" / "engines" / name for name in ("command.py", "group.py", "router.py")),
                   *(ROOT / "slime" / "backends" / name for name in ("base.py", "weight_sync.py", "torch_backend.py")),
                   *(ROOT / "slime" / "backends" / "megatron" / name for name in ("backend.py", "parallel.py"))]
    named = [str(path.relative_to(ROOT)) for path in handing_out
             if re.search(r"127\.0\.0\.1|localhost", path.read_text())]
    assert named == []
    uses = [path.name for path in handing_out if "reachable_host()" in path.read_text() or "free_address()" in path.read_text()]
    assert {"base.py", "group.py", "weight_sync.py"} <= set(uses)


def test_without_ray_every_address_is_loopback():
    from slime.utils.addresses import free_address, reachable_host

    assert reachable_host() == "127.0.0.1" and free_address()[0] == "127.0.0.1"


def args_of(tmp_path: Path, load: str | None = None, **given) -> argparse.Namespace:
    save = tmp_path / "ckpt"
    return argparse.Namespace(save=str(save), load=load or str(save), save_interval=3, **given)


def test_the_resume_note_names_the_last_saved_rollout_and_the_launch_command(tmp_path, monkeypatch):
    from slime.utils.checkpoint import write_run_record
    from slime.utils.resume import resume_note

    args = args_of(tmp_path)
    monkeypatch.setenv("SLIME_LAUNCH_COMMAND", "cd /repo && MASTER_ADDR=10.0.0.1 bash scripts/run-x.sh a=1")
    assert resume_note(args, [], "train.py") == ("no rollout was saved yet (--save " + args.save + ", --save-interval "
                                                 "3); this starts the run over:\n    cd /repo && MASTER_ADDR=10.0.0.1 "
                                                 "bash scripts/run-x.sh a=1")
    write_run_record(args.save, 5, [], args, {})
    assert resume_note(args, [], "train.py") == (f"the last rollout saved is 5 ({args.save}/iter_0000005); the run "
                                                 "resumes at rollout 6 with:\n    cd /repo && MASTER_ADDR=10.0.0.1 "
                                                 "bash scripts/run-x.sh a=1")
    elsewhere = args_of(tmp_path, load=str(tmp_path / "initial"))
    assert resume_note(elsewhere, [], "train.py").endswith(
        f"\n  with its --load set to {args.save} (ckpt.load=…): this run loads {tmp_path / 'initial'}, which is not "
        "where it saves")
    monkeypatch.delenv("SLIME_LAUNCH_COMMAND")
    monkeypatch.setenv("RAY_ADDRESS", "http://10.0.0.1:8265")
    assert resume_note(args, ["--config-name", "run_tiny_cpu", "a=b c"], "train.py").endswith(
        f"with:\n    cd {ROOT} && RAY_ADDRESS=http://10.0.0.1:8265 python3 train.py --config-name run_tiny_cpu 'a=b c'")


def test_a_lost_host_is_named_with_what_it_held():
    from slime.ray.hosts import Seat, lost_note, placement_note, spans_nodes
    from slime.ray.placement import Host

    one, two = Host("10.0.0.1", "node1", "a"), Host("10.0.0.2", "node2", "b")
    seats = [Seat("actor rank 0 of 2", one), Seat("actor rank 1 of 2", two), Seat("rollout engine 0 (http://x)", two)]
    assert spans_nodes(seats) and not spans_nodes(seats[:1])
    assert placement_note(seats) == ("placement: node1 (10.0.0.1): actor rank 0 of 2; node2 (10.0.0.2): actor rank 1 "
                                     "of 2, rollout engine 0 (http://x)")
    assert lost_note(seats, {two: "Ray marks its node dead"}) == (
        "host node2 (10.0.0.2) was lost mid-run (Ray marks its node dead); it held actor rank 1 of 2, rollout engine 0 "
        "(http://x)")
    assert Host("10.0.0.3").describe() == "10.0.0.3"
