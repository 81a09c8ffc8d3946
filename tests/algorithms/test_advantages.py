"""Upstream slime's meaning of the advantages (issue 22, items 1-3), with the numbers its code gives:
group normalization by the unbiased std, --kl-coef left out of group advantages, CISPO's two-sided
clipped weight and its -sg(w)·A·log p loss, where REINFORCE++ puts the reward and where PPO charges the
KL. Every case is checked on the batched code and on the float64 per-token reference alike."""

from __future__ import annotations

import argparse

import pytest
import torch

from slime.algorithms import reference
from slime.algorithms.advantages import compute_advantages
from slime.algorithms.layout import pad_lists
from slime.algorithms.losses import cispo_loss
from slime.algorithms.micro_batch import MicroBatch, actor_loss
from slime.trainer import estimator_options, group_size
from slime.arguments.parser import ArgumentProblems, parse_args
from tests.helpers.command_lines import MINIMAL

T = torch.tensor


def both(estimator, rewards, lengths, group, **options):
    """(batched advantages [B, L], reference advantages as a padded [B, L]) and the same for returns."""
    tokens = {key: options.pop(key) for key in ("loss_mask", "kl", "values") if key in options}
    batched = compute_advantages(estimator, T(rewards), lengths, group,
                                 **{k: pad_lists(v) for k, v in tokens.items()}, **options)
    per_sample = {"loss_masks" if k == "loss_mask" else k: [T(row) for row in v] for k, v in tokens.items()}
    want = reference.compute_advantages(estimator, T(rewards), lengths, group, **per_sample, **options)
    return batched, tuple(pad_lists([w.tolist() for w in rows], torch.float64) for rows in want)


def assert_both(got, want_rows, tol=1e-6):
    batched, oracle = got
    for which in (0, 1):
        torch.testing.assert_close(batched[which].double(), T(want_rows[which], dtype=torch.float64), atol=tol, rtol=0)
        torch.testing.assert_close(oracle[which], T(want_rows[which], dtype=torch.float64), atol=tol, rtol=0)


# -- 1. group normalization -----------------------------------------------------------------------
@pytest.mark.parametrize(("rewards", "want"), [
    ([1.0, 0.0, 0.0, 0.0], [1.4999970, -0.4999990, -0.4999990, -0.4999990]),  # 0.75 / (0.5 + 1e-6); ours was 1.732
    ([1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], [1.2076124, 1.2076124, -0.7245674, -0.7245674, 1.2076124,
                                                -0.7245674, -0.7245674, -0.7245674]),
    ([0.5, 0.25, 0.0, 1.0], [0.1463847, -0.4391540, -1.0246927, 1.3174620]),
    ([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]),
])
@pytest.mark.parametrize("estimator", ["grpo", "gspo", "cispo"])
def test_a_group_is_divided_by_its_unbiased_std(estimator, rewards, want):
    got = both(estimator, rewards, [1] * len(rewards), len(rewards))
    assert_both(got, [[[w] for w in want]] * 2)


def test_kl_coef_leaves_group_advantages_alone_unless_asked():
    kl = [[1.0, 1.0, 1.0], [0.0] * 3, [0.0] * 3, [0.0] * 3]
    upstream = [[0.8660239] * 3, [0.8660239] * 3, [-0.8660239] * 3, [-0.8660239] * 3]
    assert_both(both("grpo", [1.0, 1.0, 0.0, 0.0], [3] * 4, 4, kl=kl, kl_coef=0.1), [upstream] * 2)
    # --kl-penalty-in-group-rewards: rewards 0.7, 1, 0, 0 before normalization (mean 0.425, std 0.518)
    charged = [[0.5436924] * 3, [1.1368114] * 3, [-0.8402519] * 3, [-0.8402519] * 3]
    assert_both(both("grpo", [1.0, 1.0, 0.0, 0.0], [3] * 4, 4, kl=kl, kl_coef=0.1, kl_in_group_rewards=True),
                [charged] * 2)


def test_one_sample_per_prompt_turns_the_std_division_off_and_is_only_centred():
    args = parse_args([*MINIMAL, "--n-samples-per-prompt", "1"])
    assert args.grpo_std_normalization is False and "grpo_std_normalization" in args.derived_values
    assert_both(both("grpo", [1.0], [2], 1), [[[0.0, 0.0]]] * 2)


def test_a_rollout_of_another_size_is_one_group_as_upstreams():
    args = argparse.Namespace(n_samples_per_prompt=4, rollout_batch_size=2)
    assert group_size(args, 8) == 4
    assert group_size(args, 6) == 6 and group_size(args, 12) == 12  # whole groups or not: one group


def test_disabled_rewards_normalization_and_a_post_process_hook_use_the_rewards_as_they_are():
    assert_both(both("grpo", [1.0, 0.0], [1, 1], 2, normalize_rewards=False), [[[1.0], [0.0]]] * 2)
    assert_both(both("reinforce_plus_plus_baseline", [1.0, 0.0], [1, 1], 2, normalize_rewards=False),
                [[[1.0], [0.0]]] * 2)
    args = parse_args([*MINIMAL, "--disable-rewards-normalization"])
    assert estimator_options(args)["normalize_rewards"] is False
    args = parse_args([*MINIMAL, "--custom-reward-post-process-path", "tests.helpers.hooks.doubled"])
    assert estimator_options(args)["normalize_rewards"] is False
    assert estimator_options(parse_args(MINIMAL))["normalize_rewards"] is True


@pytest.mark.parametrize(("extra", "message"), [
    (["--advantage-estimator", "reinforce_plus_plus"], "needs --normalize-advantages"),
    (["--advantage-estimator", "reinforce_plus_plus_baseline"], "needs --normalize-advantages"),
    (["--kl-penalty-in-group-rewards"], "needs one of them and a nonzero --kl-coef"),
])
def test_upstreams_estimator_rules_are_named(extra, message):
    with pytest.raises(ArgumentProblems, match=message):
        parse_args([*MINIMAL, *extra])


# -- 2. CISPO -------------------------------------------------------------------------------------
RATIOS = [0.5, 0.9, 1.0, 1.2, 1.5]
ADVANTAGES = [1.0, -1.0, 1.0, 1.0, -1.0]
LOG_PROBS = [-1.0, -2.0, -0.5, -0.3, -1.5]


def test_cispo_clips_its_weight_on_both_sides_and_its_loss_carries_log_p():
    logp = T(LOG_PROBS, dtype=torch.float64, requires_grad=True)
    log_ratio = torch.log(T(RATIOS, dtype=torch.float64))
    loss, clipped = cispo_loss(log_ratio, logp, T(ADVANTAGES, dtype=torch.float64), eps_clip=0.2, eps_clip_high=0.28)
    torch.testing.assert_close(loss, T([0.8, -1.8, 0.5, 0.36, -1.92], dtype=torch.float64))  # weights .8 .9 1 1.2 1.28
    assert float(loss.detach().sum()) == pytest.approx(-2.06)
    assert clipped.tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]  # the lower bound counts too: mean 0.4
    loss.sum().backward()
    torch.testing.assert_close(logp.grad, T([-0.8, 0.9, -1.0, -1.2, 1.28], dtype=torch.float64))


def test_cispo_of_a_micro_batch_equals_the_reference_with_these_numbers():
    args = argparse.Namespace(advantage_estimator="cispo", eps_clip=0.2, eps_clip_high=0.28, eps_clip_c=None,
                              use_tis=False, tis_clip_low=0.0, tis_clip=2.0, use_kl_loss=False, kl_loss_type="k1",
                              kl_loss_coef=0.0, entropy_coef=0.0, calculate_per_token_loss=True,
                              loss_type="policy_loss")
    old = [lp - float(torch.log(T(r, dtype=torch.float64))) for lp, r in zip(LOG_PROBS, RATIOS)]
    sample = {"response_tokens": [0] * 5, "loss_mask": [1] * 5, "advantages": ADVANTAGES, "old_log_probs": old}
    batch = MicroBatch.from_dicts([sample])
    batch.old_log_probs, batch.advantages = T(old, dtype=torch.float64), T(ADVANTAGES, dtype=torch.float64)
    batch.loss_mask = torch.ones(5, dtype=torch.float64)
    logp = T(LOG_PROBS, dtype=torch.float64, requires_grad=True)
    loss, metrics = actor_loss(args, logp, torch.zeros(5, dtype=torch.float64), batch, 5.0, 1)
    want, want_metrics = reference.actor_loss(args, [T(LOG_PROBS, dtype=torch.float64)], [torch.zeros(5)], [sample],
                                              5.0, 1)
    assert float(loss.detach()) == pytest.approx(-2.06 / 5) and float(want) == pytest.approx(-2.06 / 5)
    assert metrics["pg_clipfrac"] == pytest.approx(0.4) and want_metrics["pg_clipfrac"] == pytest.approx(0.4)


def test_cispo_with_eps_clip_one_is_the_papers_upper_truncation():
    log_ratio = torch.log(T(RATIOS))
    _, clipped = cispo_loss(log_ratio, T(LOG_PROBS), T(ADVANTAGES), eps_clip=1.0, eps_clip_high=0.28)
    assert clipped.tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]


# -- 3. where the reward and the KL go ------------------------------------------------------------
MASK, KL = [[1.0, 1.0, 1.0, 0.0, 0.0]], [[0.1, 0.2, 0.3, 0.4, 0.5]]  # a response ending in masked tokens


def test_reinforce_plus_plus_puts_the_reward_on_the_last_loss_masked_token():
    got = both("reinforce_plus_plus", [1.0], [5], 1, loss_mask=MASK, kl=KL, kl_coef=0.1)
    # token rewards -0.01, -0.02, 0.97, 0, 0; returns over every token; not whitened without the flag
    assert_both(got, [[[0.94, 0.95, 0.97, 0.0, 0.0]]] * 2)
    got = both("reinforce_plus_plus", [1.0], [5], 1, loss_mask=MASK, kl=KL, kl_coef=0.1, normalize=True)
    assert_both(got, [[[-0.872853, -0.218213, 1.091066, -62.408979, -62.408979]], [[0.94, 0.95, 0.97, 0.0, 0.0]]],
                tol=2e-6)


def test_ppo_charges_the_kl_on_every_response_token():
    got = both("ppo", [1.0], [5], 1, loss_mask=MASK, kl=KL, kl_coef=0.1, values=[[0.0] * 5])
    # token rewards -0.01, -0.02, -0.03, -0.04, 0.95; with V = 0 and gamma = lambda = 1 the advantages are their sums
    assert_both(got, [[[0.85, 0.86, 0.88, 0.91, 0.95]]] * 2)


def test_reinforce_plus_plus_baseline_charges_the_kl_on_every_token():
    got = both("reinforce_plus_plus_baseline", [1.0, 0.0], [2, 2], 2, loss_mask=[[1.0, 0.0], [1.0, 1.0]],
               kl=[[0.5, 0.5], [0.0, 0.0]], kl_coef=0.1)
    assert_both(got, [[[0.45, 0.45], [-0.5, -0.5]]] * 2)
