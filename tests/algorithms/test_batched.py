"""The batched algorithms equal their float64 per-token definitions (slime.algorithms.reference) on
random batches: lengths (empty responses included), loss masks, rewards, KL, values, gammas and
lambdas, every estimator and option; and the micro-batch losses equal the sample-by-sample ones.

Tolerance: relative 1e-5 on float32 inputs. The absolute floor, 1e-9 of the largest magnitude in the
batch, only admits values that are zero up to float64 cancellation."""

from __future__ import annotations

import argparse

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slime.algorithms import reference
from slime.algorithms.advantages import ESTIMATORS, compute_advantages
from slime.algorithms.kl import KL_TYPES
from slime.algorithms.layout import pad, pad_lists, unpad, unpad_lists, valid_mask
from slime.algorithms.micro_batch import MicroBatch, actor_loss, critic_loss
from slime.algorithms.scan import reverse_discounted_cumsum

F64 = torch.float64
PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Discounts where naive methods break: exactly 0 and 1, within rounding of them, and in between.
EDGES = [0.0, 1e-12, 1e-4, 0.5, 0.9, 0.99, 1 - 1e-4, 1 - 1e-9, 1.0]
discounts = st.one_of(st.sampled_from(EDGES), st.floats(0.0, 1.0))
float32s = st.floats(-10.0, 10.0, width=32, allow_subnormal=False)


def assert_close(got: list[list[float]], want: list[torch.Tensor], rtol: float = 1e-5) -> None:
    want = [w.to(F64) for w in want]
    scale = max([float(w.abs().max()) for w in want if len(w)] + [1.0])
    for row, (g, w) in enumerate(zip(got, want)):
        g = torch.tensor(g, dtype=F64)
        assert g.shape == w.shape, (row, g.shape, w.shape)
        err = (g - w).abs() - (rtol * w.abs() + 1e-9 * scale)
        assert (err <= 0).all(), f"row {row}: worst excess {float(err.max()):.3g}\n got {g}\nwant {w}"


def python_scan(x: list[float], discount: float) -> torch.Tensor:
    out, running = [0.0] * len(x), 0.0
    for t in reversed(range(len(x))):
        running = x[t] + discount * running
        out[t] = running
    return torch.tensor(out, dtype=F64)


@st.composite
def rows(draw, max_len: int):
    lengths = draw(st.lists(st.integers(0, max_len), min_size=1, max_size=5))
    return [draw(st.lists(float32s, min_size=n, max_size=n)) for n in lengths]


@PROPERTY
@given(rows(60), discounts, st.sampled_from([2, 3, 5, 128]))
def test_scan_equals_the_recurrence(values, discount, chunk):
    """Small chunks take the multi-level path (chunks of chunks) on short rows."""
    got = reverse_discounted_cumsum(pad_lists(values), discount, chunk)
    assert got.dtype == torch.float32
    assert_close(unpad_lists(got, [len(v) for v in values]), [python_scan(v, discount) for v in values])


def test_scan_over_three_levels_of_chunks_near_one_and_zero():
    x = torch.randn(2, 128 * 128 + 77, generator=torch.Generator().manual_seed(0))
    for discount in (1 - 1e-7, 0.999, 1e-3):
        got = reverse_discounted_cumsum(x, discount)
        assert_close(got.tolist(), [python_scan(row.tolist(), discount) for row in x])


@st.composite
def rollouts(draw):
    """Per-sample lists of a random rollout: whole groups, responses of 0 to 160 tokens."""
    group_size = draw(st.integers(1, 4))
    n = group_size * draw(st.integers(1, 3))
    lengths = draw(st.lists(st.integers(0, 160), min_size=n, max_size=n))

    def per_token(elements):
        return [draw(st.lists(elements, min_size=k, max_size=k)) for k in lengths]

    rewards = torch.tensor(draw(st.lists(st.sampled_from([0.0, 1.0]) | float32s, min_size=n, max_size=n)))
    tokens = {"loss_mask": per_token(st.sampled_from([0.0, 1.0, 1.0, 1.0])),
              "kl": per_token(st.floats(-1.0, 1.0, width=32, allow_subnormal=False)), "values": per_token(float32s)}
    options = {"kl_coef": draw(st.sampled_from([0.0, 0.05, 1.0])), "gamma": draw(discounts),
               "lambd": draw(discounts), "divide_by_std": draw(st.booleans()), "normalize": draw(st.booleans()),
               "normalize_rewards": draw(st.booleans()), "kl_in_group_rewards": draw(st.booleans())}
    return rewards, lengths, group_size, tokens, options


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rollouts(), st.sampled_from(ESTIMATORS))
def test_every_estimator_equals_its_per_token_definition(rollout, estimator):
    rewards, lengths, group_size, tokens, options = rollout
    padded = {key: pad_lists(rows) for key, rows in tokens.items()}
    advantages, returns = compute_advantages(estimator, rewards, lengths, group_size, **padded, **options)
    assert advantages.dtype == torch.float32 and advantages.shape == padded["kl"].shape
    assert not advantages[~valid_mask(lengths, advantages.shape[1])].any()
    per_sample = {key: [torch.tensor(row, dtype=torch.float32) for row in rows] for key, rows in tokens.items()}
    want_advantages, want_returns = reference.compute_advantages(
        estimator, rewards, lengths, group_size, loss_masks=per_sample["loss_mask"], kl=per_sample["kl"],
        values=per_sample["values"], **options)
    assert_close(unpad_lists(advantages, lengths), want_advantages)
    assert_close(unpad_lists(returns, lengths), want_returns)


@given(rows(20))
def test_packed_and_padded_layouts_round_trip(values):
    lengths = [len(v) for v in values]
    flat = torch.tensor([x for v in values for x in v], dtype=torch.float32)
    padded = pad(flat, lengths)
    assert torch.equal(unpad(padded, lengths), flat)
    assert unpad_lists(padded, lengths) == [torch.tensor(v, dtype=torch.float32).tolist() for v in values]
    assert torch.equal(pad_lists(values), padded)


# -- micro-batch losses ------------------------------------------------------------------------
LOG_PROBS = st.floats(-4.0, 0.0, allow_subnormal=False)


@st.composite
def micro_batches(draw):
    lengths = draw(st.lists(st.integers(0, 24), min_size=1, max_size=5))
    samples = []
    for n in lengths:
        def column(elements):
            return draw(st.lists(elements, min_size=n, max_size=n))

        samples.append({"response_tokens": [0] * n, "loss_mask": column(st.sampled_from([0, 1, 1])),
                        "advantages": column(st.floats(-3.0, 3.0)), "returns": column(st.floats(-3.0, 3.0)),
                        "old_log_probs": column(LOG_PROBS), "ref_log_probs": column(LOG_PROBS),
                        "rollout_log_probs": column(LOG_PROBS), "old_values": column(st.floats(-3.0, 3.0)),
                        "log_probs": column(LOG_PROBS), "entropy": column(st.floats(0.0, 3.0)),
                        "values": column(st.floats(-3.0, 3.0))})
    eps_clip = draw(st.floats(0.05, 0.4))
    args = argparse.Namespace(
        advantage_estimator=draw(st.sampled_from(["grpo", "gspo", "cispo"])), eps_clip=eps_clip,
        eps_clip_high=draw(st.sampled_from([eps_clip, 0.28])), eps_clip_c=draw(st.sampled_from([None, 3.0])),
        use_tis=draw(st.booleans()), tis_clip_low=draw(st.sampled_from([0.0, 0.5])), tis_clip=2.0,
        use_kl_loss=draw(st.booleans()), kl_loss_type=draw(st.sampled_from(KL_TYPES)),
        kl_loss_coef=draw(st.sampled_from([0.0, 0.01, 1.0])), entropy_coef=draw(st.sampled_from([0.0, 0.01])),
        calculate_per_token_loss=draw(st.booleans()), value_clip=draw(st.sampled_from([0.1, 0.5])))
    totals = (sum(sum(s["loss_mask"]) for s in samples) + draw(st.integers(0, 10)),
              len(samples) + draw(st.integers(0, 3)))
    return args, samples, totals


def float64_batch(samples: list[dict]) -> MicroBatch:
    batch = MicroBatch.from_dicts(samples)
    for key in ("loss_mask", "advantages", "returns", "old_log_probs", "ref_log_probs", "rollout_log_probs",
                "old_values"):  # from the dicts' float64 values, not from from_dicts' float32 copies
        setattr(batch, key, torch.tensor([x for s in samples for x in s[key]], dtype=F64))
    return batch


def leaves(samples: list[dict], key: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
    flat = torch.tensor([x for s in samples for x in s[key]], dtype=F64, requires_grad=True)
    return flat, list(torch.split(flat, [len(s[key]) for s in samples]))


def assert_same_loss(got: torch.Tensor, want: torch.Tensor, got_leaf: torch.Tensor, want_leaf: torch.Tensor) -> None:
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
    got.backward()
    want.backward()
    torch.testing.assert_close(got_leaf.grad, want_leaf.grad, rtol=1e-9, atol=1e-12)


@pytest.mark.slow
@PROPERTY
@given(micro_batches())
def test_actor_loss_of_a_micro_batch_equals_the_per_sample_loss(case):
    """In float64, so that any difference is the algorithm's, not rounding's; gradients included."""
    args, samples, (tokens, count) = case
    log_probs, _ = leaves(samples, "log_probs")
    entropy = torch.tensor([x for s in samples for x in s["entropy"]], dtype=F64)
    loss, metrics = actor_loss(args, log_probs, entropy, float64_batch(samples), tokens, count)
    ref_leaf, ref_log_probs = leaves(samples, "log_probs")
    entropies = list(torch.split(entropy, [len(s["entropy"]) for s in samples]))
    want, want_metrics = reference.actor_loss(args, ref_log_probs, entropies, samples, tokens, count)
    assert metrics.keys() == want_metrics.keys()
    for key, value in metrics.items():
        assert abs(value - want_metrics[key]) <= 1e-9, key
    assert_same_loss(loss, want, log_probs, ref_leaf)


@pytest.mark.parametrize("estimator", ["grpo", "gspo", "cispo"])
def test_a_micro_batch_of_empty_responses_has_a_zero_loss_on_the_graph(estimator):
    """Found by the property test above: an empty response's reference loss left the graph under cispo."""
    args = argparse.Namespace(advantage_estimator=estimator, eps_clip=0.25, eps_clip_high=0.25, eps_clip_c=None,
                              use_tis=False, tis_clip_low=0.0, tis_clip=2.0, use_kl_loss=False, kl_loss_type="k1",
                              kl_loss_coef=0.0, entropy_coef=0.0, calculate_per_token_loss=False, value_clip=0.1)
    keys = ("response_tokens", "loss_mask", "advantages", "returns", "old_log_probs", "ref_log_probs",
            "rollout_log_probs", "old_values", "log_probs", "entropy", "values")
    samples = [{key: [] for key in keys}]
    log_probs, _ = leaves(samples, "log_probs")
    loss, _ = actor_loss(args, log_probs, torch.zeros(0, dtype=F64), float64_batch(samples), 0, 1)
    ref_leaf, ref_log_probs = leaves(samples, "log_probs")
    want, _ = reference.actor_loss(args, ref_log_probs, [torch.zeros(0, dtype=F64)], samples, 0, 1)
    assert float(loss) == float(want) == 0.0
    assert_same_loss(loss, want, log_probs, ref_leaf)


@pytest.mark.slow
@PROPERTY
@given(micro_batches())
def test_critic_loss_of_a_micro_batch_equals_the_per_sample_loss(case):
    args, samples, (tokens, count) = case
    values, _ = leaves(samples, "values")
    loss, metrics = critic_loss(args, values, float64_batch(samples), tokens, count)
    ref_leaf, ref_values = leaves(samples, "values")
    want, want_metrics = reference.critic_loss(args, ref_values, samples, tokens, count)
    assert abs(metrics["value_mean"] - want_metrics["value_mean"]) <= 1e-9
    assert_same_loss(loss, want, values, ref_leaf)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: checks that the batched code runs where "
                                                          "its inputs live")
def test_the_batched_code_runs_on_the_inputs_device():
    g = torch.Generator().manual_seed(0)
    lengths = [300, 0, 17, 128]
    tokens = {key: torch.rand(4, 300, generator=g) for key in ("loss_mask", "kl", "values")}
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0])
    for estimator in ESTIMATORS:
        on_cpu = compute_advantages(estimator, rewards, lengths, 2, **tokens, gamma=0.99, lambd=0.95, kl_coef=0.1)
        on_gpu = compute_advantages(estimator, rewards.cuda(), lengths, 2, **{k: v.cuda() for k, v in tokens.items()},
                                    gamma=0.99, lambd=0.95, kl_coef=0.1)
        for a, b in zip(on_cpu, on_gpu):
            assert b.is_cuda
            torch.testing.assert_close(b.cpu(), a, rtol=1e-5, atol=1e-6)
    batch = MicroBatch(lengths=torch.tensor(lengths), loss_mask=torch.ones(445, device="cuda"),
                       old_values=torch.zeros(445, device="cuda"), returns=torch.ones(445, device="cuda"))
    args = argparse.Namespace(value_clip=0.2, calculate_per_token_loss=False)
    loss, _ = critic_loss(args, torch.zeros(445, device="cuda"), batch, 445.0, 4)
    assert loss.is_cuda and float(loss) == pytest.approx(0.5 * 3 / 4)
