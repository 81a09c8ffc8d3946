"""Several hosts for real: the tiny megatron run on a cluster of hosts built on this machine from
network namespaces (tools/netns_cluster.py: each host its own address, hostname, /etc/hosts, /etc/ssh,
home with ~/.ray, /tmp and a real sshd; the repository, the venv and the test files shared as NFS would
share them). The actor's two tensor-parallel ranks sit on two hosts and the engine on a third:

- through the launcher's own HOSTFILE + ``ssh -tt`` path, the run learns with the rewards of one node,
  no loopback address crosses a host, and closing the ssh sessions drains the workers;
- through ``RAY_ADDRESS`` on a cluster started by hand, with --use-fault-tolerance: the engine's host
  is lost and the engine comes back on the host that has room; then the host of actor rank 1 is lost
  and the run stops naming it, what it held, the last saved rollout and the command that resumes; the
  hosts come back and that command finishes the run, with the rewards of one node;
- a worker host ssh cannot reach, or that the Ray head refuses, is named before anything is submitted.

One cluster of hosts is built for the module, one hand-started Ray cluster shared by the tests that use
it (the losses are one run, asserted by three tests). The hosts need root, ``ip netns`` and sshd: where
they cannot be built the tests skip with the reason, except in CI (SLIME_REQUIRE_FULL_STACK=1), whose job
it is to prove them, where that is a failure.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from slime.cli.netns_cluster import NetnsCluster, unavailable
from tests.helpers.runs import rewards, train
from tests.helpers.stack import FULL_STACK, require_module

pytestmark = pytest.mark.slow

# The layout: actor TP 2 over two hosts of one GPU each, the engine on its own host.
LAYOUT = ("cluster.actor_num_nodes=2", "cluster.actor_num_gpus_per_node=1", "+cluster.rollout_num_gpus=1",
          "cluster.colocate=false", "+cluster.num_gpus_per_node=1")
ROLLOUTS = 12
SAMPLES_PER_ROLLOUT = 8 * 16  # run_tiny_megatron: rollout_batch_size × n_samples_per_prompt
RAY = str(Path(sys.executable).parent / "ray")
# The hand-started cluster's ports: not the launcher's defaults, which the HOSTFILE runs use meanwhile.
HAND_PORTS = {"port": "6390", "dashboard": "8275", "agent": "52375", "client": "9011"}
# Ray marks a lost node dead after its health checks fail: about 15 s by default, 3 s here.
FAST_HEALTH_CHECKS = {"RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "1000",
                      "RAY_health_check_failure_threshold": "3"}


def torch_compile_cache() -> Path:
    """Torch's compile cache (megatron compiles a few fused functions on first use): the hosts share the
    test session's, as an NFS home would, so a host's first rollout does not compile them again."""
    path = Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR") or Path(tempfile.gettempdir()) / f"torchinductor_{getpass.getuser()}")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def base(tiny_models):
    require_module("megatron.core")
    require_module("ray")
    return tiny_models


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    """Five hosts, node1 … node5 (the fifth is the room a lost engine moves to)."""
    reason = unavailable()
    if reason:
        message = f"the multi-node tests need network-namespace hosts: {reason}"
        if FULL_STACK:
            pytest.fail(message + " (CI runs them as root, with iproute2 and openssh-server installed by .ci/run)")
        pytest.skip(message)
    workdir = tmp_path_factory.mktemp("hosts")
    with NetnsCluster(5, workdir, shared=[tmp_path_factory.getbasetemp(), torch_compile_cache()]) as cluster:
        yield cluster


def host_env(base: Path, **extra: str) -> dict[str, str]:
    """What a person on a host has set to launch: the config's BASE_FOLDER, the project's Python, and
    ``extra`` (MASTER_ADDR and HOSTFILE, or RAY_ADDRESS)."""
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    return {**env, "BASE_FOLDER": str(base), "PYTHON": sys.executable, "RAY_DEDUP_LOGS": "0",
            "PATH": f"{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/sbin:/bin", **extra}


class Output:
    """A process's output, read as it comes (a thread), so a test can act at a line and time out."""

    def __init__(self, process: subprocess.Popen):
        self.process, self.lines = process, []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.time() + timeout
        while True:
            match = re.search(pattern, self.text, re.M)
            if match:
                return match
            if self.process.poll() is not None and not self.thread.is_alive():
                pytest.fail(f"the run ended ({self.process.returncode}) before /{pattern}/:\n{self.text[-4000:]}")
            if time.time() > deadline:
                self.process.kill()
                pytest.fail(f"no /{pattern}/ within {timeout:g} s:\n{self.text[-4000:]}")
            time.sleep(0.1)

    def finish(self, timeout: float) -> int:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"the run did not end within {timeout:g} s:\n{self.text[-4000:]}")
        self.thread.join(timeout=30)
        return self.process.returncode


def launch(hosts, host, env: dict, *overrides: str) -> Output:
    """The tiny megatron launcher on ``host``, its output read as it comes."""
    return Output(hosts.popen(host, ["bash", "scripts/run-tiny-megatron.sh", *overrides], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))


def placement(log: str) -> dict[str, str]:
    """What the run's placement line says is on each host: name → what it holds."""
    line = re.search(r"^slime: placement: (.*)$", log, re.M).group(1)
    return {m.group(1): m.group(2) for m in re.finditer(r"(node\d) \([\d.]+\): (.*?)(?=; node\d \(|; the |$)", line)}


def rewards_by_rollout(*logs: str) -> list[float]:
    """Each rollout's reward, from the runs' logs in order (a job's last lines may come twice, and a
    resumed run may repeat a rollout the stopped one logged after its last save): the same rollout must
    have the same reward wherever it is logged."""
    found: dict[int, float] = {}
    for log in logs:
        for number, reward in re.findall(r"^rollout (\d+)/\d+\s+reward ([\d.]+)", log, re.M):
            assert found.setdefault(int(number), float(reward)) == float(reward), (number, reward, found)
    assert sorted(found) == list(range(1, len(found) + 1)), sorted(found)
    return [found[n] for n in sorted(found)]


def learns(history: list[float]) -> bool:
    half = len(history) // 2
    return sum(history[half:]) / half > 1.3 * sum(history[:half]) / half


def cluster_processes(hosts, host, gcs: str) -> list[str]:
    """The processes on ``host`` of the Ray cluster whose GCS is ``gcs``, and its ssh sessions."""
    return [" ".join(p.info["cmdline"])[:160] for p in hosts.processes(host)
            if gcs in " ".join(p.info["cmdline"] or []) or (p.info["cmdline"] or [""])[0].startswith("sshd: root@")]


def wait_gone(hosts, host, gcs: str, timeout: float = 30) -> list[str]:
    deadline = time.time() + timeout
    while (left := cluster_processes(hosts, host, gcs)) and time.time() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture(scope="module")
def one_node(base, tmp_path_factory, training_ray) -> list[float]:
    """The same run on one node: its rewards, rollout by rollout."""
    save = tmp_path_factory.mktemp("one-node") / "ckpt"
    result = train(base, *LAYOUT, f"rollout.num_rollout={ROLLOUTS}", f"ckpt.save={save}", "ckpt.save_interval=null",
                   config="run_tiny_megatron", timeout=300, ray=training_ray)
    assert result.returncode == 0, result.stdout[-3000:]
    history = rewards(result.stdout)
    assert len(history) == ROLLOUTS
    return history


# -- (a) the launcher's HOSTFILE path -------------------------------------------------------------------
def test_the_launcher_runs_the_tiny_megatron_run_over_three_hosts_with_the_rewards_of_one_node(hosts, base, one_node,
                                                                                              tmp_path):
    node1, node2, node3 = hosts.hosts[:3]
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("# the workers\nnode2\nnode3\n")
    env = host_env(base, MASTER_ADDR=node1.address, HOSTFILE=str(hostfile))
    began = time.time()
    run = launch(hosts, node1, env, *LAYOUT, f"rollout.num_rollout={ROLLOUTS}", f"ckpt.save={tmp_path / 'ckpt'}",
                 "ckpt.save_interval=null")
    run.wait_for(r"^slime: placement: ", timeout=240)
    listening = hosts.run(node1, ["ss", "-Hltnp"]).stdout  # the head's servers while the run is up
    assert run.finish(timeout=300) == 0, run.text[-5000:]
    print(f"three hosts through the launcher: {time.time() - began:.1f} s")
    log = run.text
    # the launcher waited for both workers before it submitted (without that: "the Ray cluster has 1")
    assert "launcher: waiting for 2 worker host(s) to join: node2 node3" in log
    assert log.index("launcher: every worker host joined: node2 node3") < log.index("Job submission server address")
    # actor TP 2 over two hosts, the engine on the third; megatron's ranks meet at node1's address
    where = placement(log)
    assert (where["node1"], where["node2"]) == ("actor rank 0 of 2", "actor rank 1 of 2"), where
    assert re.fullmatch(rf"rollout engine 0 \(http://{re.escape(node3.address)}:\d+\)", where["node3"]), where
    assert f"the actor's ranks meet at {node1.address}:" in log
    assert re.search(rf"^slime: SGLang router at http://{re.escape(node1.address)}:\d+ in front of 1 engine\(s\)$", log, re.M)
    # the weights cross hosts over gloo, to exactly the trained weights
    assert "weights pushed by distributed" in log
    assert f"the weight-update group meets at {node1.address}:" in log
    lags = [float(x) for x in re.findall(r"train_rollout_logprob_abs_diff ([\d.]+)", log)]
    assert len(lags) == ROLLOUTS and max(lags) < 1e-4, lags
    # no loopback address anywhere: not in what the run printed, not in the engine's own command line
    assert "127.0.0.1" not in log
    engine_logs = re.search(r"logs in (/tmp/\S+) on each engine's host", log).group(1)
    engine_log = (node3.directory / "tmp" / Path(engine_logs).relative_to("/tmp") / "engine_0.log").read_text()
    assert f"--host {node3.address}" in engine_log and "127.0.0.1" not in engine_log
    # Ray's servers on the head bind its address where Ray lets them: dashboard, agent, client server
    for port in ("8265", "52365", "10001"):
        bound = {line.split()[3].rsplit(":", 1)[0] for line in listening.splitlines() if line.split()[3].endswith(":" + port)}
        assert bound and bound <= {node1.address, f"[::ffff:{node1.address}]", "127.0.0.1", "[::ffff:127.0.0.1]"}, \
            (port, listening)
    history = rewards(log)
    assert history == one_node, (history, one_node)
    assert learns(history), history
    # closing the ssh sessions drained the workers; the head went with the launcher
    gcs = f"{node1.address}:6379"
    for host in (node2, node3, node1):
        assert wait_gone(hosts, host, gcs) == [], host.name


def test_a_worker_host_ssh_cannot_reach_is_named_with_its_error_before_anything_starts(hosts, base, tmp_path):
    node1 = hosts.hosts[0]
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("node2\nnode9\n")
    run = launch(hosts, node1, host_env(base, MASTER_ADDR=node1.address, HOSTFILE=str(hostfile)), *LAYOUT)
    assert run.finish(timeout=120) == 1, run.text[-3000:]
    assert re.search(r"worker host node9 \(HOSTFILE \S+\) cannot be reached over ssh \(ssh node9 true exits 255\): "
                     r"ssh: Could not resolve hostname node9", run.text), run.text[-3000:]
    assert "worker host node2" not in run.text  # node2 answers
    assert "starting a Ray head" not in run.text


def test_a_worker_host_the_ray_head_refuses_is_named_with_its_ssh_log_and_nothing_is_submitted(hosts, base, tmp_path):
    node1, node2, node3 = hosts.hosts[:3]
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("node2\nnode3\n")
    token = node3.directory / "home" / ".ray" / "auth_token"
    kept = token.read_text()
    token.write_text("not-the-cluster-token")  # node3's token differs from the head's
    try:
        run = launch(hosts, node1, host_env(base, MASTER_ADDR=node1.address, HOSTFILE=str(hostfile)), *LAYOUT)
        assert run.finish(timeout=180) == 1, run.text[-3000:]
    finally:
        token.write_text(kept)
    assert re.search(r"launcher: worker host node3 was refused by the Ray head at [\d.]+:6379: its Ray token differs "
                     r"from this node's", run.text), run.text[-3000:]
    assert "InvalidAuthToken" in run.text and "Nothing was submitted" in run.text
    assert "Job submission server address" not in run.text
    for host in (node2, node3, node1):
        assert wait_gone(hosts, host, f"{node1.address}:6379") == [], host.name


# -- (b, c, d) a cluster started by hand, hosts lost mid-run ------------------------------------------------
class HandCluster:
    """Ray started by hand on the hosts: the head on node1 without GPUs (where the jobs' drivers run),
    one GPU on each other host; each ``ray start --block`` ends with SIGTERM."""

    def __init__(self, hosts, logs: Path):
        self.hosts, self.logs, self.processes = hosts, logs, {}
        self.head = hosts.hosts[0]
        self.gcs = f"{self.head.address}:{HAND_PORTS['port']}"
        self.dashboard = f"http://{self.head.address}:{HAND_PORTS['dashboard']}"
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", **FAST_HEALTH_CHECKS}
        self.env.pop("RAY_ADDRESS", None)

    def _start(self, host, *args: str) -> None:
        with open(self.logs / f"{host.name}.log", "ab") as log:
            self.processes[host.name] = self.hosts.popen(
                host, [RAY, "start", *args, "--dashboard-agent-listen-port", HAND_PORTS["agent"],
                       "--disable-usage-stats", "--block"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)

    def start(self) -> HandCluster:
        self._start(self.head, "--head", "--node-ip-address", self.head.address, "--port", HAND_PORTS["port"],
                    "--dashboard-host", self.head.address, "--dashboard-port", HAND_PORTS["dashboard"],
                    "--ray-client-server-port", HAND_PORTS["client"], "--num-gpus", "0")
        self._ask("CPU", timeout=120)
        for host in self.hosts.hosts[1:]:
            self.join(host, wait=False)
        self._ask("--missing", *(f"host_{h.name}" for h in self.hosts.hosts[1:]), timeout=120)
        return self

    def join(self, host, wait: bool = True) -> None:
        self._start(host, "--address", self.gcs, "--num-gpus", "1", "--resources", json.dumps({f"host_{host.name}": 1}))
        if wait:
            self._ask("--missing", f"host_{host.name}", timeout=120)

    def _ask(self, *args: str, timeout: float) -> None:
        asked = self.hosts.run(self.head, [sys.executable, "-m", "slime.utils.ray_ready", self.dashboard, *args,
                                           "--within", str(timeout)], env=self.env, timeout=timeout + 30)
        assert asked.returncode == 0, (asked.stdout, asked.stderr, self.logs)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()  # nsenter ends; `ray start` gets SIGTERM and drains its node
        for process in self.processes.values():
            process.wait(timeout=60)


@pytest.fixture(scope="module")
def hand_cluster(hosts, tmp_path_factory):
    cluster = HandCluster(hosts, tmp_path_factory.mktemp("hand-ray"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def hosts_lost(one_node, hosts, hand_cluster, base, tmp_path_factory):  # one_node first: not beside five Ray nodes
    """One run on the hand-started cluster, by RAY_ADDRESS, with --use-fault-tolerance and a save every 3
    rollouts. At the first request of rollout 3 the engine's host is lost (the requests wait meanwhile, so
    the loss lands in a generation); after the save of rollout 6 the host of actor rank 1 is lost. Both
    hosts are booted again and rejoin, and the command the run's error gives is run as it is."""
    work = tmp_path_factory.mktemp("losses")
    paused, resume = work / "paused", work / "resume"
    env = host_env(base, RAY_ADDRESS=hand_cluster.dashboard)
    save = work / "ckpt"
    began = time.time()
    run = launch(hosts, hand_cluster.head, env, *LAYOUT, f"rollout.num_rollout={ROLLOUTS}", f"ckpt.save={save}",
                 "ckpt.save_interval=3", "+rollout.use_fault_tolerance=true",
                 "+rollout.custom_generate_function_path=tests.helpers.multinode:pause_for_a_host_loss_then_generate",
                 f"+env.SLIME_TEST_PAUSE_AFTER={2 * SAMPLES_PER_ROLLOUT}", f"+env.SLIME_TEST_PAUSED={paused}",
                 f"+env.SLIME_TEST_RESUME={resume}")
    run.wait_for(r"^slime: placement: ", timeout=240)
    where = placement(run.text)
    engine_host = hosts.host(next(name for name, held in where.items() if "rollout engine 0" in held))
    worker_host = hosts.host(next(name for name, held in where.items() if "actor rank 1 of 2" in held))
    spare = next(h for h in hosts.hosts[1:] if h.name not in where)
    deadline = time.time() + 120
    while not paused.exists():
        assert run.process.poll() is None and time.time() < deadline, run.text[-4000:]
        time.sleep(0.05)
    hosts.lose(engine_host)
    resume.touch()
    run.wait_for(r"^slime: rollout engine 0 is back at ", timeout=180)
    run.wait_for(r"^rollout 6/12 ", timeout=180)  # saved (every 3 rollouts) before its line is printed
    hosts.lose(worker_host)
    stopped = run.finish(timeout=180)
    first_seconds = time.time() - began
    saved = int((save / "latest_checkpointed_iteration.txt").read_text())
    for host in (engine_host, worker_host):
        hosts.restore(host)
        hand_cluster.join(host)
    command = re.search(r"the run resumes at rollout \d+ with:\n    (.*)$", run.text, re.M)
    assert command, run.text[-4000:]
    began = time.time()
    resumed = hosts.run(hand_cluster.head, ["bash", "-c", command.group(1)], env=env, timeout=400)
    print(f"lost hosts: the first run {first_seconds:.1f} s, the resumed one {time.time() - began:.1f} s")
    (work / "first.log").write_text(run.text)  # kept for whoever reads a failure
    (work / "resumed.log").write_text(resumed.stdout + resumed.stderr)
    return {"first": run.text, "stopped": stopped, "resumed": resumed.stdout + resumed.stderr,
            "resumed_code": resumed.returncode, "command": command.group(1), "engine_host": engine_host,
            "worker_host": worker_host, "spare": spare, "saved": saved,
            "dashboard": hand_cluster.dashboard}


def test_b_a_run_by_ray_address_on_a_hand_started_cluster_learns_with_the_rewards_of_one_node(hosts_lost, one_node):
    first, resumed = hosts_lost["first"], hosts_lost["resumed"]
    assert "starting a Ray head" not in first and "Job submission server address" in first  # joined, not started
    assert len(placement(first)) == 3 and "node1" not in placement(first)  # three hosts; the head holds no GPU
    history = rewards_by_rollout(first, resumed)
    assert history == one_node, (history, one_node)
    assert learns(history), history


def test_c_a_lost_worker_host_is_named_with_its_ranks_the_last_save_and_the_command_that_resumes(hosts_lost):
    worker, first, saved = hosts_lost["worker_host"], hosts_lost["first"], hosts_lost["saved"]
    assert hosts_lost["stopped"] == 1, first[-4000:]
    assert re.search(rf"^train\.py: host {worker.name} \({re.escape(worker.address)}\) was lost mid-run \((Ray marks its "
                     rf"node dead|its raylet at {re.escape(worker.address)}:\d+ takes no connection)\); it held actor "
                     rf"rank 1 of 2\. The run stops: the last rollout saved is {saved} \(\S+/iter_{saved:07d}\); the run "
                     rf"resumes at rollout {saved + 1} with:$", first, re.M), first[-4000:]
    assert f"RAY_ADDRESS={hosts_lost['dashboard']} " in hosts_lost["command"]
    assert "bash scripts/run-tiny-megatron.sh cluster.actor_num_nodes=2" in hosts_lost["command"]
    assert hosts_lost["resumed_code"] == 0, hosts_lost["resumed"][-4000:]
    assert f"at rollout {saved}: model and optimizer loaded, continuing at rollout {saved + 1}" in hosts_lost["resumed"]
    assert re.findall(r"^rollout (\d+)/", hosts_lost["resumed"], re.M) == [str(n) for n in range(saved + 2, ROLLOUTS + 1)]


def test_d_with_fault_tolerance_a_lost_engine_host_moves_the_engine_to_a_host_with_room(hosts_lost, one_node):
    first, lost, spare = hosts_lost["first"], hosts_lost["engine_host"], hosts_lost["spare"]
    assert re.search(rf"^slime: rollout engine 0 \(http://{re.escape(lost.address)}:\d+ on host {re.escape(lost.address)}; "
                     rf"log \S+\) lost its host {lost.name} \({re.escape(lost.address)}\) \(.*\): restarting it "
                     rf"\(--use-fault-tolerance\)$", first, re.M), first[-4000:]
    assert f"slime: rollout engine 0 moves to {spare.name} ({spare.address})" in first
    assert re.search(rf"^slime: rollout engine 0 is back at http://{re.escape(spare.address)}:\d+ with the current weights$",
                     first, re.M)
    # the rollouts around the loss are those of one node, generated with exactly the trained weights
    history = rewards_by_rollout(first)
    assert len(history) >= 6 and history == one_node[:len(history)], (history, one_node)
    lags = [float(x) for x in re.findall(r"train_rollout_logprob_abs_diff ([\d.]+)", first)]
    assert max(lags) < 1e-4, lags


# -- the launcher's wait, against a real Ray on this machine -------------------------------------------------
def test_the_wait_for_worker_hosts_is_bounded_and_names_those_missing_with_their_ssh_logs(ray_cluster, tmp_path):
    from tests.helpers.launchers import library

    log = tmp_path / "ssh-node7.log"
    log.write_text("\x1b[32mLocal node IP\x1b[39m: 10.0.0.7\r\nConnecting to 10.0.0.1:6379\r\n")
    setup = (f"export RAY_AUTH_MODE=token; workers=(node7); worker_markers=(slime_launch_never_w1); "
             f"SLIME_WORKER_LOGS=({log}); head=10.0.0.1; port=6379; ")
    waited = library(setup + "sleep 60 >/dev/null 2>&1 & worker_pids=($!); trap 'kill ${worker_pids[0]}' EXIT; "
                     f"SLIME_JOIN_TIMEOUT=2 slime::wait_for_workers {ray_cluster.dashboard}", env=ray_cluster.env)
    assert waited.returncode == 1, waited.stderr
    assert "launcher: worker host(s) node7 did not join the Ray head at 10.0.0.1:6379 within 2 s (SLIME_JOIN_TIMEOUT); " \
           "nothing was submitted." in waited.stderr
    assert f"launcher: node7: its ssh log {log} ends:" in waited.stderr
    assert "    Connecting to 10.0.0.1:6379" in waited.stderr and "\x1b" not in waited.stderr
    ended = library(setup + "(exit 3) & worker_pids=($!); sleep 0.5; "
                    f"slime::wait_for_workers {ray_cluster.dashboard}", env=ray_cluster.env)
    assert ended.returncode == 1, ended.stderr
    assert "worker host node7 did not join the Ray head at 10.0.0.1:6379: its ssh session ended (exit 3)" in ended.stderr


def test_which_worker_markers_have_joined_is_asked_of_the_dashboard(ray_cluster, monkeypatch):
    from slime.utils import ray_ready

    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    assert ray_ready.missing_markers(ray_cluster.dashboard, ["CPU", "slime_launch_0_0_w1"]) == ["slime_launch_0_0_w1"]
    assert ray_ready.main([ray_cluster.dashboard, "--missing", "CPU", "--within", "5"]) == 0
