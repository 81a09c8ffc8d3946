"""Placement groups from the launch plan: one bundle per GPU, actor first, then the critic's own (with
--critic-placement separate; by default the critic shares the actor's bundles, as upstream slime places
it), then rollout (unless colocated, where the rollout engines share the actor's bundles). Each process
takes a fraction of its bundle's GPU (upstream's shares), so that an actor rank, a critic rank and an
engine fit one GPU together."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from slime.arguments.topology import critic_with_actor, gpus

TRAIN_GPU_FRACTION = 0.4
ENGINE_GPU_FRACTION = 0.2


@dataclass(frozen=True)
class Host:
    """A Ray node as the run names it: its address, its hostname, and Ray's id of it."""

    address: str
    name: str = ""
    node_id: str = ""

    def describe(self) -> str:
        return f"{self.name} ({self.address})" if self.name and self.name != self.address else self.address


@dataclass
class Placement:
    """Roles by GPU slot: slot ``s`` is bundle ``order[s]``, the slots sorted by node and GPU id, so that
    consecutive slots are consecutive GPUs of one node (an engine's GPUs, a node's train ranks)."""

    group: object  # ray.util.placement_group.PlacementGroup
    actor: list[int]  # slot of each actor rank
    critic: list[int]
    rollout: list[int]  # first slot of each engine
    order: list[int] = field(default_factory=list)  # slot → bundle index (empty: the same index)
    hosts: list[Host] = field(default_factory=list)  # bundle index → the node it was placed on

    def bundle(self, slot: int) -> int:
        return self.order[slot] if self.order else slot

    def host(self, slot: int) -> Host | None:
        """The node of a slot's bundle when the run was placed (None when not recorded)."""
        return self.hosts[self.bundle(slot)] if self.hosts else None


def gpu_order(places: list[tuple[str, list]]) -> list[int]:
    """Bundle indices sorted by (node address, first GPU id): ``places[i]`` is bundle ``i``'s node address
    and the GPU ids Ray gave it."""
    import ipaddress

    def key(i: int):
        host, ids = places[i]
        try:
            node = (0, int(ipaddress.ip_address(host)), "")
        except ValueError:
            node = (1, 0, host)
        first = str(ids[0]) if ids else ""
        return node, (int(first) if first.isdigit() else -1), first, i

    return sorted(range(len(places)), key=key)


def this_host() -> Host:
    """The node this Ray worker runs on."""
    import socket

    import ray

    return Host(ray.util.get_node_ip_address(), socket.gethostname(), ray.get_runtime_context().get_node_id())


def _where():
    import ray

    return this_host(), [str(g) for g in ray.get_gpu_ids()]


def _bundle_places(group, count: int) -> tuple[list[int], list[Host]]:
    """Ask each bundle where it is (a small task in it), as slime does before placing anything: the slot
    order, and each bundle's node."""
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    where = ray.remote(num_cpus=0, num_gpus=0.01)(_where)
    places = ray.get([where.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
        placement_group=group, placement_group_bundle_index=i)).remote() for i in range(count)], timeout=600)
    return gpu_order([(host.address, ids) for host, ids in places]), [host for host, _ in places]


def gpus_needed(args: argparse.Namespace) -> tuple[int, int, int, bool]:
    """(actor, critic, rollout) GPUs of this run that need bundles of their own (a critic on the actor's
    GPUs needs none), and whether the rollout shares the actor's."""
    actor = 0 if args.debug_rollout_only else gpus(args.actor_num_nodes, args.actor_num_gpus_per_node)
    own_critic = args.use_critic and actor and not critic_with_actor(args)
    critic = gpus(args.critic_num_nodes, args.critic_num_gpus_per_node) if own_critic else 0
    rollout = 0 if args.debug_train_only else args.rollout_num_gpus
    return actor, critic, rollout, bool(args.colocate and actor)


def bundles_needed(args: argparse.Namespace) -> int:
    actor, critic, rollout, shared = gpus_needed(args)
    return actor + critic + (0 if shared else rollout)


def create_placement(args: argparse.Namespace, available_gpus: float) -> Placement:
    import ray
    from ray.util.placement_group import placement_group

    actor, critic, rollout, shared = gpus_needed(args)
    total = bundles_needed(args)
    if total > available_gpus:
        raise ValueError(f"the run needs {total} GPUs (actor {actor}, critic {critic}, rollout {rollout}"
                         f"{', shared with the actor' if shared else ''}) and the Ray cluster has {available_gpus:g}")
    group = placement_group([{"GPU": 1, "CPU": 0.001} for _ in range(max(total, 1))], strategy="PACK")
    ray.get(group.ready(), timeout=600)
    rollout_start = 0 if shared else actor + critic
    per_engine = args.rollout_num_gpus_per_engine
    engines = [rollout_start + i * per_engine for i in range(rollout // per_engine)] if rollout else []
    order, hosts = _bundle_places(group, max(total, 1))
    critic_slots = list(range(actor)) if args.use_critic and critic_with_actor(args) else list(range(actor, actor + critic))
    return Placement(group, list(range(actor)), critic_slots, engines, order, hosts)
