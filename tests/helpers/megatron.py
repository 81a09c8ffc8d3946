"""Running megatron-core on several CPU processes inside a test: gloo ranks spawned fresh, each
building the megatron backend from a tiny config; results come back per rank."""

from __future__ import annotations

import pytest

from slime.utils.local_ranks import RankFailed, run_ranks
from tests.conftest import require_module
from slime.cli.make_tiny_model import MODELS

# conf/model file → folder that tools/make_tiny_model.py writes it to, one per mapped family (tiny-chat
# is tiny's architecture with another tokenizer)
TINY_FOLDERS = {name: folder for name, folder in MODELS.items() if name != "tiny-chat"}


def spawn(world_size: int, function, *args, timeout: float = 600) -> list:
    """``function(rank, world_size, port, *args)`` on ``world_size`` fresh processes; their results by
    rank. A rank that fails fails the test with its traceback."""
    try:
        return run_ranks(world_size, function, *args, timeout=timeout)
    except RankFailed as err:
        pytest.fail(str(err), pytrace=False)


def tiny_args(base, model: str = "tiny", *overrides: str, config: str = "run_tiny_megatron"):
    """The Namespace of a tiny megatron config on model ``model`` built under ``base``, with a KL loss of
    some weight, so that the reference model is loaded, swapped in and used."""
    from slime.config.compose import namespace_from_config

    require_module("megatron.core")
    folder = TINY_FOLDERS[model]
    return namespace_from_config(config, [f"model={model}", f"ckpt.hf_checkpoint={base}/{folder}",
                                          f"ckpt.ref_load={base}/{folder}", "grpo.kl_loss_coef=0.001", *overrides],
                                 environ={"BASE_FOLDER": str(base)})
