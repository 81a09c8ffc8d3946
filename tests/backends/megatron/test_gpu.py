"""The megatron backend's GPU-only paths; every test skips without CUDA and says what it checks.

These are the same code as the CPU path with the pieces a CPU cannot run: the transformer-engine
layer spec and fused kernels, bf16, the distributed optimizer (and its resume), sequence parallel.
They have not run in this project's CI, which has no GPU.
"""

from __future__ import annotations

import os

import pytest
import torch

from tests.helpers.megatron import spawn, tiny_args

pytestmark = [pytest.mark.gpu, pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (and transformer-engine)")]

GPU_SETTINGS = ("perf.transformer_impl=transformer_engine", "~perf.no_rope_fusion",
                "~perf.no_gradient_accumulation_fusion")


def two_gpus():
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA GPUs")


@pytest.fixture(scope="module")
def tiny(tiny_models):
    pytest.importorskip("transformer_engine")
    return tiny_models


def _logits(rank, world_size, port, args, ids):
    os.environ["CUDA_VISIBLE_DEVICES"] = str(rank)
    from slime.backends.megatron.backend import MegatronTrainBackend

    backend = MegatronTrainBackend(args, "actor")
    backend.init(rank, world_size, "127.0.0.1", port)
    backend.model.eval()
    ids = ids.cuda()
    width = ids.shape[1]
    with torch.no_grad():
        logits = backend.model(ids, torch.arange(width, device="cuda")[None].expand_as(ids), None)
    return logits.float().cpu()


def _steps(rank, world_size, port, args, save):
    os.environ["CUDA_VISIBLE_DEVICES"] = str(rank)
    from tests.helpers.megatron import steps_batch, train_steps

    first = train_steps(rank, world_size, port, args, steps_batch(), save)
    return first


def test_transformer_engine_spec_in_bf16_gives_the_local_specs_logits(tiny):
    """The TE spec (fused norms in linear layers, TE attention) in bf16 against HF's fp32 logits."""
    from transformers import AutoModelForCausalLM

    ids = torch.randint(3, 15, (2, 9), generator=torch.Generator().manual_seed(0))
    args = tiny_args(tiny, "tiny-qwen3", *GPU_SETTINGS, "perf.tensor_model_parallel_size=1",
                     "cluster.actor_num_gpus_per_node=1")
    got = spawn(1, _logits, args, ids)[0][..., :args.vocab_size]
    model = AutoModelForCausalLM.from_pretrained(tiny / "tiny-qwen3", dtype=torch.float32).eval()
    with torch.no_grad():
        expected = model(ids).logits
    assert float((got - expected).abs().max()) < 0.05  # bf16


def test_bf16_with_the_distributed_optimizer_trains_and_resumes(tiny, tmp_path):
    """slime's GPU defaults (bf16, distributed optimizer): two steps, a save, and a resume that continues
    with the same weights."""
    args = tiny_args(tiny, "tiny", *GPU_SETTINGS, "perf.tensor_model_parallel_size=1",
                     "cluster.actor_num_gpus_per_node=1", f"ckpt.save={tmp_path}", f"ckpt.load={tmp_path}")
    first = spawn(1, _steps, args, tmp_path)[0]
    from tests.helpers.megatron import resume

    resumed = spawn(1, resume, args, first["batch"])[0]
    assert resumed["loaded_id"] == 3
    assert all(torch.equal(first["saved"][k], resumed["loaded"][k]) for k in first["saved"])


def test_sequence_parallel_at_tp2_trains_like_tp2_without_it(tiny):
    two_gpus()
    runs = {}
    for name, extra in (("sp", ["+perf.sequence_parallel=true"]), ("plain", [])):
        args = tiny_args(tiny, "tiny", *GPU_SETTINGS, *extra)
        runs[name] = spawn(2, _steps, args, None)[0]
    assert runs["sp"]["metrics"]["actor/loss"] == pytest.approx(runs["plain"]["metrics"]["actor/loss"], rel=1e-2)


def _gpu_offload(rank, world_size, port, args):
    """One step, then --offload-train's offload: the GPU memory it hands back, a push while offloaded,
    and the state after onloading; then another step."""
    import copy

    os.environ["CUDA_VISIBLE_DEVICES"] = str(rank)
    from slime.backends.megatron.backend import MegatronTrainBackend
    from tests.helpers.megatron import same, steps_batch, with_log_probs

    backend = MegatronTrainBackend(args, "actor")
    backend.init(rank, world_size, "127.0.0.1", port)
    batch = with_log_probs(backend, steps_batch())
    backend.train(batch, [len(batch)], [0])
    weights, before = backend.export_weights(), copy.deepcopy(backend.state_fingerprint())
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    free_before = torch.cuda.mem_get_info()[0]
    backend.offload()
    freed = torch.cuda.mem_get_info()[0] - free_before
    pushed = backend.export_weights()
    backend.onload()
    state_bytes = sum(p.numel() * p.element_size() for p in backend.module.parameters())
    identical = same(copy.deepcopy(backend.state_fingerprint()), before)
    backend.train(batch, [len(batch)], [0])
    return {"method": backend.memory.method, "freed": freed, "parameter_bytes": state_bytes,
            "push": same(pushed, weights), "identical": identical}


@pytest.mark.parametrize("method", ["torch_memory_saver", "storage copies"])
def test_offload_train_hands_the_gpu_memory_back_and_restores_the_state(tiny, method):
    """--offload-train on a GPU, by torch_memory_saver's pause/resume (where installed, as slime) and by
    storage copies into pinned host memory: at least the parameters' bytes come back to the device's
    free memory, a push while offloaded sends the trained weights, and model, optimizer and scheduler
    state are identical after onloading."""
    if method == "torch_memory_saver":
        pytest.importorskip("torch_memory_saver")
    offload = "+cluster.offload_train=true" if method == "torch_memory_saver" else "+cluster.offload_train=false"
    args = tiny_args(tiny, "tiny", *GPU_SETTINGS, "perf.tensor_model_parallel_size=1",
                     "cluster.actor_num_gpus_per_node=1", offload)
    result = spawn(1, _gpu_offload, args)[0]
    assert result["method"] == method
    assert result["freed"] >= result["parameter_bytes"]
    assert result["push"] and result["identical"]
