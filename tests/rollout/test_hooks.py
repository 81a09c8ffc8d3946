"""The rollout hooks a run names by path: reward post-processing (--custom-reward-post-process-path), the
sample filter (--rollout-sample-filter-path) and custom advantages (--custom-advantage-function-path),
each with the mistakes a hook makes named."""

from __future__ import annotations

import pytest
import torch

from slime.rollout.hooks import HookError, custom_advantages, filter_samples, post_processed_rewards
from slime.rollout.sample import Sample
from tests.helpers.hooks import HERE, args_with, samples

# -- reward post-processing ----------------------------------------------------------------------
def test_rewards_are_the_samples_own_without_a_hook():
    assert post_processed_rewards(args_with(), samples(1, 1, 1)) == [0.0, 1.0, 0.0]


@pytest.mark.parametrize(("hook", "want"), [("doubled", [0.0, 2.0]), ("raw_and_shifted", [-0.5, 0.5])])
def test_the_reward_hook_gives_the_rewards_the_advantages_use(hook, want):
    args = args_with("--custom-reward-post-process-path", f"{HERE}.{hook}")
    batch = samples(1, 1)
    assert post_processed_rewards(args, batch) == want
    assert [s.reward for s in batch] == [0.0, 1.0]  # the logged rewards stay the samples' own


@pytest.mark.parametrize(("hook", "message"), [
    ("wrong_count", "returned 1 rewards, expected 2 numbers"),
    ("with_nan", r"rewards\[0\] is nan, not a finite number"),
    ("nowhere", "has no 'nowhere'"),
])
def test_a_reward_hooks_mistake_names_it(hook, message):
    args = args_with("--custom-reward-post-process-path", f"{HERE}.{hook}")
    with pytest.raises(HookError, match=f"--custom-reward-post-process-path {HERE}.{hook}.*{message}"):
        post_processed_rewards(args, samples(1, 1))


# -- sample filter -------------------------------------------------------------------------------
@pytest.mark.parametrize(("hook", "removed"), [("keep_even", [1, 3]), ("remove_first", [0])])
def test_filtered_samples_stay_in_the_rollout_with_no_loss(hook, removed):
    batch = samples(2, 3, 1, 2)
    assert filter_samples(args_with("--rollout-sample-filter-path", f"{HERE}.{hook}"), batch) == len(removed)
    assert len(batch) == 4
    for i, s in enumerate(batch):
        assert s.remove_sample == (i in removed)
        assert s.loss_mask == ([0] * s.response_length if i in removed else [1] * s.response_length)


def test_a_filter_returning_no_bools_is_an_error():
    with pytest.raises(HookError, match="or one bool per sample"):
        filter_samples(args_with("--rollout-sample-filter-path", f"{HERE}.keep_as_ints"), samples(1, 1))


def test_saved_rollouts_without_the_remove_flag_still_load():
    row = samples(1)[0].to_dict()
    del row["remove_sample"]
    assert Sample.from_dict(row).remove_sample is False


# -- custom advantages ---------------------------------------------------------------------------
def test_a_custom_advantage_function_replaces_the_estimator():
    args = args_with("--custom-advantage-function-path", f"{HERE}.reward_per_token")
    advantages, returns = custom_advantages(args, samples(2, 1), torch.tensor([0.5, -1.0]), None, None)
    assert advantages == returns == [[0.5, 0.5], [-1.0]]
    padded = args_with("--custom-advantage-function-path", f"{HERE}.padded_advantages")
    assert custom_advantages(padded, samples(2, 1), torch.zeros(2), None, None) == ([[1.0, 1.0], [1.0]],
                                                                                     [[0.0, 0.0], [0.0]])


def test_custom_advantages_of_the_wrong_length_are_named():
    args = args_with("--custom-advantage-function-path", f"{HERE}.one_short")
    with pytest.raises(HookError, match="returned 1 advantages of sample 0, expected 2 numbers"):
        custom_advantages(args, samples(2, 1), torch.zeros(2), None, None)
