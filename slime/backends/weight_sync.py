"""The weight push from the train ranks to the rollout engines, the ways SGLang takes new weights; one
implementation for every train backend (``TrainBackend.update_weights`` calls it on each rank).

Every rank iterates ``hf_weight_buckets`` (a collective: a sharded backend gathers each tensor), and
the ranks that hold full tensors send them, by ``--update-weight-transport``:

- ``disk``: each bucket becomes a safetensors file in ``--update-weight-disk-dir``; rank 0 adds the
  index and the model's config files, then asks every engine to ``/update_weights_from_disk``. Any
  placement, as long as the engines can read the folder.
- ``nccl``, colocated: each bucket goes to ``/update_weights_from_tensor`` — CUDA IPC handles
  (SGLang's ``MultiprocessingSerializer``) for tensors on a GPU, the tensors by value (safetensors
  bytes) for tensors on a CPU, which is what the torch engine takes. A handle opens only on its own
  node, and each of an engine's tensor-parallel ranks reads the copy on its own GPU, as slime does:
  every train rank gets the bucket (broadcast from rank 0, which gathered it), the train rank on the
  GPU of an engine's rank ``j`` serializes entry ``j`` of ``serialized_named_tensors``, the entries
  of one engine are gathered on the train rank of its first GPU, and that rank posts them.
- ``nccl``, engines on their own GPUs: rank 0 opens a weight-update process group with the engines
  (``/init_weights_update_group``; NCCL on GPUs, gloo on CPUs), announces each bucket with
  ``/update_weights_from_distributed`` and broadcasts its tensors.

Per-bucket updates leave the KV cache alone; each engine's cache is flushed once at the end.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

from slime.utils.background import in_background

GROUP_NAME = "slime_weight_update"
CONFIG_SUFFIXES = (".json", ".py", ".txt", ".model", ".tiktoken")  # what a model folder holds besides weights


def transport(args) -> str:
    """``disk``, ``tensor`` or ``distributed``, from --update-weight-transport and the placement."""
    if args.update_weight_transport == "disk":
        return "disk"
    return "tensor" if args.colocate else "distributed"


# -- tensors by value (CPU) and by CUDA IPC handle (GPU) ---------------------------------------------
def encode_tensors(named_tensors: list[tuple[str, torch.Tensor]]) -> str:
    """One entry of ``serialized_named_tensors`` for a CPU engine: the tensors by value."""
    from safetensors.torch import save

    return base64.b64encode(save({name: t.detach().contiguous().cpu() for name, t in named_tensors})).decode()


def decode_tensors(entry: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    return load(base64.b64decode(entry, validate=True))


def serialize_entry(bucket: list[tuple[str, torch.Tensor]]) -> str:
    """One entry of ``serialized_named_tensors``: CUDA IPC handles of tensors on this process's GPU (as
    SGLang reads them), or the tensors by value when they are on the CPU."""
    if bucket and bucket[0][1].is_cuda:
        from sglang.srt.utils import MultiprocessingSerializer

        return MultiprocessingSerializer.serialize(bucket, output_str=True)
    return encode_tensors(bucket)


# -- the push ------------------------------------------------------------------------------------------
def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def _on_every_engine(engines: list[dict], path: str, payload_of) -> None:
    """POST to every engine at once; the first failure is raised, naming the engine."""
    from concurrent.futures import ThreadPoolExecutor

    from slime.rollout.client import http_json

    def call(engine: dict) -> None:
        http_json(engine["url"], path, payload_of(engine), timeout=1800, engine=_describe(engine),
                  key=engine.get("key"))

    with ThreadPoolExecutor(max_workers=max(1, len(engines))) as pool:
        list(pool.map(call, engines))


def _describe(engine: dict) -> str:
    return f"rollout engine {engine['index']} ({engine['url']} on host {engine['host']}; log {engine['log']})"


def push_weights(backend, args, engines: list[dict], version: int) -> None:
    """Send the backend's current weights to ``engines`` (dicts of index, url, host, log, tp_size and the
    run's API key)."""
    rank, world = _rank_and_world()
    buckets = backend.hf_weight_buckets(args.update_weight_buffer_size)
    kind = transport(args)
    if kind == "disk":
        _push_by_disk(args, buckets, engines, version, rank, world)
    elif kind == "tensor":
        _push_by_tensor(backend, args, buckets, engines, version, rank, world)
    else:
        _push_distributed(backend, buckets, engines, version, rank)
    _barrier(world)
    if rank == 0 and kind != "disk":
        _on_every_engine(engines, "/flush_cache", lambda e: {})


def _push_by_disk(args, buckets: Iterable, engines: list[dict], version: int, rank: int, world: int) -> None:
    from safetensors.torch import save_file

    root = Path(args.update_weight_disk_dir)  # the trainer makes one per run when unset
    target = root / f"weights_v{version}"
    if rank == 0:
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
    _barrier(world)
    weight_map = {}
    for k, bucket in enumerate(buckets):
        if bucket:
            name = f"model-rank{rank:05d}-{k:05d}.safetensors"
            save_file({n: t.detach().contiguous().cpu() for n, t in bucket}, target / name)
            weight_map.update({n: name for n, _ in bucket})
    if world > 1:
        maps = [None] * world
        dist.all_gather_object(maps, weight_map)
        weight_map = {k: v for m in maps for k, v in m.items()}
    if rank != 0:
        return
    for source in Path(args.hf_checkpoint).iterdir():
        if source.suffix in CONFIG_SUFFIXES and not source.name.endswith(".index.json"):
            shutil.copy2(source, target / source.name)
    (target / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    _on_every_engine(engines, "/update_weights_from_disk", lambda e: {
        "model_path": str(target), "flush_cache": True, "weight_version": str(version), "abort_all_requests": False})
    for old in root.glob("weights_v*"):  # the engines read the new folder; older ones are done with
        if old != target:
            shutil.rmtree(old, ignore_errors=True)


def colocated_engine(rank: int, per_engine: int) -> tuple[int, int]:
    """(engine index, its tensor-parallel rank) on the GPU of train rank ``rank``: colocated engine ``i``
    takes the actor's bundles ``i × per_engine`` onwards, and train rank ``r`` sits on bundle ``r``."""
    return rank // per_engine, rank % per_engine


def _push_by_tensor(backend, args, buckets: Iterable, engines: list[dict], version: int, rank: int,
                    world: int) -> None:
    per_engine = args.rollout_num_gpus_per_engine
    index, slot = colocated_engine(rank, per_engine)
    engine = next((e for e in engines if e["index"] == index), None)
    group = _engine_group(backend, index, per_engine, world)
    for bucket in _on_every_rank(buckets, rank, world):
        entry = serialize_entry(bucket)
        entries = [entry]
        if group is not None:
            leader = index * per_engine
            entries = [None] * per_engine if slot == 0 else None
            dist.gather_object(entry, entries, dst=leader, group=group)
        if slot == 0 and engine is not None:
            _on_every_engine([engine], "/update_weights_from_tensor", lambda e: {
                "serialized_named_tensors": entries, "load_format": None, "flush_cache": False,
                "weight_version": str(version)})
        if group is not None:  # the engine has read every rank's copy before any rank frees it
            dist.barrier(group=group)


def _on_every_rank(buckets: Iterable, rank: int, world: int):
    """Each bucket of rank 0 (which gathered the full tensors) on every rank, on that rank's device.
    Every rank still draws its own buckets, which is a collective for a sharded backend; rank 0's say
    how many there are (a replicated backend yields them on rank 0 alone)."""
    if world == 1:
        yield from (bucket for bucket in buckets if bucket)
        return
    device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    mine = iter(buckets)
    while True:
        bucket = next(mine, None)
        header = [None if bucket is None else [(n, t.shape, t.dtype) for n, t in bucket]] if rank == 0 else [None]
        dist.broadcast_object_list(header, src=0)
        if header[0] is None:
            return
        if rank == 0:
            tensors = [t.detach().contiguous().to(device) for _, t in bucket]
        else:
            tensors = [torch.empty(shape, dtype=dtype, device=device) for _, shape, dtype in header[0]]
        for tensor in tensors:
            dist.broadcast(tensor, src=0)
        if header[0]:
            yield [(name, tensor) for (name, _, _), tensor in zip(header[0], tensors)]


def _engine_group(backend, index: int, per_engine: int, world: int):
    """The process group of the train ranks on one engine's GPUs (made once, by every rank, for every
    engine), or None when an engine has one GPU."""
    if per_engine == 1 or world == 1:
        return None
    cached = getattr(backend, "_engine_groups", None)
    if cached is None or cached[0] != per_engine:
        groups = [dist.new_group(list(range(start, min(start + per_engine, world))))
                  for start in range(0, world, per_engine)]
        cached = backend._engine_groups = (per_engine, groups)
    return cached[1][index]


def _push_distributed(backend, buckets: Iterable, engines: list[dict], version: int, rank: int) -> None:
    broadcast = None
    for bucket in buckets:
        if not bucket:
            continue
        if rank != 0:
            raise NotImplementedError("the distributed weight push sends from rank 0 of the role; this backend "
                                      f"holds full weights on rank {rank} too (use --update-weight-transport disk)")
        broadcast = broadcast or _update_group(backend, engines, bucket[0][1].is_cuda)
        names = [n for n, _ in bucket]
        dtypes = [str(t.dtype).removeprefix("torch.") for _, t in bucket]
        shapes = [list(t.shape) for _, t in bucket]
        announced = in_background(lambda: _on_every_engine(engines, "/update_weights_from_distributed", lambda e: {
            "names": names, "dtypes": dtypes, "shapes": shapes, "group_name": GROUP_NAME, "flush_cache": False,
            "weight_version": str(version)}))
        for _, tensor in bucket:
            broadcast(tensor.detach().contiguous())
        announced.result()


def _update_group(backend, engines: list[dict], cuda: bool):
    """The weight-update group of rank 0 and every engine's ranks, made once per set of engines."""
    from slime.utils.addresses import reachable_host
    from slime.utils.ports import free_ports

    key = tuple(e["url"] for e in engines)
    cached = getattr(backend, "_weight_update_group", None)
    if cached and cached[0] == key:
        return cached[1]
    host = reachable_host()
    port = free_ports(1)[0]
    world = 1 + sum(e["tp_size"] for e in engines)
    offsets = {e["url"]: 1 + sum(x["tp_size"] for x in engines[:i]) for i, e in enumerate(engines)}
    print(f"slime: the weight-update group meets at {host}:{port} ({world - 1} engine rank(s))", flush=True)
    joined = in_background(lambda: _on_every_engine(engines, "/init_weights_update_group", lambda e: {
        "master_address": host, "master_port": port, "rank_offset": offsets[e["url"]], "world_size": world,
        "group_name": GROUP_NAME, "backend": "nccl" if cuda else "gloo"}))
    timeout = timedelta(minutes=10)
    if cuda:  # SGLang's own helper, so the rendezvous matches its side exactly
        from sglang.srt.utils.common import init_custom_process_group

        nccl = init_custom_process_group(backend="nccl", init_method=f"tcp://{host}:{port}", world_size=world, rank=0,
                                         group_name=GROUP_NAME, timeout=timeout)
        store = None

        def group_broadcast(tensor):
            dist.broadcast(tensor, src=0, group=nccl)
    else:  # the torch engine's side: a standalone gloo group over a TCP store
        store = dist.TCPStore(host, port, world, is_master=True, timeout=timeout, wait_for_workers=False)
        gloo = dist.ProcessGroupGloo(store, 0, world, timeout)

        def group_broadcast(tensor):
            gloo.broadcast(tensor, 0).wait()
    joined.result()
    backend._weight_update_group = (key, group_broadcast, store)
    return group_broadcast
