"""The rollout hooks the tests name by path (``HERE`` + name: reward post-processing, sample filters,
custom advantages), and the samples and command lines their tests start from."""

from __future__ import annotations

import math

import torch

from slime.arguments.parser import parse_args
from slime.rollout.sample import Sample
from tests.helpers.command_lines import MINIMAL

HERE = "tests.helpers.hooks"
KL = ["--use-kl-loss", "--kl-loss-coef", "0.01", "--ref-load", "/models/ref"]


def samples(*lengths: int) -> list[Sample]:
    return [Sample(group_index=i // 2, index=i, prompt="p", tokens=[7] * n, response_length=n, loss_mask=[1] * n,
                   rollout_log_probs=[-1.0 - i] * n, reward=float(i % 2)) for i, n in enumerate(lengths)]


def args_with(*extra: str):
    return parse_args([*MINIMAL, *extra])


def doubled(args, batch):
    return [2 * s.reward for s in batch]


def raw_and_shifted(args, batch):
    return [s.reward for s in batch], [s.reward - 0.5 for s in batch]


def wrong_count(args, batch):
    return [1.0]


def with_nan(args, batch):
    return [math.nan] * len(batch)


def keep_even(args, groups):
    return [s.index % 2 == 0 for group in groups for s in group]


def remove_first(args, groups):
    groups[0][0].remove_sample = True


def keep_as_ints(args, groups):
    return [1] * sum(len(group) for group in groups)


def reward_per_token(args, batch, rewards, kl, values):
    return [[float(r)] * s.response_length for r, s in zip(rewards, batch)], None


def padded_advantages(args, batch, rewards, kl, values):
    width = max(s.response_length for s in batch)
    return torch.ones(len(batch), width), torch.zeros(len(batch), width)


def one_short(args, batch, rewards, kl, values):
    return [[0.0] * (s.response_length - 1) for s in batch], None
