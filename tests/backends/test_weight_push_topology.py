"""The colocated weight push reaches each engine from the train ranks on its own GPUs, as slime's does: a
CUDA IPC handle opens only on its node, and each of an engine's tensor-parallel ranks reads the copy on
its own GPU. Two gloo ranks stand for two GPUs; the bucket is gathered on rank 0 only (a replicated
backend yields it there alone); the push records what each rank would post instead of posting it."""

from __future__ import annotations

import argparse

import pytest
import torch

from slime.backends.weight_sync import colocated_engine, decode_tensors
from tests.helpers.stack import require_module

WEIGHTS = {"model.norm.weight": torch.arange(4.0), "lm_head.weight": torch.ones(3, 2)}


class RankZeroBackend:
    """Holds the full weights on rank 0 only, as the torch backend's replicas and megatron's gather do."""

    def __init__(self, rank: int):
        self.rank = rank

    def hf_weight_buckets(self, bucket_bytes: int):
        if self.rank == 0:
            for name, tensor in WEIGHTS.items():
                yield [(name, tensor.clone())]


def _push_on(rank: int, world: int, port: int, per_engine: int) -> list:
    import torch.distributed as dist

    from slime.backends import weight_sync

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    posted = []

    def record(engines, path, payload_of):
        for engine in engines:
            payload = payload_of(engine)
            posted.append((engine["index"], path, [decode_tensors(e) for e in payload["serialized_named_tensors"]]))

    weight_sync._on_every_engine = record
    args = argparse.Namespace(rollout_num_gpus_per_engine=per_engine, update_weight_transport="nccl", colocate=True,
                              update_weight_buffer_size=1 << 20)
    engines = [{"index": i, "url": f"http://engine{i}", "host": "h", "log": "l", "tp_size": per_engine}
               for i in range(world // per_engine)]
    weight_sync._push_by_tensor(RankZeroBackend(rank), args, RankZeroBackend(rank).hf_weight_buckets(0), engines, 1,
                                rank, world)
    dist.destroy_process_group()
    return posted


@pytest.mark.slow
@pytest.mark.parametrize(("per_engine", "want"), [
    (1, [[(0, 1)], [(1, 1)]]),  # two engines of one GPU: each rank posts its own copy to the engine on its GPU
    (2, [[(0, 2)], []]),  # one engine of two GPUs: rank 0 posts both ranks' entries, rank 1 nothing
])
def test_each_engine_gets_one_entry_per_gpu_from_the_ranks_on_its_gpus(per_engine, want):
    require_module("torch")
    from slime.utils.local_ranks import run_ranks

    posted = run_ranks(2, _push_on, per_engine, timeout=120)
    for rank, calls in enumerate(posted):
        assert [(index, len(entries)) for index, _, entries in calls[:1]] == want[rank]
        assert len(calls) == (len(WEIGHTS) if want[rank] else 0)  # one post per bucket
        for _, path, entries in calls:
            assert path == "/update_weights_from_tensor"
            for entry in entries:
                (name, tensor), = entry.items()
                assert torch.equal(tensor, WEIGHTS[name])


def test_colocated_engines_take_consecutive_gpus_of_the_actor():
    assert [colocated_engine(r, 4) for r in (0, 3, 4, 7)] == [(0, 0), (0, 3), (1, 0), (1, 3)]


def test_gpu_slots_follow_nodes_and_gpu_ids_whatever_order_ray_gave_the_bundles():
    """Engines and train ranks take consecutive slots: they must be consecutive GPUs of one node."""
    from slime.ray.placement import Placement, gpu_order

    places = [("10.0.0.2", ["1"]), ("10.0.0.10", ["0"]), ("10.0.0.2", ["0"]), ("10.0.0.10", ["1"]),
              ("10.0.0.2", ["10"]), ("10.0.0.2", ["2"])]
    order = gpu_order(places)
    assert [places[i] for i in order] == [("10.0.0.2", ["0"]), ("10.0.0.2", ["1"]), ("10.0.0.2", ["2"]),
                                          ("10.0.0.2", ["10"]), ("10.0.0.10", ["0"]), ("10.0.0.10", ["1"])]
    placement = Placement(None, [0, 1], [], [2], order)
    assert [placement.bundle(s) for s in range(6)] == order
    assert Placement(None, [0], [], [0]).bundle(3) == 3
