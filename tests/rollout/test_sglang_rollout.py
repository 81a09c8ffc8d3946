"""The default rollout function against a real torch engine server process (no Ray): SGLang-shaped
requests, n samples per prompt, rewards, and the dynamic-sampling filter's over-sampling loop."""

from __future__ import annotations

import argparse
import pytest

from slime.rollout.client import EngineError, GenerateClient, http_json
from slime.rollout.data_source import DataSource, load_prompts
from slime.rollout.sglang_rollout import RolloutContext, generate_rollout

KEPT_GROUPS = []


def keep_mixed_groups(args, group):
    """DAPO-style filter: a group whose samples all scored the same teaches nothing."""
    keep = len({s.reward for s in group}) > 1
    KEPT_GROUPS.append(keep)
    return keep


@pytest.fixture(scope="module")
def engine(torch_engine, tiny_base):
    from transformers import AutoTokenizer

    return argparse.Namespace(url=torch_engine, tokenizer=AutoTokenizer.from_pretrained(tiny_base / "tiny-cpu")), \
        tiny_base


def rollout_args(**overrides):
    from slime.arguments.parser import parse_args

    base = ["--hf-checkpoint", "x", "--prompt-data", "x", "--rollout-batch-size", "4", "--n-samples-per-prompt", "4",
            "--num-rollout", "1", "--train-backend", "torch", "--lr", "1e-3", "--colocate", "--rm-type", "exact_match",
            "--rollout-max-response-len", "2", "--rollout-temperature", "1.5"]
    for key, value in overrides.items():
        base += [f"--{key.replace('_', '-')}", str(value)]
    return parse_args(base)


def context(engine_and_base, args):
    served, base = engine_and_base
    prompts = load_prompts(str(base / "toy" / "train.jsonl"), served.tokenizer, input_key="prompt", label_key="label",
                           metadata_key=None, apply_chat_template=True)
    return RolloutContext(GenerateClient(served.url), served.tokenizer, DataSource(prompts, True, 1))


def test_a_rollout_has_groups_of_scored_samples_in_sglangs_shape(engine):
    args = rollout_args()
    samples = generate_rollout(args, 0, context(engine, args)).samples
    assert len(samples) == 16 and [s.group_index for s in samples] == [g for g in range(4) for _ in range(4)]
    for s in samples:
        assert 1 <= s.response_length <= 2 and len(s.rollout_log_probs) == s.response_length
        assert all(lp <= 0 for lp in s.rollout_log_probs) and s.reward in (0.0, 1.0)
    again = generate_rollout(args, 0, context(engine, args)).samples
    assert [s.response_tokens for s in again] == [s.response_tokens for s in samples]  # per-request seeds


@pytest.mark.slow
def test_the_dynamic_filter_over_samples_until_the_rollout_is_full(engine):
    KEPT_GROUPS.clear()
    args = rollout_args(dynamic_sampling_filter_path="tests.rollout.test_sglang_rollout:keep_mixed_groups",
                        over_sampling_batch_size=8)
    samples = generate_rollout(args, 3, context(engine, args)).samples
    assert len(samples) == 16
    assert all(len({s.reward for s in samples[g * 4:(g + 1) * 4]}) > 1 for g in range(4))
    assert len(KEPT_GROUPS) >= 8 and KEPT_GROUPS.count(True) >= 4


def test_an_unreachable_engine_is_a_clear_error():
    client = GenerateClient("http://127.0.0.1:9")
    with pytest.raises(EngineError, match=r"router http://127.0.0.1:9 of the rollout engines did not answer /generate"):
        client.generate([1, 2], {"max_new_tokens": 1})


def test_engine_speaks_sglangs_generate(engine):
    served, _ = engine
    reply = GenerateClient(served.url).generate(served.tokenizer("3+1=")["input_ids"],
                                                    {"max_new_tokens": 3, "temperature": 1.0, "sampling_seed": 5})
    assert set(reply) == {"text", "output_ids", "meta_info"}
    assert reply["meta_info"]["finish_reason"]["type"] in ("stop", "length")
    assert [entry[1] for entry in reply["meta_info"]["output_token_logprobs"]] == reply["output_ids"]
    http_json(served.url, "/release_memory_occupation", {}, timeout=10)
    try:
        with pytest.raises(EngineError, match="HTTP 503"):
            GenerateClient(served.url).generate([5], {"max_new_tokens": 1})
    finally:
        http_json(served.url, "/resume_memory_occupation", {}, timeout=10)


def test_engine_stops_at_stop_strings(engine):
    served, _ = engine
    client = GenerateClient(served.url)
    for seed in range(20):
        reply = client.generate(served.tokenizer("3+1=")["input_ids"],
                                {"max_new_tokens": 12, "temperature": 1.0, "sampling_seed": seed, "stop": ["+"]})
        finish = reply["meta_info"]["finish_reason"]
        if finish["type"] == "stop" and finish["matched"] == "+":
            assert reply["text"].endswith("+") and reply["text"].count("+") == 1
            return
    pytest.fail("no sample produced the stop string in 20 tries")


def test_no_response_limit_means_up_to_the_context_as_sglang_does(engine):
    served, _ = engine
    prompt = served.tokenizer("3+1=")["input_ids"]
    reply = GenerateClient(served.url).generate(prompt, {"max_new_tokens": None, "ignore_eos": True, "sampling_seed": 1})
    context_length = 64  # the tiny model's max_position_embeddings (tools/make_tiny_model.py)
    assert len(reply["output_ids"]) == context_length - len(prompt) - 1
    assert reply["meta_info"]["finish_reason"]["type"] == "length"


def test_the_context_length_bounds_each_response(engine):
    args = rollout_args(rollout_max_context_len=5, rollout_max_response_len=3)
    samples = generate_rollout(args, 0, context(engine, args)).samples
    assert all(len(s.prompt_tokens) == 4 for s in samples)  # "d+1=" in one token per character
    assert all(s.response_length <= 1 for s in samples)
