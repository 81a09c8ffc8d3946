"""The Ray actors of a run: a train group per role (one actor per data-parallel rank) and the rollout
engines, each pinned to its bundle of the placement group."""

from __future__ import annotations

import argparse

from slime.ray.placement import ENGINE_GPU_FRACTION, TRAIN_GPU_FRACTION, Placement


def _backend_class(args: argparse.Namespace):
    if args.train_backend == "torch":
        from slime.backends.torch_backend import TorchTrainBackend

        return TorchTrainBackend
    raise NotImplementedError("--train-backend megatron needs GPUs and megatron-core's training path, which this "
                              "version does not include yet; use --train-backend torch")


def _engine_class(args: argparse.Namespace):
    if args.rollout_backend == "torch":
        from slime.backends.torch_engine import TorchEngine

        return TorchEngine
    raise NotImplementedError("--rollout-backend sglang needs GPUs and SGLang's server, which this version does not "
                              "launch yet; use --rollout-backend torch")


def _options(placement: Placement, bundle: int, gpu_fraction: float) -> dict:
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    return {"num_cpus": 0, "num_gpus": gpu_fraction,
            "scheduling_strategy": PlacementGroupSchedulingStrategy(placement_group=placement.group,
                                                                    placement_group_bundle_index=bundle)}


class TrainGroup:
    """One Ray actor per rank of a role; methods run on every rank and return per-rank results."""

    def __init__(self, args: argparse.Namespace, role: str, placement: Placement):
        import ray

        bundles = placement.actor if role == "actor" else placement.critic
        remote = ray.remote(_backend_class(args))
        self.role = role
        self.actors = [remote.options(**_options(placement, b, TRAIN_GPU_FRACTION)).remote(args, role) for b in bundles]
        master_addr, master_port = ray.get(self.actors[0].address.remote())
        ray.get([a.init.remote(rank, len(self.actors), master_addr, master_port) for rank, a in enumerate(self.actors)])

    @property
    def size(self) -> int:
        return len(self.actors)

    def run(self, method: str, per_rank: list[tuple]) -> list:
        import ray

        return ray.get([getattr(a, method).remote(*call) for a, call in zip(self.actors, per_rank)])

    def first(self, method: str, *call):
        import ray

        return ray.get(getattr(self.actors[0], method).remote(*call))


class EngineGroup:
    """The rollout engines and their URLs."""

    def __init__(self, args: argparse.Namespace, placement: Placement):
        import ray

        remote = ray.remote(_engine_class(args))
        self.engines = [remote.options(**_options(placement, b, ENGINE_GPU_FRACTION)).remote(args.hf_checkpoint,
                                                                                             args.rollout_seed)
                        for b in placement.rollout]
        self.urls = ray.get([e.url.remote() for e in self.engines])

    def update_weights(self, state_ref) -> None:
        import ray

        ray.get([e.update_weights.remote(state_ref) for e in self.engines])

    def release(self) -> None:
        import ray

        ray.get([e.release_memory.remote() for e in self.engines])

    def resume(self) -> None:
        import ray

        ray.get([e.resume_memory.remote() for e in self.engines])
