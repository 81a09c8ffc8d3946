"""The one learning-rate and weight-decay schedule (slime.backends.schedule): lr_at and weight_decay_at are
megatron-core's OptimizerParamScheduler, step for step, over every decay style, warm-up and decay length;
and the torch backend's optimizer follows the same schedule as the megatron backend's scheduler on the same
command line, where the two disagreed before (warm-up from the decay steps, --lr-decay-iters set)."""

from __future__ import annotations

import argparse
import dataclasses
import itertools

import pytest
import torch

from slime.backends.schedule import Schedule, lr_at, schedule, total_optimizer_steps, weight_decay_at
from tests.helpers.stack import require_module

STYLES = ["constant", "linear", "cosine", "inverse-square-root"]
WARMUPS = {"none": {}, "4 iterations": {"lr_warmup_iters": 4}, "a tenth": {"lr_warmup_fraction": 0.1}}
DECAYS = {"the run's steps": None, "longer than the run": 30, "shorter than the run": 12}
WEIGHT_DECAYS = {"constant": (None, None, "constant"), "linear": (0.0, 0.1, "linear"), "cosine": (0.01, 0.1, "cosine")}


def flags(style="linear", warmup=None, decay=None, weight_decay=(None, None, "constant")) -> argparse.Namespace:
    """The flags schedule() reads, as the parser leaves them (20 optimizer steps: 10 rollouts × 2)."""
    start, end, incr = weight_decay
    return argparse.Namespace(**{"lr": 1e-3, "min_lr": 1e-4, "lr_warmup_init": 1e-5, "lr_decay_style": style,
                                 "lr_decay_iters": decay, "lr_warmup_iters": 0, "lr_warmup_fraction": None,
                                 "weight_decay": 0.1, "start_weight_decay": start, "end_weight_decay": end,
                                 "weight_decay_incr_style": incr, "num_rollout": 10, "num_steps_per_rollout": 2,
                                 **(warmup or {})})


def megatron_scheduler(s: Schedule):
    """megatron-core's scheduler on an SGD of one parameter, as the megatron backend builds it."""
    from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0)
    return optimizer, OptimizerParamScheduler(optimizer, **dataclasses.asdict(s))


GRID = list(itertools.product(STYLES, WARMUPS, DECAYS, WEIGHT_DECAYS))


@pytest.mark.parametrize("style,warmup,decay,weight_decay", GRID)
def test_the_schedule_is_megatron_cores_optimizer_param_scheduler(style, warmup, decay, weight_decay):
    require_module("megatron.core")
    s = schedule(flags(style, WARMUPS[warmup], DECAYS[decay], WEIGHT_DECAYS[weight_decay]), 20)
    optimizer, scheduler = megatron_scheduler(s)
    for step in range(s.lr_decay_steps + 4):  # the backends step it once per optimizer step
        assert lr_at(s, step) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-12, abs=0), step
        assert weight_decay_at(s, step) == pytest.approx(optimizer.param_groups[0]["weight_decay"], rel=1e-12), step
        scheduler.step(increment=1)


@pytest.mark.parametrize("overrides,warmup,decay", [
    ({"lr_warmup_iters": 4, "lr_decay_style": "cosine"}, 4, 20),  # warm-up in steps, decay over the run's
    ({"lr_warmup_fraction": 0.1, "lr_decay_iters": 30}, 3, 30),  # a tenth of --lr-decay-iters, not of the run
])
def test_the_warm_up_and_decay_are_counted_as_megatron_lm_counts_them(overrides, warmup, decay):
    args = flags()
    vars(args).update(overrides)
    s = schedule(args, total_optimizer_steps(args))
    assert (total_optimizer_steps(args), s.lr_warmup_steps, s.lr_decay_steps) == (20, warmup, decay)


def test_a_decay_style_without_its_settings_is_refused_by_name():
    with pytest.raises(ValueError, match="--lr-decay-style WSD"):
        lr_at(schedule(flags("WSD"), 20), 5)


@pytest.mark.slow
@pytest.mark.parametrize("style", ["linear", "cosine"])
def test_the_torch_backend_follows_the_megatron_backends_schedule(tiny_base, style):
    """The torch backend trained step by step on one command line, and megatron-core's scheduler built from
    the same Namespace as the megatron backend builds it: the same lr and weight decay at every step."""
    require_module("megatron.core")
    from slime.backends.torch_backend import TorchTrainBackend
    from slime.config.compose import namespace_from_config

    args = namespace_from_config("run_tiny_cpu", [
        "optimizer.lr=1e-3", "+optimizer.min_lr=1e-4", "+optimizer.lr_warmup_init=1e-5",
        f"optimizer.lr_decay_style={style}", "+optimizer.lr_warmup_fraction=0.1", "+optimizer.lr_decay_iters=30", "+optimizer.start_weight_decay=0.0",
        "optimizer.weight_decay=0.1", "+optimizer.weight_decay_incr_style=linear", "rollout.num_rollout=10"],
        environ={"BASE_FOLDER": str(tiny_base)})
    backend = TorchTrainBackend(args, "actor")
    backend.init(0, 1, "127.0.0.1", 0)
    optimizer, scheduler = megatron_scheduler(schedule(args, total_optimizer_steps(args)))
    sample = {"prompt_tokens": [5, 13], "response_tokens": [7], "loss_mask": [1], "rollout_log_probs": [-2.0],
              "old_log_probs": [-2.0], "advantages": [1.0]}
    for step in range(total_optimizer_steps(args) + 2):
        torch_group, megatron_group = backend.optimizer.param_groups[0], optimizer.param_groups[0]
        assert torch_group["lr"] == pytest.approx(megatron_group["lr"], rel=1e-12), step
        assert torch_group["weight_decay"] == pytest.approx(megatron_group["weight_decay"], rel=1e-12), step
        backend.train([sample], [1], [1])
        scheduler.step(increment=1)
