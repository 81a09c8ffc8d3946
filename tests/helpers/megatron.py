"""Running megatron-core on several CPU processes inside a test: gloo ranks spawned fresh, each
building the megatron backend from a tiny config; results come back per rank. The functions the ranks
run live here (spawned processes import them by module): training steps, a resume, a push into an
engine, megatron's parallel state."""

from __future__ import annotations

import pytest
import torch

from slime.arguments.topology import Topology
from slime.cli.make_tiny_model import MODELS
from slime.utils.local_ranks import RankFailed, run_ranks
from tests.helpers.stack import require_module

# conf/model file → folder that tools/make_tiny_model.py writes it to, one per mapped family (tiny-chat
# is tiny's architecture with another tokenizer)
TINY_FOLDERS = {name: folder for name, folder in MODELS.items() if name != "tiny-chat"}


def spawn(world_size: int, function, *args, timeout: float = 600) -> list:
    """``function(rank, world_size, port, *args)`` on ``world_size`` fresh processes; their results by
    rank. A rank that fails fails the test with its traceback."""
    try:
        return run_ranks(world_size, function, *args, timeout=timeout)
    except RankFailed as err:
        pytest.fail(str(err), pytrace=False)


def tiny_args(base, model: str = "tiny", *overrides: str, config: str = "run_tiny_megatron"):
    """The Namespace of a tiny megatron config on model ``model`` built under ``base``, with a KL loss of
    some weight, so that the reference model is loaded, swapped in and used."""
    from slime.config.compose import namespace_from_config

    require_module("megatron.core")
    folder = TINY_FOLDERS[model]
    return namespace_from_config(config, [f"model={model}", f"ckpt.hf_checkpoint={base}/{folder}",
                                          f"ckpt.ref_load={base}/{folder}", "grpo.kl_loss_coef=0.001", *overrides],
                                 environ={"BASE_FOLDER": str(base)})


def steps_batch(seed: int = 0) -> list[dict]:
    """Eight samples of different lengths with old and reference log-probs filled in later."""
    import random

    rng = random.Random(seed)
    batch = []
    for _ in range(8):
        prompt = [2] + [rng.randint(3, 12) for _ in range(rng.randint(2, 4))]
        response = [rng.randint(3, 12) for _ in range(rng.randint(1, 4))] + [1]
        batch.append({"prompt_tokens": prompt, "response_tokens": response, "loss_mask": [1] * len(response),
                      "rollout_log_probs": [-2.0] * len(response), "advantages": [rng.choice([1.0, -1.0])] * len(response),
                      "returns": [0.0] * len(response)})
    return batch


def with_log_probs(backend, batch):
    """``batch`` with old and reference log-probs from ``backend``, the same on every rank."""
    import torch.distributed as dist

    old = backend.compute_log_probs(batch)
    ref = backend.compute_log_probs(batch, True) if backend.reference_weights is not None else old
    answers = [None] * dist.get_world_size()
    dist.all_gather_object(answers, (old, ref) if old is not None else None)
    old, ref = next(a for a in answers if a is not None)
    return [dict(s, old_log_probs=o, ref_log_probs=r) for s, o, r in zip(batch, old, ref)]


def same(a, b) -> bool:
    """Whether two nested structures of tensors (state dicts) are identical, bit for bit."""
    if torch.is_tensor(a):
        return torch.is_tensor(b) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def _offload_cycle(backend, pushed_before: dict) -> dict:
    """--offload-train's offload and onload between two steps: what was freed, whether a push while
    offloaded sends the same weights, whether model and optimizer state come back bit for bit."""
    import copy

    before = copy.deepcopy(backend.state_fingerprint())
    backend.offload()
    optimizer_state = [v for inner in backend.memory._optimizers() for state in inner.state.values()
                       for v in state.values() if torch.is_tensor(v)]
    freed = {"parameters": all(p.untyped_storage().nbytes() == 0 for p in backend.module.parameters()),
             "gradients": all(b.grad_data.untyped_storage().nbytes() == 0 for b in backend.model.buffers),
             "optimizer": bool(optimizer_state) and all(v.untyped_storage().nbytes() == 0 for v in optimizer_state)}
    pushed = backend.export_weights()  # the trainer pushes after offloading
    freed["after the push"] = all(p.untyped_storage().nbytes() == 0 for p in backend.module.parameters())
    backend.onload()
    return {"freed": freed, "push": same(pushed, pushed_before),
            "identical": same(copy.deepcopy(backend.state_fingerprint()), before)}


def train_steps(rank, world_size, port, args, batch, save_to=None, engine=False, shares=None, offload=False):
    """Two optimizer steps on ``batch`` (every data-parallel rank takes its half, or its ``shares``: the
    sample indices of each step per data-parallel rank), a save after the first when asked; then
    (``offload``) an offload/onload cycle; the weights after one more step on the whole share; with
    ``engine``, the engine's and the trainer's log-probs after a push; and megatron's parallel sizes."""
    from slime.backends.megatron.backend import MegatronTrainBackend

    backend = MegatronTrainBackend(args, "actor")
    backend.init(rank, world_size, "127.0.0.1", port)
    layout = backend.layout()
    parallel = _parallel_sizes()
    batch = with_log_probs(backend, batch) if batch[0].get("old_log_probs") is None else batch
    if shares is None:
        share = [s for i, s in enumerate(batch) if i % layout.dp_size == layout.dp_rank]
        sizes = [len(share) // 2, len(share) - len(share) // 2]
    else:
        steps = shares[layout.dp_rank]
        share, sizes = [batch[i] for step in steps for i in step], [len(step) for step in steps]
    metrics = backend.train(share, sizes, [0] * len(sizes))
    if save_to:
        backend.save(str(save_to), 3)
    saved = backend.export_weights()
    cycle = _offload_cycle(backend, saved) if offload else None
    backend.train(share, [len(share)], [0])
    return {"metrics": metrics, "saved": saved, "after": backend.export_weights(), "batch": batch,
            "result_rank": layout.is_result_rank, "engine": _engine_log_probs(backend, rank) if engine else None,
            "offload": cycle, "parallel": parallel}


def _parallel_sizes() -> tuple[Topology, int, int]:
    """megatron-core's parallel state on this rank: its sizes as a Topology, its data-parallel and expert
    data-parallel sizes."""
    import torch.distributed as dist
    from megatron.core import parallel_state as ps

    return (Topology(dist.get_world_size(), ps.get_tensor_model_parallel_world_size(),
                     ps.get_pipeline_model_parallel_world_size(), ps.get_context_parallel_world_size(),
                     ps.get_expert_model_parallel_world_size(), ps.get_expert_tensor_parallel_world_size()),
            ps.get_data_parallel_world_size(), ps.get_expert_data_parallel_world_size())


def assert_parallel_state_is_the_topology(args, result: list[dict]) -> None:
    """Every rank's megatron parallel state is the role's Topology, with its dp and expert dp."""
    topology = Topology.of(args, "actor", world=len(result))
    assert [r["parallel"] for r in result] == [(topology, topology.dp, topology.expert_dp)] * len(result)


def resume(rank, world_size, port, args, batch, starts_in=None):
    """Resume from --load, then one more step on the batch the saving run used; with ``starts_in`` (a
    folder), the starts of a run without a checkpoint of its own from there (``_starts``)."""
    from slime.backends.megatron.backend import MegatronTrainBackend

    backend = MegatronTrainBackend(args, "actor")
    backend.init(rank, world_size, "127.0.0.1", port)
    loaded = backend.export_weights()
    layout = backend.layout()
    share = [s for i, s in enumerate(batch) if i % layout.dp_size == layout.dp_rank]
    backend.train(share, [len(share)], [0])
    after, finite = backend.export_weights(), backend.non_finite_parameters()
    starts = _starts(backend, starts_in) if starts_in else None
    if rank == world_size - 1:  # one shard of the last rank goes bad: every rank must hear of it
        next(iter(backend._state().values())).data.view(-1)[0] = float("nan")
    return {"loaded_id": backend.loaded_rollout_id(), "loaded": loaded, "after": after, "finite": finite,
            "poisoned": backend.non_finite_parameters(), "starts": starts}


def _starts(backend, folder) -> dict:
    """slime's starts without a checkpoint of the run's own, as the real-model configs use them: a
    converted ("release") torch_dist checkpoint in --load, and a torch_dist --ref-load. The current
    weights are saved as that release first, so that they differ from the HF checkpoint's."""
    from pathlib import Path

    from slime.backends.megatron import checkpoint

    release, empty = Path(folder) / "release-ckpt", Path(folder) / "no-ckpt"
    checkpoint.save(release, None, backend.module)
    a, result = backend.args, {}
    for start, (load, ref_load) in {"release in --load": (release, a.hf_checkpoint),
                                    "torch_dist --ref-load": (empty, release)}.items():
        a.load, a.ref_load, backend._loaded = str(load), str(ref_load), None
        backend._load_weights()
        with backend._swapped(backend.reference_weights):
            reference = backend.export_weights()
        result[start] = {"model": backend.export_weights(), "reference": reference,
                         "loaded_id": backend.loaded_rollout_id()}
    return result


def _engine_log_probs(backend, rank: int) -> list[tuple[float, list[float], list[float]]]:
    """Push the weights into a torch engine, sample at two temperatures; the engine's and the trainer's
    log-probs of each response."""
    import torch.distributed as dist

    weights = backend.export_weights()
    pairs = []
    for temperature in (1.0, 0.7):
        sample = None
        if rank == 0:
            from slime.engines.torch_engine import TorchEngine, parse_server_args

            engine = TorchEngine(parse_server_args(["--model-path", backend.args.hf_checkpoint, "--random-seed", "3"]))
            engine.load_weights(weights, complete=True)
            reply = engine.generate({"input_ids": [2, 5, 13], "return_logprob": True, "sampling_params": {
                "temperature": temperature, "max_new_tokens": 6, "ignore_eos": True}})
            sample = {"prompt_tokens": [2, 5, 13], "response_tokens": reply["output_ids"],
                      "loss_mask": [1] * len(reply["output_ids"]),
                      "engine": [lp for lp, _, _ in reply["meta_info"]["output_token_logprobs"]]}
        shared = [sample]
        dist.broadcast_object_list(shared, src=0)
        backend.args.rollout_temperature = temperature
        mine = backend.compute_log_probs([shared[0]])
        if mine is not None:
            pairs.append((temperature, shared[0]["engine"], mine[0]))
    return pairs
