"""Placement groups from the launch plan: one bundle per GPU, actor first, then critic, then rollout
(unless colocated, where the rollout engines share the actor's bundles). Each process takes a
fraction of its bundle's GPU, so that a colocated trainer rank and engine fit one GPU together."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from slime.utils.validation import gpus

TRAIN_GPU_FRACTION = 0.4
ENGINE_GPU_FRACTION = 0.4


@dataclass
class Placement:
    group: object  # ray.util.placement_group.PlacementGroup
    actor: list[int]  # bundle index of each actor rank
    critic: list[int]
    rollout: list[int]  # first bundle of each engine


def gpus_needed(args: argparse.Namespace) -> tuple[int, int, int, bool]:
    """(actor, critic, rollout) GPUs of this run, and whether the rollout shares the actor's."""
    actor = 0 if args.debug_rollout_only else gpus(args.actor_num_nodes, args.actor_num_gpus_per_node)
    critic = gpus(args.critic_num_nodes, args.critic_num_gpus_per_node) if args.use_critic and actor else 0
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
    return Placement(group, list(range(actor)), list(range(actor, actor + critic)), engines)
