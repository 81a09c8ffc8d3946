"""Features users of current upstream slime reach for, by upstream's flags: the cispo estimator,
--use-rollout-logprobs, --custom-advantage-function-path, --custom-reward-post-process-path,
--rollout-sample-filter-path and --ref-update-interval. Unit tests here; the loop with all of them
at once is the slow test at the end."""

from __future__ import annotations

import math

import pytest
import torch

from slime.algorithms.losses import cispo_loss, clipped_policy_loss
from slime.rollout.hooks import HookError, custom_advantages, filter_samples, post_processed_rewards
from slime.rollout.sample import Sample
from slime.trainer import ref_update_due, rollout_old_log_probs
from slime.arguments.parser import ArgumentProblems, parse_args
from tests.conftest import MINIMAL

HERE = "tests.test_upstream_features"
KL = ["--use-kl-loss", "--kl-loss-coef", "0.01", "--ref-load", "/models/ref"]


def samples(*lengths: int) -> list[Sample]:
    return [Sample(group_index=i // 2, index=i, prompt="p", response_tokens=[7] * n, loss_mask=[1] * n,
                   rollout_log_probs=[-1.0 - i] * n, reward=float(i % 2)) for i, n in enumerate(lengths)]


def args_with(*extra: str):
    return parse_args([*MINIMAL, *extra])


# -- hooks the tests name by path ------------------------------------------------------------------
def doubled(args, batch):
    return [2 * s.reward for s in batch]


def raw_and_shifted(args, batch):
    return [s.reward for s in batch], [s.reward - 0.5 for s in batch]


def wrong_count(args, batch):
    return [1.0]


def with_nan(args, batch):
    return [math.nan] * len(batch)


def keep_even(args, batch):
    return [s.index % 2 == 0 for s in batch]


def remove_first(args, batch):
    batch[0].remove_sample = True


def keep_as_ints(args, batch):
    return [1] * len(batch)


def reward_per_token(args, batch, rewards, kl, values):
    return [[float(r)] * s.response_length for r, s in zip(rewards, batch)], None


def padded_advantages(args, batch, rewards, kl, values):
    width = max(s.response_length for s in batch)
    return torch.ones(len(batch), width), torch.zeros(len(batch), width)


def one_short(args, batch, rewards, kl, values):
    return [[0.0] * (s.response_length - 1) for s in batch], None


# -- cispo ---------------------------------------------------------------------------------------
def test_cispo_parses_and_validates_as_an_estimator():
    assert args_with("--advantage-estimator", "cispo").advantage_estimator == "cispo"


def test_cispo_keeps_the_gradient_of_tokens_ppo_clips_with_the_weight_truncated():
    log_ratio = torch.tensor([math.log(1.5), math.log(0.9), math.log(1.5)], dtype=torch.float64, requires_grad=True)
    advantages = torch.tensor([1.0, -1.0, -2.0], dtype=torch.float64)
    loss, clipped = cispo_loss(log_ratio, advantages, eps_clip_high=0.28)
    assert loss.tolist() == pytest.approx([-1.28, 0.9, 2 * 1.28])  # −A·min(ratio, 1 + eps_clip_high)
    assert clipped.tolist() == [1.0, 0.0, 1.0]
    loss.sum().backward()
    assert log_ratio.grad.tolist() == pytest.approx([-1.28, 0.9, 2 * 1.28])  # −A·r̂: every token keeps a gradient
    ppo_ratio = log_ratio.detach().clone().requires_grad_()
    ppo, _ = clipped_policy_loss(ppo_ratio, advantages, eps_clip=0.2, eps_clip_high=0.28)
    ppo.sum().backward()
    assert ppo_ratio.grad[0] == 0  # where PPO-clip drops the token


def test_cispo_stays_finite_where_the_ratio_overflows():
    log_ratio = torch.tensor([200.0], requires_grad=True)
    loss, _ = cispo_loss(log_ratio, torch.tensor([1.0]), eps_clip_high=0.2)
    loss.backward()
    assert loss.item() == pytest.approx(-1.2) and log_ratio.grad.item() == pytest.approx(-1.2)


# -- rollout log-probs ---------------------------------------------------------------------------
def test_rollout_log_probs_stand_for_the_old_policys():
    assert rollout_old_log_probs(samples(2, 1)) == [[-1.0, -1.0], [-2.0]]
    assert args_with("--use-rollout-logprobs").use_rollout_logprobs


def test_missing_rollout_log_probs_are_named():
    batch = samples(3)
    batch[0].rollout_log_probs = []
    with pytest.raises(ValueError, match="sample 0 has 0 rollout log-probs for 3 response tokens"):
        rollout_old_log_probs(batch)


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
    with pytest.raises(HookError, match="must return one bool per sample"):
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


def test_custom_advantages_and_supplied_advantages_are_exclusive():
    with pytest.raises(ArgumentProblems, match="keep one"):
        args_with("--custom-advantage-function-path", f"{HERE}.reward_per_token",
                  "--disable-compute-advantages-and-returns")


# -- reference updates ---------------------------------------------------------------------------
def test_the_reference_is_updated_every_interval():
    args = args_with(*KL, "--ref-update-interval", "3")
    assert [r for r in range(9) if ref_update_due(args, r)] == [2, 5, 8]
    assert not any(ref_update_due(args_with(*KL), r) for r in range(9))


@pytest.mark.parametrize(("extra", "message"), [
    (["--ref-update-interval", "2"], "updates a reference model that this run does not have"),
    ([*KL, "--ref-update-interval", "0"], "must be at least 1, got 0"),
])
def test_a_reference_update_without_a_reference_is_refused(extra, message):
    with pytest.raises(ArgumentProblems, match=message):
        args_with(*extra)


@pytest.mark.slow
def test_the_torch_backend_makes_the_actor_its_reference(tiny_base, tmp_path):
    from slime.backends.torch_backend import TorchTrainBackend
    from slime.config.compose import namespace_from_config

    args = namespace_from_config("run_tiny_cpu", [f"ckpt.save={tmp_path / 'ckpt'}", "grpo.kl_loss_coef=0.01",
                                                  "grpo.use_kl_loss=true"], environ={"BASE_FOLDER": str(tiny_base)})
    backend = TorchTrainBackend(args, "actor")
    backend.init(0, 1, "127.0.0.1", 0)
    batch = [{"prompt_tokens": [5, 13, 4, 14], "response_tokens": [t], "loss_mask": [1], "rollout_log_probs": [-2.7],
              "advantages": [a], "returns": [a], "old_log_probs": [-2.7], "ref_log_probs": [-2.7]}
             for t, a in ((7, 1.0), (9, -1.0), (3, -1.0), (7, 1.0))]
    backend.train(batch, [4], [4])
    assert backend.compute_log_probs(batch, True) != backend.compute_log_probs(batch)  # trained away from it
    backend.update_reference()
    assert backend.compute_log_probs(batch, True) == backend.compute_log_probs(batch)


# -- the loop with all of them -------------------------------------------------------------------
@pytest.mark.slow
def test_the_tiny_run_trains_with_every_feature_at_once(tiny_base, tmp_path, training_ray):
    from tests.test_training import ONE_GPU, train

    result = train(tiny_base, ONE_GPU, f"ckpt.save={tmp_path / 'ckpt'}", "rollout.num_rollout=2",
                   "grpo.advantage_estimator=cispo", "+grpo.use_rollout_logprobs=true", "grpo.kl_loss_coef=0.01",
                   "+grpo.ref_update_interval=1", f"+grpo.custom_advantage_function_path={HERE}.reward_per_token",
                   f"+rollout.custom_reward_post_process_path={HERE}.raw_and_shifted",
                   f"+rollout.rollout_sample_filter_path={HERE}.keep_even", ray=training_ray)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "rollout 1: the reference model is now the actor (--ref-update-interval)" in log
    assert "rollout 1: 32 of 64 samples left out of the loss (--rollout-sample-filter-path)" in log
