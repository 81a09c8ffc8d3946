"""The train groups of a run: one Ray actor per rank of a role, each pinned to its bundle of the
placement group (the rollout engines are ``slime.engines.group``)."""

from __future__ import annotations

import argparse
import threading

from slime.ray.placement import TRAIN_GPU_FRACTION, Placement


def _backend_class(args: argparse.Namespace):
    if args.train_backend == "torch":
        from slime.backends.torch_backend import TorchTrainBackend

        return TorchTrainBackend
    from slime.backends.megatron.backend import MegatronTrainBackend

    return MegatronTrainBackend


def bundle_options(placement: Placement, slot: int, gpu_fraction: float, env: dict | None = None) -> dict:
    """Ray actor options that pin an actor to the bundle of a GPU slot, taking ``gpu_fraction`` of its GPU."""
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    return {"num_cpus": 0, "num_gpus": gpu_fraction, **({"runtime_env": {"env_vars": env}} if env else {}),
            "scheduling_strategy": PlacementGroupSchedulingStrategy(
                placement_group=placement.group, placement_group_bundle_index=placement.bundle(slot))}


class TrainGroup:
    """One Ray actor per rank of a role. ``run_sharded`` sends each data-parallel share to every rank
    of that share and returns one result per share; ``run_all`` calls every rank (collectives)."""

    def __init__(self, args: argparse.Namespace, role: str, placement: Placement):
        import ray

        bundles = placement.actor if role == "actor" else placement.critic
        remote = ray.remote(_backend_class(args))
        self.role = role
        # Calls reach every rank in the same order, so collectives (a weight push from the engines'
        # monitor thread, training from the loop) never interleave differently on two ranks.
        self._lock = threading.Lock()
        env = {name: str(value) for name, value in (args.train_env_vars or {}).items()}  # --train-env-vars
        self.actors = [remote.options(**bundle_options(placement, b, TRAIN_GPU_FRACTION, env or None)).remote(args, role)
                       for b in bundles]
        master_addr, master_port = self.rendezvous = ray.get(self.actors[0].address.remote())
        ray.get([a.init.remote(rank, len(self.actors), master_addr, master_port) for rank, a in enumerate(self.actors)])
        self.layouts = ray.get([a.layout.remote() for a in self.actors])

    @property
    def size(self) -> int:
        return len(self.actors)

    @property
    def dp_size(self) -> int:
        return self.layouts[0].dp_size

    def run(self, method: str, per_rank: list[tuple]) -> list:
        """``method(*per_rank[r])`` on every rank ``r`` at once; every rank's answer."""
        import ray

        with self._lock:
            refs = [getattr(a, method).remote(*call) for a, call in zip(self.actors, per_rank)]
        try:
            return ray.get(refs)
        except ray.exceptions.RayTaskError as err:
            # The other ranks end their part first (a failed save is cleaned up after every rank stopped
            # writing), unless they wait on the failed one in a collective.
            ray.wait(refs, num_returns=len(refs), timeout=30)
            from slime.rollout.client import EngineError

            if isinstance(err.cause, EngineError):  # an engine failed the push: its own message, no traceback
                raise err.cause from None
            raise

    def on_every_rank(self, method: str, *call) -> list:
        """``method(*call)`` on every rank at once (collectives need them all)."""
        return self.run(method, [call] * self.size)

    def run_sharded(self, method: str, per_share: list[tuple]) -> list:
        """``method(*per_share[dp_rank])`` on every rank; the result rank's answer of each share."""
        answers = self.run(method, [per_share[layout.dp_rank] for layout in self.layouts])
        by_share = {layout.dp_rank: answer for layout, answer in zip(self.layouts, answers) if layout.is_result_rank}
        return [by_share[rank] for rank in range(self.dp_size)]

    def first(self, method: str, *call):
        """The answer of rank 0 of a method that every rank runs (collectives included)."""
        return self.on_every_rank(method, *call)[0]

