"""Upstream slime's rollout plugin contract (issue 22, item 6): rollout functions called as
fn(args, rollout_id, data_source, evaluation=False) with upstream's data-source methods, upstream's
Sample fields and import path, its output types, async custom generate functions that call the default
generate (against a real torch engine), DynamicFilterOutput, and the custom advantage function's
fn(args, rollout_data)."""

from __future__ import annotations

import argparse
import inspect

import pytest
import torch

from slime.rollout.base_types import RolloutFnEvalOutput, RolloutFnTrainOutput
from slime.rollout.data_source import DataSource, Prompt
from slime.rollout.filter_hub.base_types import DynamicFilterOutput
from slime.rollout.filter_hub.dynamic_sampling_filters import check_reward_nonzero_std
from slime.rollout.hooks import custom_advantages
from slime.rollout.plugins import RolloutContractError, call_rollout, eval_results, takes_evaluation, train_samples
from slime.rollout.sglang_rollout import RolloutContext, generate, generate_rollout
from slime.arguments.parser import parse_args
from slime.utils.types import Sample
from tests.helpers.command_lines import MINIMAL

HERE = "tests.rollout.test_plugins"


def prompts(count: int) -> list[Prompt]:
    return [Prompt(f"{d}=", str(d), {"d": d}, [3 + d, 13]) for d in range(count)]


def context(n: int = 2) -> RolloutContext:
    return RolloutContext(None, None, DataSource(prompts(5), False, 0, n_samples_per_prompt=n))


# -- a plugin written for upstream, by its contract ---------------------------------------------------
def upstream_rollout(args, rollout_id, data_source, evaluation=False):
    if evaluation:
        sample = Sample(index=0, prompt="p", tokens=[1, 2], response_length=1, reward=0.75,
                        status=Sample.Status.COMPLETED, metadata={})
        return RolloutFnEvalOutput(data={"contract": {"rewards": [0.75], "truncated": [False], "samples": [sample]}},
                                   metrics={"eval/source": 1.0})
    samples = []
    for group_index, example in enumerate(data_source.get_examples(2)):
        for k in range(data_source.n_samples_per_prompt):
            sample = Sample.from_example(example)
            sample.tokens = [group_index, k, rollout_id]
            sample.response_length, sample.response = 1, f"{group_index}-{k}"
            sample.reward, sample.status = float(group_index + k), Sample.Status.COMPLETED
            samples.append(sample)
    return RolloutFnTrainOutput(samples=samples, metrics={"rollout/source": 1.0})


def grouped_rollout(args, rollout_id, data_source, evaluation=False):
    groups = data_source.get_samples(2)
    for group in groups:
        for sample in group:
            sample.response_tokens, sample.reward = [9], 1.0
    return groups  # a bare list of groups, as older upstream plugins return


def this_projects_rollout(args, rollout_id, context):
    return [Sample(group_index=0, index=0, prompt="p", tokens=[1, 2, 3], response_length=2, reward=1.0)]


def test_the_default_rollout_function_has_upstreams_signature():
    parameters = inspect.signature(generate_rollout).parameters
    assert tuple(parameters) == ("args", "rollout_id", "data_source", "evaluation")
    assert parameters["evaluation"].default is False
    assert takes_evaluation(generate_rollout) and not takes_evaluation(this_projects_rollout)


def test_an_upstream_rollout_plugin_trains_and_evaluates_unchanged():
    args = parse_args(MINIMAL)
    samples, metrics = train_samples(call_rollout(upstream_rollout, args, 2, context()), args, "upstream_rollout")
    assert [s.tokens for s in samples] == [[0, 0, 2], [0, 1, 2], [1, 0, 2], [1, 1, 2]]
    assert [s.prompt for s in samples] == ["0=", "0=", "1=", "1="] and samples[2].metadata == {"d": 1}
    assert [s.loss_mask for s in samples] == [[1]] * 4 and all(s.rollout_log_probs == [] for s in samples)
    assert [s.response_tokens for s in samples] == [[2]] * 4 and metrics == {"rollout/source": 1.0}
    data, extra = eval_results(call_rollout(upstream_rollout, args, 2, context(), evaluation=True), "upstream_rollout")
    assert data["contract"]["rewards"] == [0.75] and extra == {"eval/source": 1.0}


def test_groups_flatten_in_order_and_this_projects_signature_still_works():
    args = parse_args(MINIMAL)
    samples, _ = train_samples(call_rollout(grouped_rollout, args, 0, context()), args, "grouped_rollout")
    assert [(s.group_index, s.index) for s in samples] == [(0, 0), (0, 1), (1, 2), (1, 3)]
    assert all(s.prompt_tokens == [3 + s.group_index, 13] and s.response_tokens == [9] for s in samples)
    samples, _ = train_samples(call_rollout(this_projects_rollout, args, 0, context()), args, "mine")
    assert samples[0].prompt_tokens == [1] and samples[0].loss_mask == [1, 1]


def test_upstreams_data_source_counts_across_the_run_and_serves_what_was_put_back_first():
    data = context(n=3)
    first = data.get_samples(2)
    assert [[s.index for s in g] for g in first] == [[0, 1, 2], [3, 4, 5]] and first[1][0].group_index == 1
    assert first[0][0] is not first[0][1] and first[0][0].tokens == [3, 13] and first[0][0].label == "0"
    data.add_samples(first[1:])
    again = data.get_samples(2)
    assert again[0] is first[1] and [s.group_index for s in again[1]] == [2, 2, 2]
    with pytest.raises(ValueError, match="a group of 1 samples, expected --n-samples-per-prompt 3"):
        data.add_samples([[again[1][0]]])
    assert len(data) == 5 and data.data_source.state_dict()["next_index"] == 9


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: setattr(s, "reward", None), "has no reward"),
    (lambda s: setattr(s, "loss_mask", [1, 1, 1]), "has a loss mask of 3 for 2 response tokens"),
    (lambda s: setattr(s, "response_length", 9), "has response_length 9 for 3 tokens"),
    (lambda s: setattr(s, "rollout_routed_experts", [[0, 1]]), "sets rollout_routed_experts.*routing replay"),
    (lambda s: setattr(s, "reward", {"acc": 1.0}),
     "has the reward .* not a number \\(a dict reward is read at --reward-key\\)"),
])
def test_a_sample_the_trainer_cannot_use_is_named(change, message):
    sample = this_projects_rollout(None, 0, None)[0]
    change(sample)
    with pytest.raises(RolloutContractError, match=f"--rollout-function-path mine: sample 0 {message}"):
        train_samples([sample], parse_args(MINIMAL), "mine")


def test_upstreams_sample_methods():
    sample = Sample(tokens=[1, 2, 3], response_length=2, loss_mask=[1, 0], reward={"score": -1.0, "acc": False})
    assert sample.effective_response_length == 1 and sample.status is Sample.Status.PENDING
    assert sample.get_reward_value(argparse.Namespace(reward_key="score")) == -1.0
    sample.update_from_meta_info(None, {"finish_reason": {"type": "length"}, "weight_version": "3"})
    assert sample.status is Sample.Status.TRUNCATED and sample.weight_versions == ["3"]
    again = Sample.from_dict({**sample.to_dict(), "extra": 5})
    assert again.extra == 5 and again.tokens == [1, 2, 3] and again.status is Sample.Status.TRUNCATED


# -- custom generate, reward skip and filters, against a real engine ---------------------------------------
async def upstream_generate(args, sample, sampling_params, evaluation=False):
    """An upstream custom generate: the default generate, then a reward of its own."""
    sample = await generate(args, sample, sampling_params)
    sample.reward = 0.5
    return sample


async def two_agents(args, sample, sampling_params):
    """Multi-agent fan-out: two samples take the place of one."""
    import copy

    other = copy.deepcopy(sample)
    return [await generate(args, sample, sampling_params), await generate(args, other, {**sampling_params,
                                                                                         "sampling_seed": 7})]


def drop_first_group(args, samples, **kwargs):
    return DynamicFilterOutput(keep=samples[0].group_index != 0, reason="first")


@pytest.fixture(scope="module")
def engine_context(torch_engine, tiny_base):
    from transformers import AutoTokenizer

    from slime.rollout.client import GenerateClient
    from slime.rollout.data_source import load_prompts

    tokenizer = AutoTokenizer.from_pretrained(tiny_base / "tiny-cpu")
    loaded = load_prompts(str(tiny_base / "toy" / "train.jsonl"), tokenizer, input_key="prompt", label_key="label",
                          metadata_key=None, apply_chat_template=True)
    return lambda n: RolloutContext(GenerateClient(torch_engine), tokenizer, DataSource(loaded, False, 1, n))


def rollout_args(*extra: str):
    return parse_args(["--hf-checkpoint", "x", "--prompt-data", "x", "--rollout-batch-size", "2",
                       "--n-samples-per-prompt", "2", "--num-rollout", "1", "--train-backend", "torch", "--lr", "1e-3",
                       "--colocate", "--actor-num-gpus-per-node", "1", "--rm-type", "exact_match",
                       "--rollout-max-response-len", "2", *extra])


def test_an_upstream_async_custom_generate_reaches_the_engines_and_its_reward_stands(engine_context):
    args = rollout_args("--custom-generate-function-path", f"{HERE}.upstream_generate")
    samples = generate_rollout(args, 0, engine_context(2)).samples
    assert len(samples) == 4 and all(s.reward == 0.5 and 1 <= s.response_length <= 2 for s in samples)
    assert all(len(s.rollout_log_probs) == s.response_length for s in samples)


def test_a_custom_generate_may_return_several_samples_for_one(engine_context):
    args = rollout_args("--custom-generate-function-path", f"{HERE}.two_agents")
    samples = generate_rollout(args, 0, engine_context(2)).samples
    assert len(samples) == 8 and [s.group_index for s in samples] == [0] * 4 + [1] * 4


def test_a_dynamic_filter_output_drops_its_group_and_counts_why(engine_context):
    args = rollout_args("--dynamic-sampling-filter-path", f"{HERE}.drop_first_group", "--over-sampling-batch-size", "3")
    output = generate_rollout(args, 0, engine_context(2))
    assert len(output.samples) == 4 and output.metrics == {"rollout/dynamic_filter/drop_first": 1}
    assert [s.label for s in output.samples[::2]] != [output.samples[0].label] * 2


def test_the_built_in_filter_keeps_groups_whose_rewards_differ():
    args = argparse.Namespace(reward_key=None)
    same = [Sample(reward=1.0), Sample(reward=1.0)]
    assert check_reward_nonzero_std(args, same) == DynamicFilterOutput(False, "zero_std_1.0")
    assert check_reward_nonzero_std(args, [Sample(reward=1.0), Sample(reward=0.0)]).keep


# -- custom advantages with upstream's signature -------------------------------------------------------------
def upstream_advantages(args, rollout_data):
    rollout_data["advantages"] = [torch.full_like(kl, r) for kl, r in zip(rollout_data["kl"], rollout_data["rewards"])]
    rollout_data["returns"] = rollout_data["advantages"]


def test_an_upstream_custom_advantage_function_fills_rollout_data():
    from slime.trainer import upstream_rollout_data

    args = parse_args([*MINIMAL, "--custom-advantage-function-path", f"{HERE}.upstream_advantages",
                       "--n-samples-per-prompt", "2", "--rollout-batch-size", "4"])
    batch = [Sample(group_index=i // 2, index=i, tokens=[1, 2, 3], response_length=2, loss_mask=[1, 1],
                    reward=float(i % 2)) for i in range(8)]
    rewards = torch.tensor([s.reward for s in batch])
    data = upstream_rollout_data(args, batch, rewards, None, None, [[-1.0, -1.0]] * 8, None)
    advantages, returns = custom_advantages(args, batch, rewards, None, None, rollout_data=data)
    half = 0.5 / (2 ** 0.5 / 2 + 1e-6)  # the rewards as upstream's rollout side normalized them
    assert [a for row in advantages for a in row] == pytest.approx([-half, -half, half, half] * 4)
    assert returns == advantages
