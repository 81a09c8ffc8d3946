"""The one rule for every address the run hands to another process: where megatron's (or the torch
backend's) ranks meet, where the router and the engines listen (and the ``dist-init-addr`` of an
engine that spans nodes), where the weight-update group meets. All of them come from
``reachable_host`` here, called in the process whose server it is.

The rule: this node's address as Ray knows it (the one its raylet registered, which the other nodes
reach it at) when the Ray cluster has more than one live node; loopback when the whole cluster is
this one node, or when there is no Ray at all (nothing else needs to reach it then, and loopback
keeps the servers off the network). A run never hands out loopback once a second node is in the
cluster: on another host, 127.0.0.1 is that host itself.

Ray is read from ``sys.modules``, never imported: a process that has not imported Ray is on no Ray
cluster, and the train backends, which call this, stay free of Ray.
"""

from __future__ import annotations

import sys

LOOPBACK = "127.0.0.1"


def reachable_host() -> str:
    """The address this process's servers listen on and are reached at (see the module's rule)."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return LOOPBACK
    alive = [node for node in ray.nodes() if node.get("Alive")]
    return LOOPBACK if len(alive) <= 1 else ray.util.get_node_ip_address()


def free_address() -> tuple[str, int]:
    """``reachable_host()`` and a port free on this node: where rank 0 hosts a process group."""
    from slime.utils.ports import free_ports

    return reachable_host(), free_ports(1)[0]
