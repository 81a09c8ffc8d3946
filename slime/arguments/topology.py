"""The parallel topology of one train role: its ranks (world) and the tensor (tp), pipeline (pp),
context (cp), expert (ep) and expert tensor (etp) parallel sizes over them, and what follows: the data
parallel size dp = world / (tp·pp·cp) and the expert data parallel size world / (pp·ep·etp).

Computed in one place, from the Namespace a role trains with (``role_args(args, role)`` for a role's own
overrides): validation checks it, the launch plan shows it, parameter counts and the memory estimate shard
by it, and the megatron backend builds megatron-core's parallel state from it. Plain arithmetic, no torch."""

from __future__ import annotations

import argparse
from dataclasses import dataclass


def gpus(nodes: int | None, per_node: int | None) -> int:
    """The GPUs of ``nodes`` nodes with ``per_node`` each (0 where either is unset)."""
    return (nodes or 0) * (per_node or 0)


def critic_with_actor(args: argparse.Namespace) -> bool:
    """Whether the critic trains on the actor's GPUs (--critic-placement with-actor), not on its own."""
    return bool(args.use_critic) and args.critic_placement == "with-actor"


@dataclass(frozen=True)
class Topology:
    """One role's sizes; the defaults are one rank holding the whole model."""

    world: int = 1
    tp: int = 1
    pp: int = 1
    cp: int = 1
    ep: int = 1
    etp: int = 1

    @classmethod
    def of(cls, args: argparse.Namespace, role: str = "actor", world: int | None = None) -> Topology:
        """The sizes ``args`` gives, over the role's GPUs (--ROLE-num-nodes × --ROLE-num-gpus-per-node), or
        over ``world`` ranks when given. An unset --expert-tensor-parallel-size is the tensor-parallel size,
        as megatron-core reads it."""
        tp = args.tensor_model_parallel_size
        if world is None:
            world = gpus(getattr(args, f"{role}_num_nodes"), getattr(args, f"{role}_num_gpus_per_node"))
        return cls(world, tp, args.pipeline_model_parallel_size, args.context_parallel_size,
                   args.expert_model_parallel_size, args.expert_tensor_parallel_size or tp)

    @property
    def model_parallel(self) -> int:
        """The ranks one copy of the dense model spans: tp·pp·cp."""
        return self.tp * self.pp * self.cp

    @property
    def dp(self) -> int | None:
        """The data-parallel size; None when tp·pp·cp does not divide the role's ranks."""
        return self.world // self.model_parallel if self.world % self.model_parallel == 0 else None

    @property
    def expert_dp(self) -> int | None:
        """How many copies of each expert (expert data parallel); None when pp·ep·etp does not divide the ranks."""
        shards = self.pp * self.ep * self.etp
        return self.world // shards if self.world % shards == 0 else None
