"""torch_dist checkpoints in Megatron-LM's layout, with slime's meaning of --load, --ref-load and --save.

    <dir>/latest_checkpointed_iteration.txt     the last rollout id saved, or "release"
    <dir>/iter_0000020/                          megatron.core.dist_checkpointing files of rollout 20
    <dir>/release/                               a converted checkpoint: weights only

Each checkpoint holds the model (sharded, so another tensor- or pipeline-parallel layout reshards it on
load), and for a run's checkpoints the optimizer, the learning-rate scheduler, every rank's RNG state
and the rollout id. A converted checkpoint (``tools/convert_hf_to_torch_dist.py``) is "release":
loading it through --load starts a run at rollout 0 with fresh optimizer state, as Megatron-LM's
finetune start does.

A folder is told apart from an HF checkpoint by its files: the tracker file (or dist_checkpointing's
``.metadata`` for an iteration folder itself) against ``config.json`` with safetensors.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from slime.utils.checkpoint import INDEX, iteration_dir, latest_rollout_id

RELEASE = "release"


def tracker(path: str | Path) -> str | None:
    file = Path(path) / INDEX
    return file.read_text().strip() if file.is_file() else None


def is_torch_dist(path: str | Path | None) -> bool:
    if not path:
        return False
    folder = Path(path)
    return tracker(folder) is not None or (folder / ".metadata").is_file()


def checkpoint_folder(path: str | Path) -> Path:
    """The dist_checkpointing folder of the latest checkpoint under ``path`` (or ``path`` itself)."""
    folder = Path(path)
    if (folder / ".metadata").is_file():
        return folder
    mark = tracker(folder)
    if mark == RELEASE:
        return folder / RELEASE
    return iteration_dir(folder, int(mark))


def _rng_state():
    from megatron.core import parallel_state as ps
    from megatron.core import tensor_parallel
    from megatron.core.dist_checkpointing.mapping import ShardedObject

    state = {"random": random.getstate(), "torch": torch.get_rng_state(),
             "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
             "tracker": tensor_parallel.get_cuda_rng_tracker().get_states()}
    pp, tp = ps.get_pipeline_model_parallel_rank(), ps.get_tensor_model_parallel_rank()
    return ShardedObject("rng_state", state, (ps.get_pipeline_model_parallel_world_size(),
                                              ps.get_tensor_model_parallel_world_size()), (pp, tp),
                         replica_id=ps.get_data_parallel_rank(with_context_parallel=True))


def _set_rng_state(state: dict) -> None:
    from megatron.core import tensor_parallel

    random.setstate(state["random"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    tensor_parallel.get_cuda_rng_tracker().set_states(state["tracker"])


def _layout() -> dict:
    from megatron.core import parallel_state as ps

    return {"tp": ps.get_tensor_model_parallel_world_size(), "pp": ps.get_pipeline_model_parallel_world_size()}


def save(path: str | Path, rollout_id: int | None, model, optimizer=None, scheduler=None,
         with_rng: bool = True) -> Path:
    """Every rank writes its shards; rank 0 writes the tracker file last. ``rollout_id`` None writes a
    release (weights only); ``with_rng`` False (--no-save-rng) leaves the RNG state out."""
    import torch.distributed as dist
    from megatron.core import dist_checkpointing

    folder = Path(path) / RELEASE if rollout_id is None else iteration_dir(path, rollout_id)
    if dist.get_rank() == 0:
        folder.mkdir(parents=True, exist_ok=True)
    dist.barrier()
    state = {"model": model.sharded_state_dict(), "layout": _layout(), "rollout_id": rollout_id,
             "has_rng": optimizer is not None and with_rng}
    if optimizer is not None:
        state["optimizer"] = optimizer.sharded_state_dict(state["model"])
        state["opt_param_scheduler"] = scheduler.state_dict()
        if with_rng:
            state["rng_state"] = _rng_state()
    dist_checkpointing.save(state, str(folder))
    dist.barrier()
    if dist.get_rank() == 0:
        from slime.utils.files import atomic_write

        atomic_write(Path(path) / INDEX, f"{RELEASE if rollout_id is None else rollout_id}\n")
    dist.barrier()
    return folder


def load(path: str | Path, model, optimizer=None, scheduler=None, skip: tuple[str, ...] = (),
         with_rng: bool = True) -> int | None:
    """Load the latest checkpoint under ``path`` into ``model`` (the GPTModel, not its DDP wrapper): the
    model always, but for parameters named with a ``skip`` prefix; optimizer, scheduler and RNG when given
    and saved (the RNG not with ``with_rng`` False: --no-load-rng). Returns the rollout id saved (None for
    a release)."""
    from megatron.core import dist_checkpointing

    folder = checkpoint_folder(path)
    common = dist_checkpointing.load_common_state_dict(str(folder))
    has_training_state = optimizer is not None and "opt_param_scheduler" in common
    model_state = {key: value for key, value in model.sharded_state_dict().items() if not key.startswith(skip)}
    state = {"model": model_state}
    if has_training_state:
        state["optimizer"] = optimizer.sharded_state_dict(model_state, is_loading=True)
        if with_rng and common.get("layout") == _layout() and common.get("has_rng", True):
            state["rng_state"] = _rng_state()
    loaded = dist_checkpointing.load(state, str(folder))
    model.load_state_dict(loaded["model"], strict=not skip)
    if has_training_state:
        optimizer.load_state_dict(loaded["optimizer"])
        scheduler.load_state_dict(common["opt_param_scheduler"])
        if "rng_state" in loaded:
            _set_rng_state(loaded["rng_state"])
    return common.get("rollout_id")


__all__ = ["RELEASE", "checkpoint_folder", "is_torch_dist", "latest_rollout_id", "load", "save", "tracker"]
