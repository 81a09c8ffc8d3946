"""The train groups of a run: one Ray actor per rank of a role, each pinned to its bundle of the
placement group (the rollout engines are ``slime.ray.engines``)."""

from __future__ import annotations

import argparse
import threading

from slime.ray.placement import TRAIN_GPU_FRACTION, Placement


def _backend_class(args: argparse.Namespace):
    if args.train_backend == "torch":
        from slime.backends.torch_backend import TorchTrainBackend

        return TorchTrainBackend
    raise NotImplementedError("--train-backend megatron needs GPUs and megatron-core's training path, which this "
                              "version does not include yet; use --train-backend torch")


def bundle_options(placement: Placement, bundle: int, gpu_fraction: float, env: dict | None = None) -> dict:
    """Ray actor options that pin an actor to one bundle, taking ``gpu_fraction`` of its GPU."""
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    return {"num_cpus": 0, "num_gpus": gpu_fraction, **({"runtime_env": {"env_vars": env}} if env else {}),
            "scheduling_strategy": PlacementGroupSchedulingStrategy(placement_group=placement.group,
                                                                    placement_group_bundle_index=bundle)}


class TrainGroup:
    """One Ray actor per rank of a role; methods run on every rank and return per-rank results."""

    def __init__(self, args: argparse.Namespace, role: str, placement: Placement):
        import ray

        bundles = placement.actor if role == "actor" else placement.critic
        remote = ray.remote(_backend_class(args))
        self.role = role
        # Calls reach every rank in the same order, so collectives (a weight push from the engines'
        # monitor thread, training from the loop) never interleave differently on two ranks.
        self._lock = threading.Lock()
        self.actors = [remote.options(**bundle_options(placement, b, TRAIN_GPU_FRACTION)).remote(args, role) for b in bundles]
        master_addr, master_port = ray.get(self.actors[0].address.remote())
        ray.get([a.init.remote(rank, len(self.actors), master_addr, master_port) for rank, a in enumerate(self.actors)])

    @property
    def size(self) -> int:
        return len(self.actors)

    def run(self, method: str, per_rank: list[tuple]) -> list:
        import ray

        with self._lock:
            refs = [getattr(a, method).remote(*call) for a, call in zip(self.actors, per_rank)]
        try:
            return ray.get(refs)
        except ray.exceptions.RayTaskError as err:
            from slime.rollout.client import EngineError

            if isinstance(err.cause, EngineError):  # an engine failed the push: its own message, no traceback
                raise err.cause from None
            raise

    def on_every_rank(self, method: str, *call) -> list:
        return self.run(method, [call] * self.size)

    def first(self, method: str, *call):
        import ray

        return ray.get(getattr(self.actors[0], method).remote(*call))

