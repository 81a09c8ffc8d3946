"""What slime sets for every megatron run on GPUs, as plain Namespace arithmetic (no torch).

On GPUs slime trains megatron in bf16 (unless --fp16) with the distributed optimizer for Adam.
``slime.backends.megatron.config.with_slime_defaults`` applies it where the run trains; the launch
plan's memory estimate applies it for the cluster a config is written for.
"""

from __future__ import annotations

import argparse
import copy


def gpu_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """A copy of ``args`` as slime trains them on GPUs."""
    result = copy.copy(args)
    result.bf16 = not args.fp16
    result.use_distributed_optimizer = args.use_distributed_optimizer or args.optimizer == "adam"
    return result
