"""Every flag the parser knows, from the three flag tables (slime's, Megatron-LM's, SGLang's), in the
order of their groups, and looked up by option string or by attribute name. The parser, validation, role
overrides, the config toolchain and the importer all read the flags from here."""

from __future__ import annotations

from functools import lru_cache

from slime.arguments import slime_flags
from slime.arguments.flags import Flag
from slime.arguments.megatron_flags import MEGATRON_FLAGS, MEGATRON_GROUPS
from slime.arguments.sglang_flags import GROUP as SGLANG_GROUP
from slime.arguments.sglang_flags import sglang_flags

GROUP_ORDER = [
    slime_flags.CLUSTER, slime_flags.TRAINING, slime_flags.ROLLOUT, slime_flags.SAMPLING, slime_flags.DATA,
    slime_flags.BATCH, slime_flags.EVAL, slime_flags.ALGORITHM, slime_flags.REWARD, slime_flags.ROUTER, slime_flags.FAULT,
    slime_flags.LOGGING, slime_flags.DEBUG, slime_flags.DISTILLATION, slime_flags.PLUGINS, slime_flags.CI,
    *MEGATRON_GROUPS, SGLANG_GROUP,
]


@lru_cache(maxsize=1)
def all_flags() -> tuple[Flag, ...]:
    """Every flag the parser knows, in the order of GROUP_ORDER."""
    flags = [*slime_flags.SLIME_FLAGS, *MEGATRON_FLAGS, *sglang_flags()]
    unknown_groups = {f.group for f in flags} - set(GROUP_ORDER)
    if unknown_groups:
        raise RuntimeError(f"flags declared in groups missing from GROUP_ORDER: {sorted(unknown_groups)}")
    return tuple(sorted(flags, key=lambda f: GROUP_ORDER.index(f.group)))


@lru_cache(maxsize=1)
def flag_by_option() -> dict[str, Flag]:
    """Each option string (``--lr``, ``--no-offload-train``, …) mapped to its flag."""
    return {name: f for f in all_flags() for name in (*f.names, *f.off_names)}


@lru_cache(maxsize=1)
def flags_by_attr() -> dict[str, Flag]:
    """Each argparse attribute name (``lr``, ``tensor_model_parallel_size``) mapped to its first flag."""
    by_attr: dict[str, Flag] = {}
    for f in all_flags():
        by_attr.setdefault(f.attr, f)
    return by_attr
