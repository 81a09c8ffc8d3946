"""The rollout engines of a run, as slime runs SGLang: one server process per node of each engine,
started by a Ray actor on the engine's placement-group bundle with its output in its own log file;
SGLang's router in front (started here, or an external one given by --sglang-router-ip/port); health
checks; a named error when an engine dies, or, with --use-fault-tolerance, a restart.

Only the command differs between backends (``slime.engines.command``): SGLang's
``sglang.launch_server`` on GPUs, the torch engine on CPUs. Everything else — start-up, health,
routing, weight updates, memory release — goes through the HTTP endpoints both serve.

Every engine and the router answer only the holder of the run's API key (``EngineKey``, made here for
each run): each engine's actor writes it into a file only the run's user can read, which the server
reads at start-up (SGLang's ``--config``); the router gets it in its environment; every request carries
it. It is in no command line, plan, log or args file, and not in the Ray job's metadata.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from slime.engines.command import EngineSlot, dist_init_block, engine_count, nodes_per_engine, server_command
from slime.utils.addresses import reachable_host
from slime.ray.groups import bundle_options
from slime.ray.placement import ENGINE_GPU_FRACTION, Placement
from slime.rollout.client import EngineError, EngineKey, http_get, http_json

STARTUP_TIMEOUT = 1800.0  # loading a large checkpoint and capturing CUDA graphs takes minutes
STARTUP_POLL = 0.5
# How long an engine whose host was lost waits, under --use-fault-tolerance, for Ray to find its GPUs
# room on another host (Ray first marks the lost node dead: about 15 s with its default health checks).
REPLACE_TIMEOUT = 120.0
EXIT_CODE_GRACE_CHECKS = 5  # a server that just died is reaped by its actor within a second
# A server sees all of its node's GPUs and picks its own from --base-gpu-id, as SGLang expects.
NOSET_GPUS = {"RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES": "1"}


def _die_with_parent() -> None:
    """Run in the child before exec: the server goes when its actor goes, however the actor ends."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class EngineProcess:
    """A Ray actor on one bundle: starts one server (one node of one engine) and watches it."""

    def __init__(self, label: str, log_dir: str):
        self.label, self.log_path = label, str(Path(log_dir) / f"{label}.log")
        self.key_path = str(Path(log_dir) / f"{label}.key.yaml")
        self.process = None

    def where(self, block: int = 1, avoid: tuple[int, ...] = ()) -> dict:
        """This node's address (and the node), free ports for the server (HTTP, NCCL, then the first of
        ``block`` consecutive ones, none in ``avoid``, for the dist-init address), and the first GPU Ray
        gave this bundle."""
        import ray

        from slime.ray.placement import this_host
        from slime.utils.ports import free_port_block, free_ports

        ports = [*free_ports(2), free_port_block(block, set(avoid))]
        gpu_ids = ray.get_gpu_ids()
        return {"host": reachable_host(), "ports": ports, "node": this_host(),
                "gpu": int(gpu_ids[0]) if gpu_ids and str(gpu_ids[0]).isdigit() else 0, "log": self.log_path,
                "key_file": self.key_path}

    def start(self, command: list[str], key: EngineKey) -> int:
        """Start ``command`` (its first word, the Python to run, is this actor's own), the run's API key
        written first into the file it names (``--config``), readable by this user only."""
        import json
        import subprocess

        command = [sys.executable, *command[1:]]
        self.stop()
        Path(self.log_path).parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "w") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(f"api-key: {json.dumps(key.reveal())}\n")
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            preexec_fn=_die_with_parent, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self.process.pid

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError as err:
            return f"(cannot read the log: {err})"

    def stop(self, force: bool = False) -> None:
        """End the server: SIGTERM and a grace period, or at once (``force``: one that stopped answering)."""
        import subprocess

        if self.process is not None and self.process.poll() is None:
            if force:
                self.process.kill()
                self.process.wait()
            else:
                self.process.terminate()
                try:
                    self.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        Path(self.key_path).unlink(missing_ok=True)


@dataclass
class Engine:
    """One engine: its actors (one per node), where node 0 serves HTTP, and its state."""

    index: int
    actors: list
    slots: list[EngineSlot]
    logs: list[str]
    bundle_slots: list[int] = field(default_factory=list)  # the placement slot of each of its nodes
    labels: list[str] = field(default_factory=list)
    hosts: list = field(default_factory=list)  # slime.ray.placement.Host of each of its nodes
    url: str = ""
    router_id: str | None = None
    in_service: bool = True
    generation: int = 0  # one more at each restart: a failure seen before a restart is not the new one's
    commands: list[list[str]] = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.slots[0].host

    def describe(self) -> str:
        return f"rollout engine {self.index} ({self.url} on host {self.host}; log {self.logs[0]})"


def _log_dir() -> str:
    return str(Path(tempfile.gettempdir()) / "slime-engines" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")


class EngineGroup:
    """Starts, routes, watches and restarts the run's engines."""

    def __init__(self, args: argparse.Namespace, placement: Placement, log=print):
        import ray

        self.args, self.log = args, log
        self.key = EngineKey.new()  # this run's: every engine and the router answer only its holder
        self.log_dir = _log_dir()
        self.failure: EngineError | None = None
        self.paused = False
        self.on_restart = None  # set by the trainer: pushes the current weights to a restarted engine
        self.restarts = 0
        self.lock = threading.RLock()  # held by a restart and by a weight push: one at a time
        self._stop = threading.Event()
        self.router = None
        self.external_router = False
        self.placement = placement
        self.reserved_ports: set[int] = set()  # the dist-init blocks handed out, taken once the servers start
        nnodes, per_node = nodes_per_engine(args), min(args.rollout_num_gpus_per_engine, args.num_gpus_per_node)
        self.engines = []
        for index, first in enumerate(placement.rollout[:engine_count(args)]):
            engine = Engine(index, [], [], [], [first + node * per_node for node in range(nnodes)],
                            [f"engine_{index}" + (f"_node{n}" if nnodes > 1 else "") for n in range(nnodes)])
            self._new_actors(engine)
            self.engines.append(engine)
        self.monitor = None
        try:
            self._launch()
        except BaseException:
            self.shutdown()  # nothing half-started stays behind
            raise

    # -- start-up -----------------------------------------------------------------------------
    def _launch(self) -> None:
        args = self.args
        for engine in self.engines:
            self._place(engine)
        self.log(f"starting {len(self.engines)} {args.rollout_backend} engine(s); logs in {self.log_dir} "
                 f"on each engine's host")
        self._start_all(self.engines)
        self._start_router()
        self.monitor = threading.Thread(target=self._watch, name="engine-health", daemon=True)
        self.monitor.start()

    def _new_actors(self, engine: Engine) -> None:
        """One actor per node of ``engine``, on its bundles of the placement group (which Ray moves to a
        host with room when the one they were on is lost)."""
        import ray

        remote = ray.remote(EngineProcess)
        engine.actors = [remote.options(**bundle_options(self.placement, slot, ENGINE_GPU_FRACTION, NOSET_GPUS))
                         .remote(label, self.log_dir) for slot, label in zip(engine.bundle_slots, engine.labels)]

    def _place(self, engine: Engine, timeout: float | None = None) -> None:
        import ray

        block = dist_init_block(self.args)
        places = ray.get([a.where.remote(block, tuple(self.reserved_ports)) for a in engine.actors], timeout=timeout)
        engine.hosts = [p["node"] for p in places]
        head = places[0]
        first = head["ports"][2]
        self.reserved_ports.update(range(first, first + block))  # the next engine on this host takes others
        dist_init = f"{head['host']}:{first}"
        engine.slots = [EngineSlot(engine.index, rank, p["host"], head["ports"][0], head["ports"][1], p["gpu"],
                                   dist_init, p["key_file"]) for rank, p in enumerate(places)]
        engine.logs = [p["log"] for p in places]
        engine.url = f"http://{head['host']}:{head['ports'][0]}"
        engine.commands = [server_command(self.args, slot) for slot in engine.slots]

    def _start_all(self, engines: list[Engine]) -> None:
        import ray

        ray.get([a.start.remote(cmd, self.key) for e in engines for a, cmd in zip(e.actors, e.commands)])
        deadline = time.time() + STARTUP_TIMEOUT
        waiting = list(engines)
        while waiting:
            if self._stop.is_set():
                raise EngineError("the run is stopping: engine start-up abandoned")
            for engine in list(waiting):
                code = self._exit_code(engine)
                if code is not None:
                    raise self._error(engine, f"exited with code {code} while starting")
                if _healthy(engine.url, timeout=5, key=self.key):
                    waiting.remove(engine)
            if waiting and time.time() > deadline:
                raise self._error(waiting[0], f"did not answer /health_generate within {STARTUP_TIMEOUT:g} s of starting")
            if waiting:
                time.sleep(STARTUP_POLL)

    def _start_router(self) -> None:
        a = self.args
        urls = [e.url for e in self.engines]
        if a.sglang_router_ip:
            self.router_url = f"http://{a.sglang_router_ip}:{a.sglang_router_port}"
            self.external_router = True
            for engine in self.engines:
                self._route(engine)
            self.log(f"routing through the external router at {self.router_url}")
            return
        import subprocess

        from slime.engines.router import router_command, wait_for_workers
        from slime.utils.ports import free_ports

        host = reachable_host()
        port, metrics_port = free_ports(2)
        self.router_url = f"http://{host}:{port}"
        self.router_log = str(Path(self.log_dir) / "router.log")
        Path(self.log_dir).mkdir(parents=True, exist_ok=True)
        from slime.engines.router import KEY_VARIABLE

        with open(self.router_log, "ab") as out:
            self.router = subprocess.Popen(router_command(host, port, urls, metrics_port), stdout=out,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                           preexec_fn=_die_with_parent,
                                           env={**os.environ, KEY_VARIABLE: self.key.reveal()})
        problem = wait_for_workers(self.router_url, urls, self.router, timeout=120, key=self.key)
        if problem:
            raise EngineError(f"SGLang's router at {self.router_url} {problem}; its log: {self.router_log}")
        ids = {url: worker_id for worker_id, url in _router_worker_urls(self.router_url, self.key)}
        for engine in self.engines:
            engine.router_id = ids.get(engine.url)
        self.log(f"SGLang router at {self.router_url} in front of {len(urls)} engine(s)")

    def _route(self, engine: Engine) -> None:
        """Register ``engine`` with the router and wait until the router takes it as healthy."""
        from slime.engines.router import wait_for_workers

        # The key with the worker: an external router sends it to this engine, whatever key it has itself.
        reply = http_json(self.router_url, "/workers", {"url": engine.url, "api_key": self.key.reveal()}, timeout=30,
                          engine=f"the router {self.router_url}", key=self.key)
        engine.router_id = reply.get("worker_id")
        problem = wait_for_workers(self.router_url, [engine.url], None, timeout=120, key=self.key)
        if problem:
            raise EngineError(f"the router {self.router_url} {problem}")

    def _unroute(self, engine: Engine) -> None:
        from slime.rollout.client import http_delete

        if engine.router_id is None:
            for worker_id, url in _router_worker_urls(self.router_url, self.key):
                if url == engine.url:
                    engine.router_id = worker_id
        if engine.router_id:
            http_delete(self.router_url, f"/workers/{engine.router_id}", timeout=30, key=self.key)
            engine.router_id = None

    # -- health -------------------------------------------------------------------------------
    def _exit_code(self, engine: Engine) -> int | str | None:
        """The exit code of a server of ``engine`` that ended; what happened when its actor is gone with
        its host (a str); None while it runs."""
        import ray

        try:
            codes = ray.get([a.exit_code.remote() for a in engine.actors], timeout=60)
        except ray.exceptions.RayActorError as err:
            return self._actor_lost(engine, err)
        return next((c for c in codes if c is not None), None)

    def _actor_lost(self, engine: Engine, err) -> str | None:
        """Why an engine's actor does not answer: its host lost, or the actor dead; None when Ray says it is
        only unavailable for now and its host still answers (asked again at the next check)."""
        import ray

        from slime.ray.hosts import lost_hosts

        gone = lost_hosts(engine.hosts, within=0)
        if gone:
            return "lost its host " + ", ".join(f"{host.describe()} ({why})" for host, why in gone.items())
        if isinstance(err, ray.exceptions.ActorUnavailableError):
            return None
        return f"lost its Ray actor ({str(err).splitlines()[0][:300]})"

    def _error(self, engine: Engine, what: str) -> EngineError:
        import ray

        try:
            tail = ray.get(engine.actors[0].tail.remote(), timeout=30)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            tail = f"(its log {engine.logs[0]} stays on {engine.host}, which this process cannot reach now)"
        return EngineError(f"{engine.describe()} {what}; the last lines of its log:\n{tail}")

    def _unhealthy_why(self, engine: Engine) -> str:
        """Why an engine failed its health check: a server that died while it was asked is named by its exit
        code (its socket closes before its actor has reaped it), one that lives and does not answer as such."""
        for _ in range(EXIT_CODE_GRACE_CHECKS):
            code = self._exit_code(engine)
            if code is not None:
                return self._what(code)
            time.sleep(0.2)
        return f"did not answer /health_generate within {self.args.rollout_health_check_timeout:g} s"

    @staticmethod
    def _what(code: int | str) -> str:
        return code if isinstance(code, str) else f"died (exit code {code})"

    def _watch(self) -> None:
        a = self.args
        if self._stop.wait(a.rollout_health_check_first_wait):
            return
        next_check = time.time() + a.rollout_health_check_interval
        while not self._stop.wait(min(1.0, a.rollout_health_check_interval)):
            try:
                for engine in [e for e in self.engines if e.in_service]:
                    generation = engine.generation
                    code = self._exit_code(engine)
                    if code is not None:
                        self._failed(engine, self._what(code), generation)
                    elif time.time() >= next_check and not self.paused and \
                            not _healthy(engine.url, timeout=a.rollout_health_check_timeout, key=self.key):
                        self._failed(engine, self._unhealthy_why(engine), generation)
                if time.time() >= next_check:
                    next_check = time.time() + a.rollout_health_check_interval
            except Exception as err:  # the monitor never dies silently; the run stops with the reason
                if self._stop.is_set():
                    return
                self.failure = self.failure or EngineError(f"the engines' health check failed: {type(err).__name__}: {err}")
                return

    def _failed(self, engine: Engine, what: str, generation: int) -> None:
        """``engine`` as it was at ``generation`` failed: the run stops with it, or it is restarted."""
        with self.lock:
            # The monitor and a sweep both saw it, or it was restarted since: handled once.
            if not engine.in_service or engine.generation != generation:
                return
            engine.in_service = False
            error = self._error(engine, what)
            if not self.args.use_fault_tolerance:
                self.failure = self.failure or error  # first: requests that fail next find it
            import ray

            # A server that stopped answering is ended, so requests waiting on it fail over or fail now.
            try:
                ray.get([a.stop.remote(force=True) for a in engine.actors], timeout=60)
                lost = False
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                lost = True  # gone with its host: its server with it (PR_SET_PDEATHSIG)
            if not self.args.use_fault_tolerance:
                return
            self.log(f"{engine.describe()} {what}: restarting it (--use-fault-tolerance)")
            try:
                self._unroute(engine)
            except EngineError as err:
                self.log(f"could not take engine {engine.index} off the router: {err}")
            if lost:
                self._replace_actors(engine, error)
            else:
                self._place(engine)
            self._start_all([engine])
            if self.on_restart:
                self.on_restart([engine])
            if self.paused:  # the others gave their memory to training: so does this one
                http_json(engine.url, "/release_memory_occupation", {}, timeout=600, engine=engine.describe(),
                          key=self.key)
            self._route(engine)
            engine.in_service = True
            engine.generation += 1
            self.restarts += 1
        self.log(f"rollout engine {engine.index} is back at {engine.url} with the current weights")

    def _replace_actors(self, engine: Engine, error: EngineError) -> None:
        """New actors for an engine whose host was lost, on the same bundles, which Ray moves to a host
        with room once it marks the lost node dead; or the run stops, saying that no host has room."""
        import ray

        for actor in engine.actors:
            ray.kill(actor, no_restart=True)
        self._new_actors(engine)
        try:
            self._place(engine, timeout=REPLACE_TIMEOUT)
        except ray.exceptions.GetTimeoutError:
            for actor in engine.actors:
                ray.kill(actor, no_restart=True)
            needed = self.args.rollout_num_gpus_per_engine
            free = ray.available_resources().get("GPU", 0)
            self.failure = self.failure or EngineError(
                f"{error}\nIt cannot be restarted (--use-fault-tolerance): no host of the Ray cluster had room for it "
                f"within {REPLACE_TIMEOUT:g} s (it needs {needed} GPU(s); the cluster has {free:g} free). Add a host "
                "with free GPUs to the cluster, or resume the run once its hosts are back.")
            raise self.failure from None
        self.log(f"rollout engine {engine.index} moves to {', '.join(h.describe() for h in engine.hosts)}")

    def recover(self) -> bool:
        """After a request to the engines failed, under --use-fault-tolerance: wait for a restart under way,
        restart an engine found dead meanwhile; whether one came back (the request is worth sending again)."""
        if not self.args.use_fault_tolerance:
            return False
        before = self.restarts
        with self.lock:
            self.sweep()
        return self.restarts > before

    def sweep(self) -> None:
        """Look at every engine's process now (the trainer does between phases, so a death is never
        missed however short the phase); then ``check``."""
        for engine in [e for e in self.engines if e.in_service]:
            generation = engine.generation
            code = self._exit_code(engine)
            if code is not None:
                self._failed(engine, self._what(code), generation)
        self.check()

    def check(self) -> None:
        """Raise the failure the monitor found, if any: the run stops with it."""
        if self.failure is not None:
            raise self.failure

    # -- operations over every engine ------------------------------------------------------------
    def endpoints(self, engines: list[Engine] | None = None) -> list[dict]:
        """What a weight push needs of each engine in service (or of ``engines``)."""
        chosen = engines if engines is not None else [e for e in self.engines if e.in_service]
        return [{"index": e.index, "url": e.url, "host": e.host, "log": e.logs[0],
                 "tp_size": self.args.rollout_num_gpus_per_engine, "key": self.key} for e in chosen]

    def _each(self, path: str, payload: dict, timeout: float = 600) -> None:
        """POST to every engine in service; under --use-fault-tolerance an engine found dead meanwhile
        is restarted and the call made again."""
        from concurrent.futures import ThreadPoolExecutor

        def call(engine: Engine) -> None:
            http_json(engine.url, path, payload, timeout=timeout, engine=engine.describe(), key=self.key)

        for attempt in (1, 2):
            self.check()
            engines = [e for e in self.engines if e.in_service]
            try:
                with ThreadPoolExecutor(max_workers=max(1, len(engines))) as pool:
                    list(pool.map(call, engines))
                return
            except EngineError:
                if not self.args.use_fault_tolerance or attempt == 2:
                    raise
                self.sweep()

    def release(self) -> None:
        """Give the GPUs to training (--offload-rollout): SGLang frees its weights and KV cache."""
        self.paused = True
        self._each("/release_memory_occupation", {})

    def resume(self, tags: list[str] | None = None) -> None:
        self._each("/resume_memory_occupation", {"tags": tags} if tags else {})
        if not tags or "kv_cache" in tags:
            self.paused = False

    def flush_cache(self) -> None:
        self._each("/flush_cache", {})

    def shutdown(self) -> None:
        import ray

        self._stop.set()
        if self.monitor is not None and self.monitor is not threading.current_thread():
            self.monitor.join(timeout=STARTUP_TIMEOUT)  # a restart under way ends first
        if self.external_router:  # the router outlives the run: it forgets this run's engines
            for engine in self.engines:
                try:
                    self._unroute(engine)
                except EngineError as err:
                    self.log(f"could not take engine {engine.index} off the router: {err}")
        if self.router is not None and self.router.poll() is None:
            self.router.terminate()
            try:
                self.router.wait(timeout=10)
            except Exception:
                self.router.kill()
        try:
            ray.get([a.stop.remote() for e in self.engines for a in e.actors], timeout=60)
        except Exception:  # an actor already gone took its server with it (PR_SET_PDEATHSIG)
            pass


def _healthy(url: str, timeout: float, key: EngineKey | None = None) -> bool:
    try:
        return http_get(url, "/health_generate", timeout=timeout, key=key)[0] == 200
    except EngineError:
        return False


def _router_worker_urls(router_url: str, key: EngineKey | None = None) -> list[tuple[str, str]]:
    import json

    status, body = http_get(router_url, "/workers", timeout=30, key=key)
    workers = json.loads(body).get("workers", []) if status == 200 else []
    return [(w["id"], w["url"]) for w in workers]
