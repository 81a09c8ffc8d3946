"""megatron-core's own checks of a run, as problems that name the flags involved.

``megatron_problems(args)`` builds, with this backend's own code (``config.py``, ``model.py``),
every config object a megatron role builds: the transformer config (the MLA one with
--multi-latent-attention), the layer spec, the optimizer config and the DDP config, per role. Their
constructors run megatron-core's ``__post_init__`` checks, which stop at the first failure, so
there is at most one problem per object; every object is still built, so all of them are reported
together. A run written for GPUs is built as slime trains it there (bf16, the distributed
optimizer); a machine without transformer-engine skips only the checks that ask whether
transformer-engine is installed (``checking=True``).

Each problem names the flags behind it: the config fields megatron's message mentions, and those in
the condition that failed (read from megatron's source at the failing line), mapped back through the
registry's ``feeds``.
"""

from __future__ import annotations

import argparse
import linecache
import re
import traceback
from pathlib import Path

from slime.backends.megatron import config as megatron_config
from slime.arguments.megatron_flags import MEGATRON_FLAGS
from slime.arguments.problems import Problem
from slime.arguments.role_overrides import role_args

MEGATRON_CORE = f"{Path('megatron') / 'core'}"
_SELF_FIELD = re.compile(r"\bself\.(\w+)")
_OPTION = re.compile(r"(?<![\w-])--[a-z][\w-]*")
# config fields slime sets itself (not from a flag), and why
SET_BY_SLIME = {
    "variable_seq_lengths": "set by slime for pipeline parallelism",
    "calculate_per_token_loss": "set by slime (losses normalised by the step's token count)",
    "params_dtype": "--bf16/--fp16 (bf16 on GPUs unless --fp16)",
    "bf16": "--bf16 (on GPUs unless --fp16)",
    "use_distributed_optimizer": "--use-distributed-optimizer (on GPUs for Adam)",
}


def _options_by_field(owners: tuple[str, ...]) -> dict[str, list[str]]:
    by_field: dict[str, list[str]] = {}
    for flag in MEGATRON_FLAGS:
        if flag.feeds and flag.feeds.split(".", 1)[0] in owners:
            by_field.setdefault(flag.feeds.split(".", 1)[1], []).append(flag.name)
    return by_field


def _header(lines: list[str], start: int, end: int) -> str:
    """The ``if``/``elif`` header that starts at line ``start``, up to its colon."""
    header = []
    for line in lines[start:end]:
        header.append(line)
        if line.rstrip().endswith(":"):
            break
    return "".join(header)


def _failing_condition(err: BaseException, levels: int = 2) -> str:
    """The source of the check that raised inside megatron-core: the ``assert`` statement, or the
    ``if`` (``elif``) whose body raised, with the ``if`` around that one (``if moe_router_group_topk:
    if not moe_router_num_groups: raise``)."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if MEGATRON_CORE in f.filename]
    if not frames:
        return ""
    frame = frames[-1]
    lines = linecache.getlines(frame.filename)
    index = frame.lineno - 1
    if index >= len(lines):
        return ""
    start = lines[index]
    if start.lstrip().startswith("assert"):
        return "".join(lines[index:index + 8])
    indent, found = len(start) - len(start.lstrip()), []
    for i in range(index - 1, max(index - 60, -1), -1):
        text = lines[i]
        stripped = text.lstrip()
        if not stripped or len(text) - len(stripped) >= indent:
            continue
        if stripped.startswith(("def ", "class ")):
            break
        if not stripped.startswith(("if ", "elif ", "if(")):
            continue  # a multi-line condition's closing bracket, an else:
        found.append(_header(lines, i, index))
        indent = len(text) - len(stripped)
        if len(found) == levels:
            break
    return "".join(found)

def flags_of(err: BaseException, owners: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(options, notes): the flags behind a megatron-core error, and the fields slime sets itself."""
    by_field = _options_by_field(owners)
    text = f"{err}\n{_failing_condition(err)}"
    fields = set(_SELF_FIELD.findall(text)) | {word for word in re.findall(r"\b\w+\b", str(err)) if word in by_field}
    options = [option for field in sorted(fields) for option in by_field.get(field, [])]
    options += [option for option in _OPTION.findall(str(err)) if option not in options]
    notes = [f"{field}: {SET_BY_SLIME[field]}" for field in sorted(fields) if field in SET_BY_SLIME]
    return list(dict.fromkeys(options)), notes


def _described(err: BaseException) -> str:
    message = str(err).strip() or _failing_condition(err).strip() or type(err).__name__
    return " ".join(message.split())


def _build(name: str, owners: tuple[str, ...], build, problems: list[Problem], role: str):
    try:
        return build()
    except Exception as err:  # megatron-core's checks raise ValueError, AssertionError, NotImplementedError, …
        options, notes = flags_of(err, owners)
        who = f" ({role})" if role != "actor" else ""
        extra = f" ({'; '.join(notes)})" if notes else ""
        problems.append(Problem(f"megatron-core's {name}{who} says: {_described(err)}{extra}", tuple(options)))
        return None


def _spec_args(args: argparse.Namespace) -> argparse.Namespace:
    """Without transformer-engine installed, the layer spec is built on megatron's local modules:
    the same layer structure, checked the same way."""
    if args.transformer_impl == "transformer_engine" and not megatron_config._have_transformer_engine():
        args = argparse.Namespace(**vars(args))
        args.transformer_impl = "local"
    return args


def megatron_problems(args: argparse.Namespace, gpu: bool) -> tuple[list[Problem], list[str]]:
    """(problems, what was built) for every megatron role of the run; ``gpu``: the run is written for
    GPUs, so its configs are built as slime trains there."""
    from slime.backends.megatron.model import layer_spec

    problems: list[Problem] = []
    built: list[str] = []
    roles = ["actor"] + (["critic"] if args.use_critic else [])
    transformer_owners = megatron_config.TRANSFORMER_OWNERS + ("MLATransformerConfig",)
    for role in roles:
        a = megatron_config.with_slime_defaults(role_args(args, role), gpu=gpu)
        transformer = _build("MLATransformerConfig" if a.multi_latent_attention else "TransformerConfig",
                             transformer_owners, lambda: megatron_config.transformer_config(a, checking=True),
                             problems, role)
        for stage in range(a.pipeline_model_parallel_size if transformer is not None else 0):
            name = "layer spec" + (f" of pipeline stage {stage}" if a.pipeline_model_parallel_size > 1 else "")
            if _build(name, transformer_owners, lambda: layer_spec(_spec_args(a), transformer, pp_rank=stage),
                      problems, role) is None:
                break
        _build("OptimizerConfig", ("OptimizerConfig",), lambda: megatron_config.optimizer_config(a, checking=True),
               problems, role)
        _build("DistributedDataParallelConfig", ("DistributedDataParallelConfig",),
               lambda: megatron_config.ddp_config(a), problems, role)
        if role == "actor":
            built = [type(transformer).__name__ if transformer is not None else "TransformerConfig", "layer spec",
                     "OptimizerConfig", "DistributedDataParallelConfig"]
    if not gpu:
        problems += [Problem(message, tuple(flags)) for message, flags in megatron_config.unsupported_here(args)]
    return problems, built
