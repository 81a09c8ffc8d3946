"""Which of the run's hosts are gone, and what the run had on them. When a call of a run that spans
several nodes fails (a train rank's gloo peer closed, an engine the router no longer reaches), the
trainer asks here whether a host went: Ray marks its node dead some seconds after it went, and its
raylet stops taking connections at once, so both are asked. The error then names the host, the ranks
and engines it held, and how the run resumes (``slime.utils.resume``)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from slime.ray.placement import Host

PROBE_TIMEOUT = 2.0


@dataclass(frozen=True)
class Seat:
    """One rank or engine (``what``) on one host."""

    what: str
    host: Host


def _raylet_answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=PROBE_TIMEOUT):
            return True
    except OSError:
        return False


def lost_hosts(hosts: Iterable[Host], within: float = 5.0) -> dict[Host, str]:
    """Those of ``hosts`` that are gone, each with how it shows: asked again for up to ``within`` seconds,
    returned as soon as one is found (an empty answer: none is gone)."""
    import ray

    wanted = {host.node_id: host for host in hosts if host.node_id}
    deadline = time.time() + within
    while True:
        nodes = {node["NodeID"]: node for node in ray.nodes() if node["NodeID"] in wanted}
        gone = {wanted[node_id]: "Ray marks its node dead" for node_id, node in nodes.items() if not node.get("Alive")}
        alive = [node for node in nodes.values() if node.get("Alive")]
        with ThreadPoolExecutor(max_workers=max(1, len(alive))) as pool:
            answers = list(pool.map(lambda n: _raylet_answers(n["NodeManagerAddress"], n["NodeManagerPort"]), alive))
        for node, answers_now in zip(alive, answers):
            if not answers_now:
                gone[wanted[node["NodeID"]]] = (f"its raylet at {node['NodeManagerAddress']}:{node['NodeManagerPort']} "
                                                "takes no connection")
        if gone or time.time() >= deadline:
            return gone
        time.sleep(0.5)


def spans_nodes(seats: list[Seat]) -> bool:
    return len({seat.host.node_id or seat.host.address for seat in seats}) > 1


def placement_note(seats: list[Seat]) -> str:
    """Where each rank and engine of the run is, host by host, for the log of a run on several nodes."""
    by_host: dict[Host, list[str]] = {}
    for seat in seats:
        by_host.setdefault(seat.host, []).append(seat.what)
    return "placement: " + "; ".join(f"{host.describe()}: {', '.join(whats)}" for host, whats in by_host.items())


def lost_note(seats: list[Seat], gone: dict[Host, str]) -> str:
    """One sentence per lost host: which it is, how that shows, and what of the run was on it."""
    sentences = []
    for host, why in gone.items():
        held = [seat.what for seat in seats if seat.host == host]
        sentences.append(f"host {host.describe()} was lost mid-run ({why}); it held "
                         f"{', '.join(held) if held else 'nothing of this run'}")
    return "; ".join(sentences)
