"""The megatron-core backend on CPU ranks over gloo, against HF and against itself.

- after loading an HF checkpoint, megatron's logits equal the HF model's (≤ 1e-4 in fp32) for every
  mapped family, at tensor parallel 1 and 2; gathering the weights back gives the HF tensors byte for
  byte, and so does HF → torch_dist → HF through the converters;
- the same training steps give the same weights at TP 2, DP 2 and PP 2 as on one rank;
- a checkpoint resumes bit-exactly at its own layout and reshards to another;
- after a weight push, the engine's log-probs of a sampled response equal the trainer's at two
  temperatures.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT, require_module
from tests.megatron_harness import TINY_FOLDERS, spawn, tiny_args

FAMILIES = list(TINY_FOLDERS)
# a KL of nonzero weight: the reference model is loaded, swapped in for its log-probs, and in the loss
WITH_KL = "grpo.kl_loss_coef=0.01"
MOE_FAMILIES = ["tiny-qwen3-moe", "tiny-deepseek-v3"]


@pytest.fixture(scope="module")
def tiny(tiny_models):
    require_module("megatron.core")
    return tiny_models


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


# -- ranks -----------------------------------------------------------------------------------------
def _family_checks(rank, world_size, port, base, ids, families=FAMILIES, layout=None):
    """Per family: full logits for ``ids``, and the weights gathered back after a torch_dist round trip.
    ``layout``: overrides of the parallel layout (tensor parallel over every rank by default)."""
    import torch.distributed as dist
    from megatron.core import parallel_state as ps

    from slime.backends.megatron import checkpoint, cpu_compat
    from slime.backends.megatron.config import transformer_config
    from slime.backends.megatron.model import build_model
    from slime.backends.megatron.parallel import init_distributed
    from slime.backends.megatron.weights import ModelWeights

    cpu_compat.install()
    results = {}
    layout = layout or [f"perf.tensor_model_parallel_size={world_size}"]
    for i, family in enumerate(families):
        args = tiny_args(base, family, *layout, f"cluster.actor_num_gpus_per_node={world_size}")
        if i == 0:
            init_distributed(args, rank, world_size, "127.0.0.1", port)
        config = transformer_config(args)
        module = build_model(args, config, "actor").eval()
        weights = ModelWeights(module, config, args)
        weights.load_hf(args.hf_checkpoint)
        width = ids.shape[1]
        mask = torch.triu(torch.ones(width, width, dtype=torch.bool), 1)[None, None]
        with torch.no_grad():
            logits = module(ids, torch.arange(width)[None].expand_as(ids), mask)
        pieces = [torch.empty_like(logits) for _ in range(ps.get_tensor_model_parallel_world_size())]
        dist.all_gather(pieces, logits.contiguous(), group=ps.get_tensor_model_parallel_group())
        folder = base / f"dist-{family}-{'-'.join(layout)}"
        checkpoint.save(folder, None, module)
        rebuilt = build_model(args, config, "actor")
        checkpoint.load(folder, rebuilt)
        exported = [pair for bucket in ModelWeights(rebuilt, config, args).hf_buckets(4096) for pair in bucket]
        results[family] = {"logits": torch.cat(pieces, -1)[..., :args.vocab_size], "exported": dict(exported)}
    return results


def _with_log_probs(backend, batch):
    """``batch`` with old and reference log-probs from ``backend``, the same on every rank."""
    import torch.distributed as dist

    old = backend.compute_log_probs(batch)
    ref = backend.compute_log_probs(batch, True) if backend.reference_weights is not None else old
    answers = [None] * dist.get_world_size()
    dist.all_gather_object(answers, (old, ref) if old is not None else None)
    old, ref = next(a for a in answers if a is not None)
    return [dict(s, old_log_probs=o, ref_log_probs=r) for s, o, r in zip(batch, old, ref)]


def _train_steps(rank, world_size, port, args, batch, save_to=None, engine=False):
    """Two optimizer steps on ``batch`` (every data-parallel rank takes its half), a save after the first
    when asked; the weights after; with ``engine``, the engine's and the trainer's log-probs after a push."""
    from slime.backends.megatron.backend import MegatronTrainBackend

    backend = MegatronTrainBackend(args, "actor")
    backend.init(rank, world_size, "127.0.0.1", port)
    layout = backend.layout()
    batch = _with_log_probs(backend, batch) if batch[0].get("old_log_probs") is None else batch
    share = [s for i, s in enumerate(batch) if i % layout.dp_size == layout.dp_rank]
    per_rank = len(share)
    metrics = backend.train(share, [per_rank // 2, per_rank - per_rank // 2], [0, 0])
    if save_to:
        backend.save(str(save_to), 3)
    saved = backend.export_weights()
    backend.train(share, [per_rank], [0])
    return {"metrics": metrics, "saved": saved, "after": backend.export_weights(), "batch": batch,
            "result_rank": layout.is_result_rank, "engine": _engine_log_probs(backend, rank) if engine else None}


def _resume(rank, world_size, port, args, batch):
    """Resume from --load, then one more step on the batch the saving run used."""
    from slime.backends.megatron.backend import MegatronTrainBackend

    backend = MegatronTrainBackend(args, "actor")
    backend.init(rank, world_size, "127.0.0.1", port)
    loaded = backend.export_weights()
    layout = backend.layout()
    share = [s for i, s in enumerate(batch) if i % layout.dp_size == layout.dp_rank]
    backend.train(share, [len(share)], [0])
    after, finite = backend.export_weights(), backend.non_finite_parameters()
    if rank == world_size - 1:  # one shard of the last rank goes bad: every rank must hear of it
        next(iter(backend._state().values())).data.view(-1)[0] = float("nan")
    return {"loaded_id": backend.loaded_rollout_id(), "loaded": loaded, "after": after, "finite": finite,
            "poisoned": backend.non_finite_parameters()}


def _engine_log_probs(backend, rank: int) -> list[tuple[float, list[float], list[float]]]:
    """Push the weights into a torch engine, sample at two temperatures; the engine's and the trainer's
    log-probs of each response."""
    import torch.distributed as dist

    weights = backend.export_weights()
    pairs = []
    for temperature in (1.0, 0.7):
        sample = None
        if rank == 0:
            from slime.backends.torch_engine import TorchEngine, parse_server_args

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


# -- tests -------------------------------------------------------------------------------------------
def _max_difference(a: dict, b: dict) -> float:
    assert sorted(a) == sorted(b)
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.fixture(scope="module")
def family_results(tiny):
    from transformers import AutoModelForCausalLM

    ids = torch.randint(3, 15, (2, 9), generator=torch.Generator().manual_seed(0))
    expected = {}
    for family in FAMILIES:
        model = AutoModelForCausalLM.from_pretrained(tiny / TINY_FOLDERS[family], dtype=torch.float32).eval()
        with torch.no_grad():
            expected[family] = model(ids).logits
    results = {tp: spawn(tp, _family_checks, tiny, ids)[0] for tp in (1, 2)}
    # expert parallel 2 (two experts per rank, tokens dispatched by all-gather): the MoE families
    results["ep2"] = spawn(2, _family_checks, tiny, ids, MOE_FAMILIES,
                           ["perf.tensor_model_parallel_size=1", "+perf.expert_model_parallel_size=2"])[0]
    return expected, results


@pytest.mark.slow
@pytest.mark.parametrize("tp", [1, 2, "ep2"])
def test_megatron_logits_equal_hf_for_every_family(family_results, tp):
    expected, results = family_results
    for family in results[tp]:
        difference = float((results[tp][family]["logits"] - expected[family]).abs().max())
        assert difference <= 1e-4, f"{family} at tp={tp}: logits differ from HF by {difference}"


@pytest.mark.slow
@pytest.mark.parametrize("tp", [1, 2, "ep2"])
def test_hf_to_torch_dist_to_hf_gives_the_same_bytes(tiny, family_results, tp):
    from safetensors.torch import load_file

    for family in family_results[1][tp]:
        source = load_file(tiny / TINY_FOLDERS[family] / "model.safetensors")
        exported = family_results[1][tp][family]["exported"]
        assert sorted(exported) == sorted(source), family
        for name, tensor in source.items():
            assert exported[name].dtype == tensor.dtype and exported[name].numpy().tobytes() == tensor.numpy().tobytes(), \
                f"{family}: {name} changed on the way through torch_dist"


@pytest.mark.slow
def test_the_converters_round_trip_byte_for_byte_across_layouts(tiny, tmp_path):
    from safetensors.torch import load_file

    from slime.config.model_files import load_model_entries, model_argv

    for family in ("tiny-qwen3-moe",):  # experts; every family's round trip is tested in-process above
        model_args = model_argv(load_model_entries(ROOT / "conf" / "model" / f"{family}.yaml"))
        source = tiny / TINY_FOLDERS[family]
        dist_dir, back = tmp_path / f"{family}-dist", tmp_path / f"{family}-hf"
        run = lambda *argv: subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True)  # noqa: E731
        forward = run("tools/convert_hf_to_torch_dist.py", *model_args, "--hf-checkpoint", str(source),
                      "--save", str(dist_dir), "--tensor-model-parallel-size", "2")
        assert forward.returncode == 0, forward.stderr[-2000:]
        assert (dist_dir / "latest_checkpointed_iteration.txt").read_text().strip() == "release"
        backward = run("tools/convert_torch_dist_to_hf.py", *model_args, "--load", str(dist_dir),
                       "--hf-checkpoint", str(source), "--save", str(back))
        assert backward.returncode == 0, backward.stderr[-2000:]
        original, converted = load_file(source / "model.safetensors"), load_file(back / "model.safetensors")
        assert sorted(original) == sorted(converted)
        assert all(original[k].numpy().tobytes() == converted[k].numpy().tobytes() for k in original), family
        assert (back / "tokenizer.json").is_file() and (back / "config.json").is_file()


@pytest.mark.slow
def test_a_converter_names_every_missing_input(tmp_path):
    result = subprocess.run([sys.executable, "tools/convert_torch_dist_to_hf.py", "--load", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    for expected in ("--hf-checkpoint is required", "--save is required", "the model flags are missing",
                     f"--load {tmp_path}: not a torch_dist checkpoint"):
        assert expected in result.stderr


@pytest.fixture(scope="module")
def one_rank_steps(tiny):
    args = tiny_args(tiny, "tiny", WITH_KL, "perf.tensor_model_parallel_size=1", "cluster.actor_num_gpus_per_node=1")
    return spawn(1, _train_steps, args, steps_batch())[0]


@pytest.fixture(scope="module")
def tp2_steps(tiny, one_rank_steps, tmp_path_factory):
    """The same steps at tensor parallel 2, saving a checkpoint after the first and pushing to an engine."""
    save = tmp_path_factory.mktemp("tp2-checkpoint")
    args = tiny_args(tiny, "tiny", WITH_KL, f"ckpt.save={save}", f"ckpt.load={save}")
    return save, spawn(2, _train_steps, args, one_rank_steps["batch"], save, True)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["tp2", "dp2", "pp2", "dynamic micro-batches"])
def test_training_is_the_same_on_every_layout(tiny, one_rank_steps, tp2_steps, layout):
    if layout == "tp2":
        result = tp2_steps[1]
    else:
        tp, pp, ranks, extra = {"dp2": (1, 1, 2, []), "pp2": (1, 2, 2, []),
                                "dynamic micro-batches": (1, 1, 1, ["+perf.use_dynamic_batch_size=true",
                                                                    "+perf.max_tokens_per_gpu=20"])}[layout]
        args = tiny_args(tiny, "tiny", WITH_KL, f"perf.tensor_model_parallel_size={tp}",
                         f"perf.pipeline_model_parallel_size={pp}", f"cluster.actor_num_gpus_per_node={ranks}", *extra)
        result = spawn(ranks, _train_steps, args, one_rank_steps["batch"])
    mine = next(r for r in result if r["result_rank"])
    assert mine["metrics"]["actor/loss"] == pytest.approx(one_rank_steps["metrics"]["actor/loss"], abs=1e-6)
    assert mine["metrics"]["actor/grad_norm"] == pytest.approx(one_rank_steps["metrics"]["actor/grad_norm"], rel=1e-5)
    assert mine["metrics"]["actor/kl_loss"] == pytest.approx(one_rank_steps["metrics"]["actor/kl_loss"], abs=1e-6)
    assert _max_difference(result[0]["after"], one_rank_steps["after"]) < 1e-4  # three Adam steps at lr 3e-3


@pytest.mark.slow
def test_a_checkpoint_resumes_exactly_and_reshards(tiny, one_rank_steps, tp2_steps):
    save, saving = tp2_steps[0], tp2_steps[1][0]
    assert (save / "latest_checkpointed_iteration.txt").read_text().strip() == "3"
    same_layout = spawn(2, _resume, tiny_args(tiny, "tiny", WITH_KL, f"ckpt.save={save}", f"ckpt.load={save}"),
                        one_rank_steps["batch"])[0]
    assert same_layout["loaded_id"] == 3
    assert same_layout["finite"] is None  # rank 0 answers for the role: rank 1's NaN reaches it
    assert same_layout["poisoned"].startswith("rank 1: 1 parameter tensor(s) hold NaN or infinite values: ")
    assert _max_difference(same_layout["loaded"], saving["saved"]) == 0.0
    assert _max_difference(same_layout["after"], saving["after"]) == 0.0  # optimizer and scheduler restored too
    one = tiny_args(tiny, "tiny", WITH_KL, f"ckpt.save={save}", f"ckpt.load={save}",
                    "perf.tensor_model_parallel_size=1", "cluster.actor_num_gpus_per_node=1")
    resharded = spawn(1, _resume, one, one_rank_steps["batch"])[0]
    assert _max_difference(resharded["loaded"], saving["saved"]) == 0.0
    assert _max_difference(resharded["after"], saving["after"]) < 1e-5


@pytest.mark.slow
def test_engine_log_probs_equal_the_trainers_after_a_push(tp2_steps):
    pairs = tp2_steps[1][0]["engine"]
    assert [t for t, _, _ in pairs] == [1.0, 0.7]
    for temperature, engine, trainer in pairs:
        assert len(engine) == len(trainer) == 6
        assert max(abs(e - t) for e, t in zip(engine, trainer)) <= 1e-4, temperature
