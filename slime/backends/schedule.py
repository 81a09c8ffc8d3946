"""The learning-rate and weight-decay schedule both train backends follow: megatron-core's
``OptimizerParamScheduler``, its arguments computed as Megatron-LM computes them, in optimizer steps.

The decay runs over --lr-decay-iters or the run's optimizer steps; the warm-up is --lr-warmup-iters, or
--lr-warmup-fraction of the decay steps (Megatron-LM's rule); the weight decay goes from
--start-weight-decay to --end-weight-decay (both --weight-decay unless set) over the run's steps. The
megatron backend hands ``Schedule`` to megatron-core's scheduler itself; the torch backend follows
``lr_at`` and ``weight_decay_at``, which are that scheduler's ``get_lr`` and ``get_wd`` written out
(tests/backends/test_schedule.py holds them to it)."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """``OptimizerParamScheduler``'s arguments, in optimizer steps."""

    init_lr: float
    max_lr: float
    min_lr: float
    lr_warmup_steps: int
    lr_decay_steps: int
    lr_decay_style: str
    start_wd: float
    end_wd: float
    wd_incr_steps: int
    wd_incr_style: str


def schedule(args: argparse.Namespace, total_steps: int) -> Schedule:
    decay = args.lr_decay_iters or max(total_steps, 1)
    warmup = args.lr_warmup_iters or int((args.lr_warmup_fraction or 0.0) * decay)
    start_wd = args.start_weight_decay if args.start_weight_decay is not None else args.weight_decay
    end_wd = args.end_weight_decay if args.end_weight_decay is not None else args.weight_decay
    return Schedule(init_lr=args.lr_warmup_init, max_lr=args.lr, min_lr=args.min_lr, lr_warmup_steps=warmup,
                    lr_decay_steps=max(decay, warmup + 1), lr_decay_style=args.lr_decay_style, start_wd=start_wd,
                    end_wd=end_wd, wd_incr_steps=max(total_steps, 1), wd_incr_style=args.weight_decay_incr_style)


def total_optimizer_steps(args: argparse.Namespace) -> int:
    return (args.num_rollout or 1) * (args.num_steps_per_rollout or 1)


def lr_at(s: Schedule, step: int) -> float:
    """The learning rate after ``step`` optimizer steps: a linear warm-up from init_lr to max_lr, then
    constant, or min_lr past the decay steps, or an inverse-square-root, linear or cosine decay to min_lr."""
    if s.lr_warmup_steps > 0 and step <= s.lr_warmup_steps:
        return s.init_lr + (s.max_lr - s.init_lr) * float(step) / float(s.lr_warmup_steps)
    if s.lr_decay_style == "constant":
        return s.max_lr
    if step > s.lr_decay_steps:
        return s.min_lr
    if s.lr_decay_style == "inverse-square-root":
        return max(s.min_lr, s.max_lr * max(s.lr_warmup_steps, 1) ** 0.5 / max(step, 1) ** 0.5)
    ratio = float(step - s.lr_warmup_steps) / float(s.lr_decay_steps - s.lr_warmup_steps)
    if s.lr_decay_style == "linear":
        coefficient = 1.0 - ratio
    elif s.lr_decay_style == "cosine":
        coefficient = 0.5 * (math.cos(math.pi * ratio) + 1.0)
    else:
        raise ValueError(f"--lr-decay-style {s.lr_decay_style}: not supported (WSD needs --lr-wsd-decay-iters, "
                         "which slime does not have); use constant, linear, cosine or inverse-square-root")
    return s.min_lr + coefficient * (s.max_lr - s.min_lr)


def weight_decay_at(s: Schedule, step: int) -> float:
    """The weight decay after ``step`` optimizer steps: start_wd to end_wd over wd_incr_steps."""
    if step > s.wd_incr_steps or s.wd_incr_style == "constant":
        return s.end_wd
    ratio = float(step) / float(s.wd_incr_steps)
    if s.wd_incr_style == "linear":
        coefficient = ratio
    elif s.wd_incr_style == "cosine":
        coefficient = 0.5 * (math.cos(math.pi * (1 - ratio)) + 1.0)
    else:
        raise ValueError(f"--weight-decay-incr-style {s.wd_incr_style}: not supported; use constant, linear or "
                         "cosine")
    return s.start_wd + coefficient * (s.end_wd - s.start_wd)


def torch_scheduler(optimizer, s: Schedule):
    """The learning rate of ``s`` on a torch optimizer created with lr ``s.max_lr``: a LambdaLR scaling it
    by lr_at / max_lr (its state_dict is LambdaLR's). The weight decay is ``set_weight_decay``'s."""
    import torch

    def scale(step: int) -> float:
        return lr_at(s, step) / s.max_lr if s.max_lr else 0.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, scale)


def set_weight_decay(optimizer, s: Schedule, step: int) -> None:
    """Every parameter group's weight decay to ``weight_decay_at(s, step)``."""
    for group in optimizer.param_groups:
        group["weight_decay"] = weight_decay_at(s, step)
