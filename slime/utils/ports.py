"""Which TCP ports of this node are taken, and free ones to suggest instead.

    python -m slime.utils.ports 6379 8265     # prints "PORT FREE" for each taken port, nothing if all are free

A port is taken when something listens on it on any address: the check binds it on all addresses
the way a server does (``SO_REUSEADDR``, so connections still closing do not count). The launcher
asks before it starts a Ray head, so a port held by another cluster is refused instead of joined.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path


def is_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError:
            return True
    return False


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free right now (the kernel's choice), for tests and suggestions."""
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def _ephemeral_start() -> int:
    """The first port Linux hands out for outgoing connections (ip_local_port_range)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_block(size: int, avoid=(), start: int = 20000) -> int:
    """The first of ``size`` consecutive ports that are free now and not in ``avoid``: above Ray's worker
    ports (10002–19999) and below the ephemeral range, so that neither takes them before they are used."""
    end = _ephemeral_start()
    port = start
    while port + size <= end:
        clash = next((p for p in range(port, port + size) if p in avoid or is_taken(p)), None)
        if clash is None:
            return port
        port = clash + 1
    raise OSError(f"no {size} consecutive free ports between {start} and {end} on this host")


def main(argv: list[str]) -> int:
    ports = [int(arg) for arg in argv]
    taken = [port for port in ports if is_taken(port)]
    for port, suggestion in zip(taken, free_ports(len(taken))):
        print(port, suggestion)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
