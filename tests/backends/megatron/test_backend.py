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

from tests.helpers.megatron import TINY_FOLDERS, spawn, tiny_args
from tests.helpers.megatron import assert_parallel_state_is_the_topology, resume, steps_batch, train_steps
from tests.helpers.paths import ROOT
from tests.helpers.stack import require_module

FAMILIES = list(TINY_FOLDERS)
# a KL of nonzero weight: the reference model is loaded, swapped in for its log-probs, and in the loss
WITH_KL = "grpo.kl_loss_coef=0.01"
MOE_FAMILIES = ["tiny-qwen3-moe", "tiny-deepseek-v3"]


@pytest.fixture(scope="module")
def tiny(tiny_models):
    require_module("megatron.core")
    return tiny_models


# -- ranks -----------------------------------------------------------------------------------------
def _lazy_buckets(weights, bucket_bytes: int) -> tuple[list[tuple[str, torch.Tensor]], list[tuple[int, int]], bool]:
    """(the HF tensors, each bucket's (tensor count, bytes), whether no full tensor was gathered
    before its bucket needed it): at each bucket, the full tensors gathered so far are at most those
    of the HF tensors handed out, and the one that did not fit."""
    gather, pulled = weights.full_tensors, []

    def counting():
        for name, tensor in gather():
            pulled.append(name)
            yield name, tensor

    weights.full_tensors = counting
    pairs, sizes, lazy = [], [], True
    for bucket in weights.hf_buckets(bucket_bytes):
        pairs += bucket
        sizes.append((len(bucket), sum(t.numel() * t.element_size() for _, t in bucket)))
        lazy = lazy and len(pulled) <= len(pairs) + 1
    return pairs, sizes, lazy


def _family_checks(rank, world_size, port, base, ids, families=FAMILIES, layout=None, fp8=None):
    """Per family: full logits for ``ids``, and the weights gathered back after a torch_dist round trip
    (in buckets of 4 KiB: their sizes, and whether they were gathered lazily). ``layout``: overrides of
    the parallel layout (tensor parallel over every rank by default). ``fp8``: {family: an FP8 copy of
    its checkpoint}, loaded and gathered back too."""
    import torch.distributed as dist
    from megatron.core import parallel_state as ps

    from slime.arguments.topology import Topology
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
            init_distributed(args, Topology.of(args, world=world_size), rank, "127.0.0.1", port)
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
        exported, buckets, lazy = _lazy_buckets(ModelWeights(rebuilt, config, args), 4096)
        results[family] = {"logits": torch.cat(pieces, -1)[..., :args.vocab_size], "exported": dict(exported),
                           "buckets": buckets, "lazy": lazy}
        if fp8 and family in fp8:
            quantized = build_model(args, config, "actor")
            ModelWeights(quantized, config, args).load_hf(fp8[family])
            results[family]["fp8"] = dict(_lazy_buckets(ModelWeights(quantized, config, args), 1 << 40)[0])
    return results


# -- tests -------------------------------------------------------------------------------------------
def _max_difference(a: dict, b: dict) -> float:
    assert sorted(a) == sorted(b)
    return max(float((a[k] - b[k]).abs().max()) for k in a)


FP8_BLOCK = (16, 24)  # short last blocks: 24 rows of kv_a_proj_with_mqa, 64 columns of most weights


def fp8_copy(source, target) -> dict[str, torch.Tensor]:
    """A copy of the HF checkpoint ``source`` quantized as DeepSeek publishes V3 and R1: every projection
    weight in float8 e4m3 with a float32 ``weight_scale_inv`` per block of FP8_BLOCK (each block's
    largest magnitude at e4m3's largest value), and ``quantization_config`` in config.json. Returns
    the tensors it stands for: each block's float8 values times its factor, worked out block by block."""
    import json
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(source, target)
    tensors, written, expected = load_file(source / "model.safetensors"), {}, {}
    rows_per, columns_per = FP8_BLOCK
    for name, weight in tensors.items():
        if not name.endswith("proj.weight") and not name.endswith("proj_with_mqa.weight"):
            written[name] = expected[name] = weight
            continue
        rows, columns = weight.shape
        scales = torch.empty(-(-rows // rows_per), -(-columns // columns_per))
        quantized = torch.empty(rows, columns, dtype=torch.float8_e4m3fn)
        value = torch.empty(rows, columns)
        for i in range(scales.shape[0]):
            for j in range(scales.shape[1]):
                block = (slice(i * rows_per, (i + 1) * rows_per), slice(j * columns_per, (j + 1) * columns_per))
                scales[i, j] = weight[block].abs().max().clamp(min=1e-12) / torch.finfo(torch.float8_e4m3fn).max
                quantized[block] = (weight[block] / scales[i, j]).to(torch.float8_e4m3fn)
                value[block] = quantized[block].float() * scales[i, j]
        written[name], written[name + "_scale_inv"], expected[name] = quantized, scales, value
    save_file(written, target / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((source / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                                     "weight_block_size": list(FP8_BLOCK)}
    (target / "config.json").write_text(json.dumps(config))
    return expected


@pytest.fixture(scope="module")
def family_results(tiny, tmp_path_factory):
    from transformers import AutoModelForCausalLM

    ids = torch.randint(3, 15, (2, 9), generator=torch.Generator().manual_seed(0))
    expected = {}
    for family in FAMILIES:
        model = AutoModelForCausalLM.from_pretrained(tiny / TINY_FOLDERS[family], dtype=torch.float32).eval()
        with torch.no_grad():
            expected[family] = model(ids).logits
    fp8 = tmp_path_factory.mktemp("fp8") / "tiny-deepseek-v3-fp8"
    expected["fp8"] = fp8_copy(tiny / TINY_FOLDERS["tiny-deepseek-v3"], fp8)
    results = {tp: spawn(tp, _family_checks, tiny, ids, FAMILIES, None, {"tiny-deepseek-v3": fp8})[0]
               for tp in (1, 2)}
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
@pytest.mark.parametrize("tp", [1, 2, "ep2"])
def test_weight_buckets_keep_their_size_and_are_gathered_as_needed(family_results, tp):
    """--update-weight-buffer-size bounds each bucket (a larger tensor goes alone) and the memory of a
    push: no full tensor is gathered before the bucket being filled needs it."""
    for family, result in family_results[1][tp].items():
        assert result["lazy"], f"{family} at {tp}: full tensors gathered ahead of their buckets"
        assert sum(count for count, _ in result["buckets"]) == len(result["exported"])
        for count, size in result["buckets"]:
            assert size <= 4096 or count == 1, f"{family} at {tp}: a bucket of {count} tensors holds {size} bytes"
        assert len(result["buckets"]) > 3


@pytest.mark.slow
@pytest.mark.parametrize("tp", [1, 2])
def test_block_fp8_checkpoints_load_dequantized(family_results, tp):
    """DeepSeek's block-wise FP8 (float8 weights, a float32 weight_scale_inv per block): loaded as each
    block's values times its factor, sharded at TP 2 like any other weight."""
    expected, loaded = family_results[0]["fp8"], family_results[1][tp]["tiny-deepseek-v3"]["fp8"]
    assert sorted(loaded) == sorted(expected)
    for name, tensor in expected.items():
        assert torch.equal(loaded[name], tensor), name
    original = family_results[1][tp]["tiny-deepseek-v3"]["exported"]
    weight = "model.layers.1.self_attn.kv_a_proj_with_mqa.weight"
    assert not torch.equal(loaded[weight], original[weight])  # quantized, within FP8's precision
    assert torch.allclose(loaded[weight], original[weight], rtol=0.07, atol=1e-6)


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
    result = spawn(1, train_steps, args, steps_batch())
    assert_parallel_state_is_the_topology(args, result)
    return result[0]


@pytest.fixture(scope="module")
def tp2_steps(tiny, one_rank_steps, tmp_path_factory):
    """The same steps at tensor parallel 2, saving a checkpoint after the first and pushing to an engine."""
    save = tmp_path_factory.mktemp("tp2-checkpoint")
    args = tiny_args(tiny, "tiny", WITH_KL, f"ckpt.save={save}", f"ckpt.load={save}")
    result = spawn(2, train_steps, args, one_rank_steps["batch"], save, True, None, True)
    assert_parallel_state_is_the_topology(args, result)
    return save, result


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
        result = spawn(ranks, train_steps, args, one_rank_steps["batch"])
        assert_parallel_state_is_the_topology(args, result)
    mine = next(r for r in result if r["result_rank"])
    assert mine["metrics"]["actor/loss"] == pytest.approx(one_rank_steps["metrics"]["actor/loss"], abs=1e-6)
    assert mine["metrics"]["actor/grad_norm"] == pytest.approx(one_rank_steps["metrics"]["actor/grad_norm"], rel=1e-5)
    assert mine["metrics"]["actor/kl_loss"] == pytest.approx(one_rank_steps["metrics"]["actor/kl_loss"], abs=1e-6)
    assert _max_difference(result[0]["after"], one_rank_steps["after"]) < 1e-4  # three Adam steps at lr 3e-3


@pytest.fixture(scope="module")
def resumed_tp2(tiny, one_rank_steps, tp2_steps):
    """The TP 2 run resumed from its checkpoint at the same layout, and one more step."""
    save = tp2_steps[0]
    return spawn(2, resume, tiny_args(tiny, "tiny", WITH_KL, f"ckpt.save={save}", f"ckpt.load={save}"),
                 one_rank_steps["batch"])[0]


# the shares of two data-parallel ranks in the two steps of steps_batch(): the first step's samples are
# 0-3, the second's 4-7 on every layout, but the ranks get different counts and lengths of them
UNEVEN_SHARES = [([0, 1, 2], [4]), ([3], [5, 6, 7])]


@pytest.fixture(scope="module")
def moe_one_rank_steps(tiny):
    args = tiny_args(tiny, "tiny-qwen3-moe", WITH_KL, "perf.tensor_model_parallel_size=1",
                     "cluster.actor_num_gpus_per_node=1")
    return spawn(1, train_steps, args, steps_batch())[0]


@pytest.mark.slow
def test_expert_parallel_training_with_uneven_shares_equals_one_rank(tiny, moe_one_rank_steps):
    """Expert parallel 2 over two data-parallel ranks (megatron's all-gather dispatcher): the ranks'
    shares differ in count and length, and dynamic micro-batches make their numbers of micro-batches
    differ too; the ranks agree on count and shapes, and train as one rank does."""
    args = tiny_args(tiny, "tiny-qwen3-moe", WITH_KL, "perf.tensor_model_parallel_size=1",
                     "+perf.expert_model_parallel_size=2", "cluster.actor_num_gpus_per_node=2",
                     "+perf.use_dynamic_batch_size=true", "+perf.max_tokens_per_gpu=20")
    result = spawn(2, train_steps, args, moe_one_rank_steps["batch"], None, False, UNEVEN_SHARES)
    assert_parallel_state_is_the_topology(args, result)
    reference = moe_one_rank_steps["metrics"]
    for mine in result:  # every rank reports the step's metrics over both shares
        assert mine["metrics"]["actor/loss"] == pytest.approx(reference["actor/loss"], abs=1e-6)
        assert mine["metrics"]["actor/grad_norm"] == pytest.approx(reference["actor/grad_norm"], rel=1e-5)
        assert mine["metrics"]["actor/kl_loss"] == pytest.approx(reference["actor/kl_loss"], abs=1e-6)
    assert _max_difference(result[0]["after"], moe_one_rank_steps["after"]) < 1e-4


@pytest.mark.slow
def test_offload_train_frees_the_state_and_brings_it_back_exactly(tp2_steps, resumed_tp2):
    """--offload-train on CPU (storage copies, the path of a GPU without torch_memory_saver): after a
    step, parameters, gradient buffers and Adam's state are freed; a push meanwhile sends the same
    weights; onloading restores model, optimizer and scheduler bit for bit, and the next step equals
    that of a run resumed from the checkpoint saved just before, which never offloaded."""
    for rank in tp2_steps[1]:
        cycle = rank["offload"]
        assert cycle["freed"] == {"parameters": True, "gradients": True, "optimizer": True, "after the push": True}
        assert cycle["push"] and cycle["identical"]
    assert _max_difference(resumed_tp2["after"], tp2_steps[1][0]["after"]) == 0.0


@pytest.mark.slow
def test_a_checkpoint_resumes_exactly_and_reshards(tiny, one_rank_steps, tp2_steps, resumed_tp2, tmp_path):
    from safetensors.torch import load_file

    save, saving = tp2_steps[0], tp2_steps[1][0]
    assert (save / "latest_checkpointed_iteration.txt").read_text().strip() == "3"
    same_layout = resumed_tp2
    assert same_layout["loaded_id"] == 3
    assert same_layout["finite"] is None  # rank 0 answers for the role: rank 1's NaN reaches it
    assert same_layout["poisoned"].startswith("rank 1: 1 parameter tensor(s) hold NaN or infinite values: ")
    assert _max_difference(same_layout["loaded"], saving["saved"]) == 0.0
    assert _max_difference(same_layout["after"], saving["after"]) == 0.0  # optimizer and scheduler restored too
    one = tiny_args(tiny, "tiny", WITH_KL, f"ckpt.save={save}", f"ckpt.load={save}",
                    "perf.tensor_model_parallel_size=1", "cluster.actor_num_gpus_per_node=1")
    resharded = spawn(1, resume, one, one_rank_steps["batch"], tmp_path)[0]
    assert _max_difference(resharded["loaded"], saving["saved"]) == 0.0
    assert _max_difference(resharded["after"], saving["after"]) < 1e-5
    # the starts of the real-model configs: a converted release in --load (the reference from the HF
    # checkpoint), and a torch_dist --ref-load (the actor too starts from it, with no --load of its own)
    hf = load_file(tiny / TINY_FOLDERS["tiny"] / "model.safetensors")
    release, ref_load = resharded["starts"]["release in --load"], resharded["starts"]["torch_dist --ref-load"]
    assert _max_difference(release["model"], resharded["after"]) == 0.0 and release["loaded_id"] is None
    assert _max_difference(release["reference"], hf) == 0.0
    assert _max_difference(ref_load["model"], resharded["after"]) == 0.0 and ref_load["loaded_id"] is None
    assert _max_difference(ref_load["reference"], resharded["after"]) == 0.0


@pytest.mark.slow
def test_engine_log_probs_equal_the_trainers_after_a_push(tp2_steps):
    pairs = tp2_steps[1][0]["engine"]
    assert [t for t, _, _ in pairs] == [1.0, 0.7]
    for temperature, engine, trainer in pairs:
        assert len(engine) == len(trainer) == 6
        assert max(abs(e - t) for e, t in zip(engine, trainer)) <= 1e-4, temperature
