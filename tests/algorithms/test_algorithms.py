"""Every algorithm against values computed by hand: the per-token reference (the oracle of the
property tests in test_algorithms_batched.py) and the batched code alike."""

from __future__ import annotations

import math

import pytest
import torch

from slime.algorithms import advantages as batched
from slime.algorithms.kl import kl_estimate
from slime.algorithms.layout import pad_lists, unpad_lists
from slime.algorithms.losses import aggregate, cispo_loss, clipped_policy_loss, policy_loss, tis_weights, value_loss
from slime.algorithms.reference import compute_advantages, discounted_returns, gae, group_normalize, whiten

T = torch.tensor


def close(a, b, tol=1e-5):
    assert torch.allclose(torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32), atol=tol), (a, b)


def test_kl_estimators():
    logp, ref = T([-1.0, -2.0]), T([-1.5, -1.0])  # log ratios 0.5, -1
    close(kl_estimate(logp, ref, "k1"), [0.5, -1.0])
    close(kl_estimate(logp, ref, "k2"), [0.125, 0.5])
    close(kl_estimate(logp, ref, "k3"), [math.exp(-0.5) - 1 + 0.5, math.exp(1) - 1 - 1])
    assert kl_estimate(T([0.0]), T([-20.0]), "low_var_kl").item() == 10.0  # exp(-20) - 1 + 20 ≈ 19, clamped
    with pytest.raises(ValueError):
        kl_estimate(logp, ref, "k4")


def test_group_normalize():
    rewards = T([1.0, 0.0, 0.0, 0.0, 1.0, 1.0])  # two groups of three
    centred = group_normalize(rewards, 3, divide_by_std=False)
    close(centred, [2 / 3, -1 / 3, -1 / 3, -2 / 3, 1 / 3, 1 / 3])
    std = math.sqrt(1 / 3)  # unbiased: (4/9 + 1/9 + 1/9) / 2
    close(group_normalize(rewards, 3), [(2 / 3) / std, (-1 / 3) / std, (-1 / 3) / std, (-2 / 3) / std,
                                        (1 / 3) / std, (1 / 3) / std], tol=1e-4)


def test_grpo_broadcasts_to_tokens_and_kl_coef_lowers_rewards_only_when_asked():
    adv, ret = compute_advantages("grpo", T([1.0, 0.0]), [2, 3], 2)
    close(adv[0], [math.sqrt(0.5)] * 2, tol=1e-4)  # 0.5 / the unbiased std sqrt(0.5)
    close(adv[1], [-math.sqrt(0.5)] * 3, tol=1e-4)
    assert ret is adv
    kl = [T([0.5, 0.5]), T([0.0, 0.0, 0.0])]
    adv, _ = compute_advantages("grpo", T([1.0, 1.0]), [2, 3], 2, kl=kl, kl_coef=1.0, kl_in_group_rewards=True)
    assert adv[0][0] < 0 < adv[1][0]  # the first sample paid 1.0 of KL penalty
    adv, _ = compute_advantages("grpo", T([1.0, 1.0]), [2, 3], 2, kl=kl, kl_coef=1.0)
    close(torch.cat(adv), [0.0] * 5)  # upstream's meaning: --kl-coef leaves group advantages alone


def test_discounted_returns_and_reinforce_plus_plus():
    close(discounted_returns(T([1.0, 0.0, 2.0]), 0.5), [1 + 0 + 0.5, 0 + 1.0, 2.0])
    adv, ret = compute_advantages("reinforce_plus_plus", T([1.0, 0.0]), [2, 2], 2, gamma=1.0,
                                  kl=[T([0.1, 0.1]), T([0.0, 0.0])], kl_coef=1.0, normalize=True)
    close(ret[0], [0.8, 0.9])  # token rewards -0.1, -0.1 + 1 → returns 0.8, 0.9
    close(ret[1], [0.0, 0.0])
    flat = torch.cat(adv)
    close(flat.mean(), 0.0)
    close(flat.std(unbiased=True), 1.0, tol=1e-4)


def test_reinforce_plus_plus_baseline():
    adv, _ = compute_advantages("reinforce_plus_plus_baseline", T([1.0, 0.0]), [1, 1], 2, normalize=True)
    close(torch.cat(adv), [math.sqrt(0.5), -math.sqrt(0.5)], tol=1e-4)  # centred 0.5, -0.5; unbiased var 0.5


def test_gae():
    rewards, values = T([0.0, 1.0]), T([0.5, 0.8])
    advantages, returns = gae(rewards, values, gamma=1.0, lambd=1.0)
    # delta1 = 1 + 0 - 0.8 = 0.2; delta0 = 0 + 0.8 - 0.5 = 0.3; A0 = 0.3 + 0.2 = 0.5
    close(advantages, [0.5, 0.2])
    close(returns, [1.0, 1.0])
    advantages, _ = gae(rewards, values, gamma=0.5, lambd=0.5)
    # delta1 = 1 - 0.8 = 0.2; delta0 = 0 + 0.5*0.8 - 0.5 = -0.1; A0 = -0.1 + 0.25*0.2 = -0.05
    close(advantages, [-0.05, 0.2])


def test_ppo_needs_values():
    with pytest.raises(ValueError, match="values"):
        compute_advantages("ppo", T([1.0]), [1], 1)
    adv, ret = compute_advantages("ppo", T([1.0]), [2], 1, values=[T([0.5, 0.8])])
    close(adv[0], [0.5, 0.2])


def test_whiten_uses_the_tokens_the_loss_mask_keeps():
    out = whiten([T([1.0, 2.0]), T([3.0])], [T([1, 1]), T([1])])
    flat = torch.cat(out)
    close(flat.mean(), 0.0)
    close(flat.std(unbiased=True), 1.0, tol=1e-4)
    # the masked token neither moves the statistics (mean 1.5, unbiased variance 0.5) nor escapes whitening
    r = math.sqrt(2)
    close(torch.cat(whiten([T([1.0, 2.0]), T([3.0])], [T([1, 1]), T([0])])), [-r / 2, r / 2, 1.5 * r], tol=1e-4)
    keep = T([[True, True], [False, False]])
    close(batched.masked_whiten(T([[1.0, 2.0], [3.0, 0.0]]), keep), [[-r / 2, r / 2], [1.5 * r, -1.5 * r]], tol=1e-4)
    close(torch.cat(whiten([T([1.0, 2.0])], [T([0, 0])])), [1.0, 2.0])  # nothing kept: left as it is


def test_masked_tokens_pay_no_kl_penalty():
    kl, masks = [T([0.5, 0.5, 0.5])], [T([1, 0, 1])]
    _, returns = compute_advantages("reinforce_plus_plus", T([1.0]), [3], 1, kl=kl, loss_masks=masks, kl_coef=1.0)
    close(returns[0], [-0.5 + 0.5, 0.5, 0.5])  # token rewards -0.5, 0, 0.5; gamma 1


def test_batched_matches_hand_computed_ppo_and_grpo():
    lengths = [2, 1]
    values = pad_lists([[0.5, 0.8], [0.25]])
    advantages, returns = batched.compute_advantages("ppo", T([1.0, 0.0]), lengths, 1, values=values,
                                                     gamma=0.5, lambd=0.5)
    assert advantages.shape == (2, 2) and advantages[1, 1] == 0 and returns[1, 1] == 0  # zero past the end
    close(unpad_lists(advantages, lengths)[0], [-0.05, 0.2])  # as test_gae
    close(unpad_lists(advantages, lengths)[1], [-0.25])
    close(unpad_lists(returns, lengths)[0], [0.45, 1.0])
    advantages, returns = batched.compute_advantages("grpo", T([1.0, 0.0]), lengths, 2)
    close(advantages, [[math.sqrt(0.5)] * 2, [-math.sqrt(0.5), 0.0]], tol=1e-4)
    assert returns is advantages


def test_batched_leaves_its_inputs_alone():
    inputs = {"loss_mask": T([[1.0, 0.0]], dtype=torch.float64), "kl": T([[0.5, 0.5]], dtype=torch.float64),
              "values": T([[0.1, 0.2]], dtype=torch.float64)}
    copies = {key: value.clone() for key, value in inputs.items()}
    rewards = T([1.0], dtype=torch.float64)
    for estimator in batched.ESTIMATORS:
        batched.compute_advantages(estimator, rewards, [1], 1, **inputs, kl_coef=0.1, normalize=True)
        assert all(torch.equal(inputs[key], copies[key]) for key in inputs) and rewards.tolist() == [1.0]


def test_batched_float64_inputs_give_float64_results_equal_to_float32_ones():
    """The in-place whitening must not reach the returns when no dtype conversion copies them."""
    lengths, tokens = [3, 1, 2, 3], {key: torch.rand(4, 3, generator=torch.Generator().manual_seed(i))
                                     for i, key in enumerate(("loss_mask", "kl", "values"))}
    rewards = T([1.0, 0.0, 1.0, 0.0])
    for estimator in batched.ESTIMATORS:
        single = batched.compute_advantages(estimator, rewards, lengths, 2, **tokens, kl_coef=0.1, gamma=0.9,
                                            lambd=0.8, normalize=True)
        double = batched.compute_advantages(estimator, rewards.double(), lengths, 2,
                                            **{k: v.double() for k, v in tokens.items()}, kl_coef=0.1, gamma=0.9,
                                            lambd=0.8, normalize=True)
        for a, b in zip(single, double):
            assert b.dtype == torch.float64
            torch.testing.assert_close(b.float(), a, rtol=1e-5, atol=1e-6)


def test_batched_rejects_what_it_cannot_compute():
    with pytest.raises(ValueError, match="values"):
        batched.compute_advantages("ppo", T([1.0]), [1], 1)
    with pytest.raises(ValueError, match="unknown advantage estimator"):
        batched.compute_advantages("a2c", T([1.0]), [1], 1)
    with pytest.raises(ValueError, match="whole groups of 2"):
        batched.compute_advantages("grpo", T([1.0, 0.0, 1.0]), [1, 1, 1], 2)


def test_policy_loss_clips_and_dual_clips():
    old = T([0.0, 0.0, 0.0])
    logp = torch.log(T([1.5, 0.5, 4.0]))  # ratios 1.5, 0.5, 4
    adv = T([1.0, 1.0, -1.0])
    loss, clipped = policy_loss(logp, old, adv, eps_clip=0.2, eps_clip_high=0.3)
    # token 0: max(-1.5, -1.3) = -1.3 (clipped); token 1: max(-0.5, -0.8) = -0.5; token 2: max(4, 1.3) = 4
    close(loss, [-1.3, -0.5, 4.0])
    close(clipped, [1.0, 0.0, 0.0])
    loss, _ = policy_loss(logp, old, adv, eps_clip=0.2, eps_clip_high=0.3, eps_clip_c=3.0)
    close(loss, [-1.3, -0.5, 3.0])  # negative advantage capped at -A * 3


def test_sequence_level_ratio_for_gspo():
    logp, old = T([0.2, -0.2, 0.6]), T([0.0, 0.0, 0.0])  # mean log-ratio 0.2
    loss, _ = policy_loss(logp, old, T([1.0, 1.0, 1.0]), eps_clip=0.5, eps_clip_high=0.5, sequence_level=True)
    close(loss, [-math.exp(0.2)] * 3)


def test_truncated_importance_sampling():
    weights = tis_weights(T([0.0, 0.0, 0.0]), T([0.0, math.log(4.0), -math.log(4.0)]), low=0.5, high=2.0)
    close(weights, [1.0, 0.5, 2.0])
    loss, _ = policy_loss(T([0.0]), T([0.0]), T([1.0]), eps_clip=0.2, eps_clip_high=0.2, tis_weights=T([2.0]))
    close(loss, [-2.0])


def test_value_loss_clipping():
    loss = value_loss(T([2.0]), T([1.0]), T([3.0]), value_clip=0.5)
    # unclipped (2-3)^2 = 1; clipped value 1.5 → (1.5-3)^2 = 2.25; half the max
    close(loss, [1.125])


def test_aggregation_per_token_and_per_sample():
    losses = [T([1.0, 1.0, 1.0]), T([4.0])]
    masks = [T([1.0, 1.0, 0.0]), T([1.0])]
    close(aggregate(losses, masks, per_token_mean=True), (2 + 4) / 3)
    close(aggregate(losses, masks, per_token_mean=False), (1 + 4) / 2)
    close(aggregate(losses, masks, per_token_mean=True, total_tokens=6), 1.0)


def test_cispo_keeps_the_gradient_of_tokens_ppo_clips_with_the_weight_clipped():
    log_ratio = torch.tensor([math.log(1.5), math.log(0.9), math.log(1.5)], dtype=torch.float64)
    logp = torch.tensor([-1.0, -1.0, -0.5], dtype=torch.float64, requires_grad=True)
    advantages = torch.tensor([1.0, -1.0, -2.0], dtype=torch.float64)
    loss, clipped = cispo_loss(log_ratio, logp, advantages, eps_clip=0.2, eps_clip_high=0.28)
    assert loss.tolist() == pytest.approx([1.28, -0.9, -1.28])  # −sg(w)·A·log p, w = clamp(ratio, 0.8, 1.28)
    assert clipped.tolist() == [1.0, 0.0, 1.0]
    loss.sum().backward()
    assert logp.grad.tolist() == pytest.approx([-1.28, 0.9, 2 * 1.28])  # −A·w: every token keeps a gradient
    ppo_ratio = log_ratio.detach().clone().requires_grad_()
    ppo, _ = clipped_policy_loss(ppo_ratio, advantages, eps_clip=0.2, eps_clip_high=0.28)
    ppo.sum().backward()
    assert ppo_ratio.grad[0] == 0  # where PPO-clip drops the token


def test_cispo_stays_finite_where_the_ratio_overflows():
    logp = torch.tensor([-1.0], requires_grad=True)
    loss, clipped = cispo_loss(torch.tensor([200.0]), logp, torch.tensor([1.0]), eps_clip=0.2, eps_clip_high=0.2)
    loss.backward()
    assert loss.item() == pytest.approx(1.2) and logp.grad.item() == pytest.approx(-1.2) and clipped.item() == 1.0
