#!/usr/bin/env python3
"""Speed of the batched RL math against its per-token definitions, measured in the same run.

For every advantage estimator, on a rollout of B samples × L response tokens: the batched code
(slime.algorithms.advantages, padded tensors) against the per-token reference
(slime.algorithms.reference, a loop over samples and tokens); then the actor's and the critic's loss
of one micro-batch, forward and backward, flat (slime.algorithms.micro_batch) against sample by
sample. Each line also gives the largest relative difference of the two results, so the two sides
are seen to compute the same thing.

    python benchmarks/algorithms.py                      # 256x4096 and 64x16384, a few minutes
    python benchmarks/algorithms.py --sizes 32x1024 --micro-batch 4x1024   # a quick look
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch

from slime.algorithms import reference
from slime.algorithms.advantages import ESTIMATORS, compute_advantages
from slime.algorithms.layout import unpad_lists
from slime.algorithms.micro_batch import MicroBatch, actor_loss, critic_loss

GROUP_SIZE = 8
OPTIONS = {"kl_coef": 0.01, "gamma": 0.99, "lambd": 0.95}


def size(text: str) -> tuple[int, int]:
    try:
        samples, tokens = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not SAMPLESxTOKENS, e.g. 256x4096") from None
    return samples, tokens


def seconds(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls, after one untimed warm-up call when repeating."""
    if repeats > 1:
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def relative_difference(got: list[list[float]], want: list[torch.Tensor]) -> float:
    got_flat = torch.tensor([x for row in got for x in row], dtype=torch.float64)
    want_flat = torch.cat([w.to(torch.float64) for w in want])
    return float(((got_flat - want_flat).abs() / want_flat.abs().clamp(min=1e-12)).max())


def rollout(samples: int, tokens: int, seed: int = 0) -> dict:
    """A rollout of full-length responses: rewards 0/1, small KL, values, a loss mask keeping ~90%."""
    g = torch.Generator().manual_seed(seed)
    shape = (samples, tokens)
    rows = {"kl": torch.rand(shape, generator=g) * 0.02, "values": torch.randn(shape, generator=g),
            "loss_mask": (torch.rand(shape, generator=g) < 0.9).float()}
    return {"rewards": (torch.rand(samples, generator=g) < 0.5).float(), "lengths": [tokens] * samples,
            "rows": {key: [row for row in value] for key, value in rows.items()},
            "padded": rows}


def bench_estimators(samples: int, tokens: int, repeats: int, reference_repeats: int) -> None:
    data = rollout(samples, tokens)
    rewards, lengths, rows, padded = data["rewards"], data["lengths"], data["rows"], data["padded"]
    print(f"\nadvantages and returns, {samples} x {tokens} = {samples * tokens:,} tokens "
          f"(batched: median of {repeats}; reference: median of {reference_repeats})")
    print(f"{'estimator':<30} {'reference':>11} {'batched':>10} {'speed-up':>9}  max rel. diff")
    for estimator in ESTIMATORS:
        def batched():
            return compute_advantages(estimator, rewards, lengths, GROUP_SIZE, **padded, **OPTIONS)

        def per_token():
            return reference.compute_advantages(estimator, rewards, lengths, GROUP_SIZE, loss_masks=rows["loss_mask"],
                                                kl=rows["kl"], values=rows["values"], **OPTIONS)

        fast, slow = seconds(batched, repeats), seconds(per_token, reference_repeats)
        difference = relative_difference(unpad_lists(batched()[0], lengths), per_token()[0])
        print(f"{estimator:<30} {slow:>9.3f} s {fast * 1000:>7.1f} ms {slow / fast:>8.0f}x  {difference:.1e}")
    python_floats = seconds(lambda: python_gae(data), reference_repeats)
    difference = relative_difference(python_gae(data), reference.compute_advantages(
        "ppo", rewards, lengths, GROUP_SIZE, loss_masks=rows["loss_mask"], kl=rows["kl"], values=rows["values"],
        **OPTIONS)[0])
    print(f"{'ppo, loop over Python floats':<30} {python_floats:>9.3f} s {'':>10} {'':>9}  {difference:.1e}"
          "  (for context: the per-token loop at its fastest, without torch scalars)")


def python_gae(data: dict) -> list[list[float]]:
    """PPO's advantages by the per-token loop over plain Python floats."""
    gamma, lambd, out = OPTIONS["gamma"], OPTIONS["lambd"], []
    for reward, kl, mask, values in zip(data["rewards"], *(data["rows"][k] for k in ("kl", "loss_mask", "values"))):
        rewards = reference.token_rewards(float(reward), kl, mask, OPTIONS["kl_coef"]).tolist()
        values = values.tolist()
        advantages, last, next_value = [0.0] * len(values), 0.0, 0.0
        for t in reversed(range(len(values))):
            last = rewards[t] + gamma * next_value - values[t] + gamma * lambd * last
            advantages[t], next_value = last, values[t]
        out.append(advantages)
    return out


def loss_args() -> argparse.Namespace:
    return argparse.Namespace(advantage_estimator="grpo", eps_clip=0.2, eps_clip_high=0.28, eps_clip_c=3.0,
                              use_tis=True, tis_clip_low=0.0, tis_clip=2.0, use_kl_loss=True, kl_loss_type="low_var_kl",
                              kl_loss_coef=0.01, entropy_coef=0.001, calculate_per_token_loss=True, value_clip=0.2)


def bench_losses(samples: int, tokens: int, repeats: int) -> None:
    g = torch.Generator().manual_seed(1)
    dicts = [{"response_tokens": [0] * tokens, "loss_mask": [1] * tokens,
              **{key: (torch.randn(tokens, generator=g) * 0.1 + shift).tolist()
                 for key, shift in (("advantages", 0.0), ("returns", 0.0), ("old_values", 0.0),
                                    ("old_log_probs", -1.0), ("ref_log_probs", -1.0), ("rollout_log_probs", -1.0))}}
             for _ in range(samples)]
    args, total = loss_args(), float(samples * tokens)
    batch = MicroBatch.from_dicts(dicts)
    flat = torch.tensor([x for d in dicts for x in d["old_log_probs"]]) + 0.05 * torch.randn(samples * tokens, generator=g)
    entropy = torch.rand(samples * tokens, generator=g)

    def flat_and_split():
        leaf = flat.clone().requires_grad_()
        return leaf, list(torch.split(leaf, tokens))

    def run(loss_fn, *inputs):
        loss, _ = loss_fn(*inputs)
        loss.backward()
        return float(loss.detach())

    def batched_actor():
        return run(actor_loss, args, flat_and_split()[0], entropy, batch, total, samples)

    def per_sample_actor():
        return run(reference.actor_loss, args, flat_and_split()[1], list(torch.split(entropy, tokens)), dicts, total,
                   samples)

    def batched_critic():
        return run(critic_loss, args, flat_and_split()[0], batch, total, samples)

    def per_sample_critic():
        return run(reference.critic_loss, args, flat_and_split()[1], dicts, total, samples)

    print(f"\nloss of one micro-batch, forward and backward, {samples} x {tokens} tokens (median of {repeats} each)")
    print(f"{'loss':<30} {'per sample':>11} {'flat':>10} {'speed-up':>9}  rel. diff")
    for name, fast_fn, slow_fn in (("actor (grpo, tis, kl, entropy)", batched_actor, per_sample_actor),
                                   ("critic (clipped value)", batched_critic, per_sample_critic)):
        fast, slow = seconds(fast_fn, repeats), seconds(slow_fn, repeats)
        want = slow_fn()
        print(f"{name:<30} {slow * 1000:>8.1f} ms {fast * 1000:>7.1f} ms {slow / fast:>8.1f}x  "
              f"{abs(fast_fn() - want) / abs(want):.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=lambda text: [size(s) for s in text.split(",")],
                        default=[(256, 4096), (64, 16384)], help="rollouts as SAMPLESxTOKENS[,...]")
    parser.add_argument("--micro-batch", type=size, default=(8, 4096), help="SAMPLESxTOKENS of the loss benchmark")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls of the batched code")
    parser.add_argument("--reference-repeats", type=int, default=1, help="timed calls of the per-token reference")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU")
    for samples, tokens in opts.sizes:
        bench_estimators(samples, tokens, opts.repeats, opts.reference_repeats)
    bench_losses(*opts.micro_batch, opts.repeats)


if __name__ == "__main__":
    main()
