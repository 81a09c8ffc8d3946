"""Both train backends at a rollout temperature other than 1 (0.7): the same old log-probs of a batch, and,
after a push of the torch backend's trained weights into an engine that samples at 0.7, the trainer's
log-probs of the sampled tokens are the engine's (what train_rollout_logprob_abs_diff measures).
megatron's side of the push is test_megatron_backend.py::test_engine_log_probs_equal_the_trainers_after_a_push."""

from __future__ import annotations

import pytest

from tests.helpers.megatron import spawn, tiny_args
from tests.helpers.stack import require_module

TEMPERATURE = 0.7
BATCH = [{"prompt_tokens": [5, 13, 4, 14], "response_tokens": [7, 9, 3, 2, 11], "loss_mask": [1] * 5},
         {"prompt_tokens": [2, 5, 13], "response_tokens": [4, 4, 8], "loss_mask": [1] * 3}]


def torch_backend(base):
    from slime.backends.torch_backend import TorchTrainBackend
    from slime.config.compose import namespace_from_config

    args = namespace_from_config("run_tiny_cpu", [f"rollout.rollout_temperature={TEMPERATURE}"],
                                 environ={"BASE_FOLDER": str(base)})
    backend = TorchTrainBackend(args, "actor")
    backend.init(0, 1, "127.0.0.1", 0)
    return backend


def _megatron_log_probs(rank, world_size, port, args, batch):
    from slime.backends.megatron.backend import MegatronTrainBackend

    backend = MegatronTrainBackend(args, "actor")
    backend.init(rank, world_size, "127.0.0.1", port)
    return backend.compute_log_probs(batch)


@pytest.mark.slow
def test_both_backends_give_the_same_old_log_probs_at_temperature_0_7(tiny_base):
    require_module("megatron.core")
    torch_side = torch_backend(tiny_base).compute_log_probs(BATCH)
    args = tiny_args(tiny_base, "tiny", f"rollout.rollout_temperature={TEMPERATURE}",
                     "perf.tensor_model_parallel_size=1", "cluster.actor_num_gpus_per_node=1")
    megatron_side = spawn(1, _megatron_log_probs, args, BATCH)[0]
    assert [len(s) for s in megatron_side] == [len(s) for s in torch_side] == [5, 3]
    difference = max(abs(a - b) for ours, theirs in zip(torch_side, megatron_side) for a, b in zip(ours, theirs))
    assert difference < 1e-4


@pytest.mark.slow
def test_the_torch_backends_log_probs_are_the_engines_after_a_push_at_temperature_0_7(tiny_base):
    from slime.engines.torch_engine import TorchEngine, parse_server_args

    backend = torch_backend(tiny_base)
    trained = [{**sample, "rollout_log_probs": [-2.0] * len(sample["response_tokens"]),
                "old_log_probs": [-2.0] * len(sample["response_tokens"]),
                "advantages": [1.0] * len(sample["response_tokens"])} for sample in BATCH]
    backend.train(trained, [len(trained)], [sum(len(s["response_tokens"]) for s in trained)])
    engine = TorchEngine(parse_server_args(["--model-path", backend.args.hf_checkpoint, "--random-seed", "3"]))
    engine.load_weights(backend.export_weights(), complete=True)
    reply = engine.generate({"input_ids": [2, 5, 13], "return_logprob": True, "sampling_params": {
        "temperature": TEMPERATURE, "max_new_tokens": 8, "ignore_eos": True}})
    sample = {"prompt_tokens": [2, 5, 13], "response_tokens": reply["output_ids"], "loss_mask": [1] * 8}
    engine_side = [lp for lp, _, _ in reply["meta_info"]["output_token_logprobs"]]
    trainer_side = backend.compute_log_probs([sample])[0]
    assert len(engine_side) == len(trainer_side) == 8
    assert max(abs(e - t) for e, t in zip(engine_side, trainer_side)) < 1e-4
