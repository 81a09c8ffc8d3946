#!/usr/bin/env python3
"""A cluster of hosts on this one machine, for the multi-node tests and by hand: each host is a
network namespace with its own address on a bridge (which lives in a namespace of its own), private
mount, UTS and PID namespaces (its own hostname, /etc/hosts, /etc/ssh, home with ~/.ray, /tmp, /run
and /dev/shm) and a real sshd on its own address with its own host key. The repository, the Python
environment and the given shared folders are the same paths on every host, as NFS would share them.
Traffic stays inside these namespaces: nothing is routed to the machine's own network.

    sudo python tools/netns_cluster.py --hosts 3                  # build, print how to enter, wait for Ctrl-C
    sudo python tools/netns_cluster.py --hosts 3 -- bash -l       # a shell on node1; torn down when it exits

Each host's PID 1 is this file run with ``--host-init``: it mounts the host's private folders, starts
its sshd and reaps orphans; killing it (``lose``) ends every process of the host at once. ``close``
ends every host by the PID of its init, then deletes the namespaces this cluster created, by name,
and checks that none is left. Nothing is written to the machine's /etc or ~/.ssh.

Needs root, ``ip netns`` (iproute2), ``unshare``/``nsenter`` (util-linux) and OpenSSH's ``sshd``,
``ssh`` and ``ssh-keygen``; ``unavailable()`` says which is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
TOOLS = ("ip", "unshare", "nsenter", "setpriv", "ssh", "ssh-keygen", "mount")
ROOT = Path(__file__).resolve().parents[2]
SUBNET = "10.213.{octet}.0/24"
READY_TIMEOUT = 30.0


class ClusterError(RuntimeError):
    """The cluster could not be built, or not torn down completely."""


def unavailable() -> str | None:
    """Why a cluster cannot be built here, or None when it can."""
    if os.geteuid() != 0:
        return "namespaced hosts need root (ip netns, mount and unshare)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not Path(SSHD).is_file():
        missing.append(SSHD)
    if missing:
        return f"{', '.join(missing)} not found (apt-get install iproute2 openssh-server openssh-client util-linux)"
    probe = f"slimeprobe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        return f"ip netns add fails here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


def _run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ClusterError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def _namespaces() -> set[str]:
    return {line.split()[0] for line in _run("ip", "netns", "list").splitlines() if line.strip()}


@dataclass
class Host:
    """One host: ``name`` resolves to ``address`` on every host of its cluster."""

    name: str
    address: str
    namespace: str
    directory: Path
    process: subprocess.Popen | None = None  # the `ip netns exec … unshare` whose child is the host's init
    init_pid: int | None = None  # the host's PID 1, as this machine numbers it

    @property
    def log(self) -> Path:
        """The init's and sshd's output."""
        return self.directory / "init.log"


class NetnsCluster:
    """``count`` hosts node1…nodeN at 10.213.X.1…N, X chosen free when built. Use as a context manager,
    or ``build()`` then ``close()``."""

    def __init__(self, count: int, workdir: Path, shared: list[str | Path] = (), prefix: str = "slimenet"):
        self.count, self.workdir, self.prefix = count, Path(workdir), prefix
        self.shared = sorted({str(Path(p).resolve()) for p in [ROOT, sys.prefix, sys.base_prefix, *shared]})
        self.hosts: list[Host] = []
        self.bridge: str | None = None  # the bridge's namespace, created first: its name claims the subnet
        self.created: list[str] = []  # every namespace this cluster created, in order
        self.octet: int | None = None
        self.token = secrets.token_hex(32)  # Ray's auth token, the same in every host's ~/.ray (as an admin copies it)

    def __enter__(self) -> NetnsCluster:
        try:
            self.build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- building --------------------------------------------------------------------------------
    def build(self) -> NetnsCluster:
        reason = unavailable()
        if reason:
            raise ClusterError(reason)
        self._claim_subnet()
        self._bridge_up()
        keys = self._keys()
        for index in range(1, self.count + 1):
            host = Host(f"node{index}", f"10.213.{self.octet}.{index}", f"{self.prefix}{self.octet}-h{index}",
                        self.workdir / f"node{index}")
            self._wire(host, index)
            self.hosts.append(host)
        for host in self.hosts:
            self._prepare(host, keys)
        for host in self.hosts:
            self._start(host)
        for host in self.hosts:
            self._wait_ready(host)
        return self

    def _claim_subnet(self) -> None:
        """The bridge namespace's name carries the subnet's third octet; creating it is the claim, so two
        clusters built at once (two test sessions) never share a name or a subnet."""
        taken = _namespaces()
        for octet in random.sample(range(256), 256):
            name = f"{self.prefix}{octet}-br"
            if name in taken:
                continue
            made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=False)
            if made.returncode == 0:
                self.bridge, self.octet = name, octet
                self.created.append(name)
                return
        raise ClusterError(f"every subnet {SUBNET.format(octet='*')} is taken by another cluster")

    def _bridge_up(self) -> None:
        _run("ip", "-n", self.bridge, "link", "set", "lo", "up")
        _run("ip", "-n", self.bridge, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", self.bridge, "link", "set", "br0", "up")

    def _wire(self, host: Host, index: int) -> None:
        """The host's namespace, and a veth from its eth0 to the bridge, made inside the namespaces."""
        _run("ip", "netns", "add", host.namespace)
        self.created.append(host.namespace)
        port = f"h{index}"
        _run("ip", "-n", self.bridge, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", host.namespace)
        _run("ip", "-n", self.bridge, "link", "set", port, "master", "br0", "up")
        _run("ip", "-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _run("ip", "-n", host.namespace, "link", "set", "eth0", "up")
        _run("ip", "-n", host.namespace, "link", "set", "lo", "up")

    def _keys(self) -> dict[str, Path]:
        """The client key every host's ssh uses (each host's sshd accepts it)."""
        keys = self.workdir / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        os.chmod(keys, 0o700)
        client = keys / "client_key"
        if not client.exists():
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "netns-cluster", "-f", str(client))
        return {"client": client, "client_pub": client.with_suffix(".pub")}

    def _prepare(self, host: Host, keys: dict[str, Path]) -> None:
        """The host's private folders: /etc/ssh (sshd and ssh client configuration, host key), home
        (~/.ray/auth_token), /tmp, and its /etc/hosts."""
        etc_ssh, home, tmp = host.directory / "etc-ssh", host.directory / "home", host.directory / "tmp"
        for folder in (etc_ssh, home / ".ray", tmp):
            folder.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o1777)
        os.chmod(home, 0o700)
        host_key = etc_ssh / "ssh_host_ed25519_key"
        if not host_key.exists():
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", str(host_key))
        shutil.copy2(keys["client"], etc_ssh / "client_key")
        shutil.copy2(keys["client_pub"], etc_ssh / "authorized_keys")
        if Path("/etc/ssh/moduli").is_file():  # read, never written
            shutil.copy2("/etc/ssh/moduli", etc_ssh / "moduli")
        (etc_ssh / "sshd_config").write_text("\n".join([
            f"ListenAddress {host.address}", "Port 22", "HostKey /etc/ssh/ssh_host_ed25519_key", "PidFile none",
            "UsePAM no", "StrictModes no", "PermitRootLogin prohibit-password", "PubkeyAuthentication yes",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "AuthorizedKeysFile /etc/ssh/authorized_keys",
            "PrintMotd no", "PrintLastLog no", "X11Forwarding no", "AllowTcpForwarding no", "UseDNS no",
            "MaxStartups 50", "LogLevel INFO", ""]))
        (etc_ssh / "ssh_config").write_text("\n".join([
            "Host *", "  IdentityFile /etc/ssh/client_key", "  IdentitiesOnly yes",
            "  UserKnownHostsFile /etc/ssh/ssh_known_hosts", "  GlobalKnownHostsFile /etc/ssh/ssh_known_hosts",
            "  StrictHostKeyChecking yes", "  BatchMode yes", "  ConnectTimeout 5", "  ServerAliveInterval 5",
            "  ServerAliveCountMax 3", "  LogLevel ERROR", ""]))
        token = home / ".ray" / "auth_token"
        token.write_text(self.token)
        os.chmod(token, 0o600)
        (host.directory / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n" +
                                              "".join(f"{h.address} {h.name}\n" for h in self.hosts))

    def _known_hosts(self) -> str:
        lines = []
        for host in self.hosts:
            key = (host.directory / "etc-ssh" / "ssh_host_ed25519_key.pub").read_text().split()[:2]
            lines.append(f"{host.name},{host.address} {' '.join(key)}\n")
        return "".join(lines)

    def _host_config(self, host: Host) -> Path:
        (host.directory / "etc-ssh" / "ssh_known_hosts").write_text(self._known_hosts())
        tmp = str(Path("/tmp").resolve())
        shared_under = {target: [p for p in self.shared if p != target and p.startswith(target + "/")]
                        for target in ("/tmp", _home())}
        for path in self.shared:
            for private in ("/etc", "/run", "/dev", "/proc", "/sys"):
                if path == private or path.startswith(private + "/"):
                    raise ClusterError(f"{path} cannot be shared: it lies in {private}, which the hosts do not share")
            if path in ("/", tmp, _home()) or tmp.startswith(path + "/"):
                raise ClusterError(f"{path} cannot be shared whole: each host has its own /tmp and home")
        config = {
            "name": host.name, "address": host.address,
            "binds": [["file", str(host.directory / "hosts"), "/etc/hosts"],
                      ["dir", str(host.directory / "etc-ssh"), "/etc/ssh"],
                      ["dir", str(host.directory / "home"), _home()],
                      ["dir", str(host.directory / "tmp"), tmp]],
            "shared": shared_under,
            "sources": {tmp: str(host.directory / "tmp"), _home(): str(host.directory / "home")},
            "ready": str(host.directory / "ready"),
        }
        path = host.directory / "init.json"
        path.write_text(json.dumps(config, indent=1))
        return path

    def _start(self, host: Host) -> None:
        config = self._host_config(host)
        (host.directory / "ready").unlink(missing_ok=True)
        log = open(host.log, "ab")
        try:
            # SIGKILL to unshare when the process that built the cluster dies (unshare --kill-child passes it
            # on to the host's init, and the kernel ends the rest of the host): no host outlives its builder.
            host.process = subprocess.Popen(
                ["setpriv", "--pdeathsig", "KILL", "--", "ip", "netns", "exec", host.namespace, "unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child",
                 "--mount-proc", "--propagation", "private", sys.executable, str(Path(__file__).resolve()),
                 "--host-init", str(config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()

    def _wait_ready(self, host: Host) -> None:
        import psutil

        deadline = time.time() + READY_TIMEOUT
        ready = host.directory / "ready"
        while not ready.exists():
            if host.process.poll() is not None or time.time() > deadline:
                state = "exited" if host.process.poll() is not None else f"was not ready within {READY_TIMEOUT:g} s"
                raise ClusterError(f"host {host.name} {state}; its log {host.log}:\n{_tail(host.log)}")
            time.sleep(0.05)
        children = psutil.Process(host.process.pid).children()
        if len(children) != 1:
            raise ClusterError(f"host {host.name}: expected one init process under unshare, found {children}")
        host.init_pid = children[0].pid

    # -- using -----------------------------------------------------------------------------------
    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def command(self, host: Host, argv: list[str], cwd: str | Path = ROOT) -> list[str]:
        """``argv`` as run on ``host`` (in every one of its namespaces), from ``cwd``."""
        if host.init_pid is None:
            raise ClusterError(f"host {host.name} is down")
        # nsenter passes no signal on to the command it forks: the command gets SIGTERM when nsenter ends.
        return ["nsenter", "--target", str(host.init_pid), "--net", "--mount", "--uts", "--pid", f"--wdns={cwd}",
                "--", "setpriv", "--pdeathsig", "TERM", "--", *argv]

    def run(self, host: Host, argv: list[str], cwd: str | Path = ROOT, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("check", False)
        return subprocess.run(self.command(host, argv, cwd), **kwargs)

    def popen(self, host: Host, argv: list[str], cwd: str | Path = ROOT, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(self.command(host, argv, cwd), **kwargs)

    def processes(self, host: Host) -> list:
        """The processes of ``host`` (psutil), its init and sshd left out."""
        import psutil

        if host.init_pid is None:
            return []
        mine = _pid_namespace(host.init_pid)
        found = []
        for process in psutil.process_iter(["pid", "name", "cmdline"]):
            try:
                if process.pid != host.init_pid and _pid_namespace(process.pid) == mine and \
                        process.status() != psutil.STATUS_ZOMBIE and \
                        not (process.info["name"] == "sshd" and process.ppid() == host.init_pid):
                    found.append(process)
            except (psutil.NoSuchProcess, OSError):
                continue
        return found

    def lose(self, host: Host) -> None:
        """The host goes down as a crashed machine: every process of it ends at once (SIGKILL to its init;
        the kernel ends the rest of its PID namespace). Its address stays on the bridge, answering nothing."""
        if host.process is None:
            return
        os.kill(host.init_pid, signal.SIGKILL)
        host.process.wait(timeout=30)
        self._wait_empty(host)
        host.process = host.init_pid = None

    def restore(self, host: Host) -> None:
        """Boot a lost host again: a fresh init, mounts and sshd (its folders, keys and address as before)."""
        if host.process is not None:
            return
        self._start(host)
        self._wait_ready(host)

    # -- teardown ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Every host's init ended by its PID (SIGTERM, then SIGKILL), then this cluster's namespaces
        deleted by name; raises if any process or namespace is left."""
        for host in self.hosts:
            if host.process is not None and host.process.poll() is None and host.init_pid:
                try:
                    os.kill(host.init_pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for host in self.hosts:
            if host.process is None:
                continue
            try:
                host.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                if host.init_pid:
                    os.kill(host.init_pid, signal.SIGKILL)
                host.process.wait(timeout=30)
            host.process = host.init_pid = None
        problems = []
        for host in self.hosts:
            try:
                self._wait_empty(host)
            except ClusterError as err:
                problems.append(str(err))
        for name in reversed(self.created):
            done = subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True, check=False)
            if done.returncode != 0 and name in _namespaces():
                problems.append(f"ip netns del {name}: {done.stderr.strip()}")
        left = [name for name in self.created if name in _namespaces()]
        self.created = [name for name in self.created if name in left]
        for key in self.workdir.glob("**/client_key"):
            key.unlink(missing_ok=True)
        if left:
            problems.append(f"namespaces left: {', '.join(left)}")
        if problems:
            raise ClusterError("; ".join(problems))

    def _wait_empty(self, host: Host, timeout: float = 30) -> None:
        """Until no process is left in the host's network namespace."""
        deadline = time.time() + timeout
        while True:
            done = subprocess.run(["ip", "netns", "pids", host.namespace], capture_output=True, text=True, check=False)
            pids = done.stdout.split() if done.returncode == 0 else []
            if not pids:
                return
            if time.time() > deadline:
                raise ClusterError(f"host {host.name}: processes {' '.join(pids)} are still running")
            time.sleep(0.1)


def _home() -> str:
    """Root's home as sshd sees it (the password database), whatever HOME says."""
    import pwd

    return str(Path(pwd.getpwuid(os.getuid()).pw_dir).resolve())


def _pid_namespace(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/pid").st_ino


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as err:
        return f"(cannot read: {err})"


# -- the host's PID 1 ------------------------------------------------------------------------------
def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def host_init(config_path: str) -> int:
    """PID 1 of a host: its hostname and private folders, then its sshd; then reap until told to stop."""
    config = json.loads(Path(config_path).read_text())
    # The ready mark's folder, opened before any mount: its path may be hidden by the private /tmp.
    ready = Path(config["ready"])
    ready_dir = os.open(ready.parent, os.O_RDONLY | os.O_DIRECTORY)
    socket.sethostname(config["name"])
    # The shared paths that lie inside a private folder are bound into its source first, so they are
    # there again once the folder is replaced (the venv's base Python in the home, the test's files in /tmp).
    for target, paths in config["shared"].items():
        source = config["sources"][target]
        for path in paths:
            inside = Path(source) / Path(path).relative_to(target)
            inside.mkdir(parents=True, exist_ok=True)
            _mount("--rbind", path, str(inside))
    for kind, source, target in config["binds"]:
        _mount("--rbind" if kind == "dir" else "--bind", source, target)
    _mount("-t", "tmpfs", "-o", "mode=755", "tmpfs", "/run")
    _mount("-t", "tmpfs", "-o", "mode=1777", "tmpfs", "/dev/shm")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    with open("/tmp/sshd.log", "ab") as log:
        sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", "/etc/ssh/sshd_config"], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)

    def stop(signum, frame):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(-1, sig)  # every process of this PID namespace but its init
            except ProcessLookupError:
                pass
            deadline = time.time() + 3
            while time.time() < deadline and _reap(block=False) != "none":
                time.sleep(0.05)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    deadline = time.time() + READY_TIMEOUT
    while True:
        with socket.socket() as probe:
            probe.settimeout(1)
            if probe.connect_ex((config["address"], 22)) == 0:
                break
        if sshd.poll() is not None or time.time() > deadline:
            print(f"sshd of {config['name']} did not start (exit {sshd.poll()}); /tmp/sshd.log:", flush=True)
            print(_tail(Path("/tmp/sshd.log")), flush=True)
            return 1
        time.sleep(0.05)
    os.close(os.open(ready.name, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=ready_dir))
    while True:
        if _reap(block=True) == "none":
            time.sleep(0.5)  # no child now; processes that join the host (nsenter) may orphan later


def _reap(block: bool) -> str:
    try:
        pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return "none"
    return "reaped" if pid else "running"


# -- by hand ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/netns_cluster.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=3, help="how many hosts (node1 … nodeN)")
    parser.add_argument("--workdir", help="where the hosts' private folders go (default: a new folder in /var/tmp)")
    parser.add_argument("--share", action="append", default=[], help="a further path every host sees (repeatable)")
    parser.add_argument("--host-init", help=argparse.SUPPRESS)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND: run it on node1, then tear down")
    opts = parser.parse_args(argv)
    if opts.host_init:
        return host_init(opts.host_init)
    reason = unavailable()
    if reason:
        print(f"netns_cluster: cannot build hosts here: {reason}", file=sys.stderr)
        return 2
    import tempfile

    workdir = Path(opts.workdir or tempfile.mkdtemp(prefix="netns-cluster-", dir="/var/tmp"))
    command = opts.command[1:] if opts.command[:1] == ["--"] else opts.command
    with NetnsCluster(opts.hosts, workdir, shared=opts.share) as cluster:
        for host in cluster.hosts:
            print(f"{host.name} {host.address}  enter: nsenter --target {host.init_pid} --net --mount --uts --pid "
                  f"--wdns={ROOT} bash", flush=True)
        print(f"Ray's token on every host: ~/.ray/auth_token; folders in {workdir}", flush=True)
        if command:
            return cluster.run(cluster.hosts[0], command, capture_output=False).returncode
        print("Ctrl-C tears the hosts down", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
