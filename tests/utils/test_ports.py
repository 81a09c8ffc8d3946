"""Free ports: a block of consecutive ones for an engine's dist-init address (SGLang derives its own ports
from it), skipping ports something listens on and ports already handed out."""

from __future__ import annotations

import socket

from slime.utils.ports import free_port_block, is_taken


def test_a_block_of_free_ports_skips_a_taken_port_and_the_ports_handed_out():
    first = free_port_block(8)
    assert 20000 <= first and not any(is_taken(p) for p in range(first, first + 8))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("", first + 3))
        listener.listen()
        after = free_port_block(8, start=first)
        assert after > first + 3  # not across the port in use
    handed_out = set(range(after, after + 8))
    assert free_port_block(8, avoid=handed_out, start=after) >= after + 8
