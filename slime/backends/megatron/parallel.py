"""The process group of a role and megatron-core's parallel state from the role's Topology.

Every rank of a role joins one torch.distributed group (NCCL on GPUs, gloo on CPU), then
``initialize_model_parallel`` carves it into tensor-, pipeline-, context-, expert- and data-parallel
groups; the model-parallel RNG is seeded as Megatron-LM does.
"""

from __future__ import annotations

import argparse
from datetime import timedelta

import torch
import torch.distributed as dist

from slime.arguments.topology import Topology
from slime.backends.base import Layout


def device():
    """Where this rank's tensors and collectives live: its GPU (NCCL reduces GPU tensors), else the CPU."""
    return torch.cuda.current_device() if torch.cuda.is_available() else "cpu"


def init_distributed(args: argparse.Namespace, topology: Topology, rank: int, master_addr: str,
                     master_port: int) -> Layout:
    """Join the role's process group of ``topology.world`` ranks and carve it by ``topology``'s sizes."""
    from megatron.core import parallel_state, tensor_parallel

    backend = args.distributed_backend if torch.cuda.is_available() else "gloo"  # CPU collectives: gloo
    if torch.cuda.is_available():
        torch.cuda.set_device(0)  # Ray gives each train actor one GPU of its bundle
    dist.init_process_group(backend, init_method=f"tcp://{master_addr}:{master_port}", rank=rank,
                            world_size=topology.world, timeout=timedelta(minutes=args.distributed_timeout_minutes))
    parallel_state.initialize_model_parallel(
        tensor_model_parallel_size=topology.tp,
        pipeline_model_parallel_size=topology.pp,
        virtual_pipeline_model_parallel_size=None,
        context_parallel_size=topology.cp,
        expert_model_parallel_size=topology.ep,
        expert_tensor_parallel_size=topology.etp,
        distributed_timeout_minutes=args.distributed_timeout_minutes,
    )
    tensor_parallel.model_parallel_cuda_manual_seed(args.seed)
    return current_layout()


def current_layout() -> Layout:
    from megatron.core import parallel_state as ps

    tp_rank = ps.get_tensor_model_parallel_rank()
    return Layout(rank=dist.get_rank(), world_size=dist.get_world_size(), dp_rank=ps.get_data_parallel_rank(),
                  dp_size=ps.get_data_parallel_world_size(), tp_rank=tp_rank,
                  pp_rank=ps.get_pipeline_model_parallel_rank(),
                  is_result_rank=tp_rank == 0 and ps.is_pipeline_last_stage() and ps.get_context_parallel_rank() == 0)


def destroy() -> None:
    from megatron.core import parallel_state

    parallel_state.destroy_model_parallel()
    if dist.is_initialized():
        dist.destroy_process_group()
