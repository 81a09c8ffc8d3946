"""The deep check of a config: what only megatron-core, SGLang and the checkpoint can say, and memory.

``deep_check("run_qwen3_4B", ["model=qwen3-8B"])`` composes and generates the config (the light
check: the trainer's parser), then

- builds every megatron config object the megatron backend builds, with its own code
  (``slime.backends.megatron.config_check``), as slime trains on the cluster the config is for;
- runs each engine's server command through SGLang's own parser and checks
  (``slime.engines.sglang_check``);
- compares the model flags with the checkpoint's ``config.json`` and tensor names
  (``slime.model.hf_config``) when the checkpoint is reachable (``--hf-checkpoint`` with the shell
  variables of the environment, or a ``config.json`` given);
- estimates memory per GPU (``slime.launch.memory``): a GPU that needs more than the cluster's GPU
  memory (or an engine with no room for its KV cache) fails the check as "over memory", naming the
  role, the figure and the flags that lower it, unless ``allow_over_memory`` (then it is a warning).

Every problem is reported, each in the generator's words: the config keys behind it with their
values and the files that set them. Imports torch, megatron-core and SGLang (the generator and the
parser do not).
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from slime.config.compose import generate_config
from slime.config.generate import Generated, GenerationError
from slime.config.hydra_errors import explain as explain_hydra
from slime.config.shell import SHELL_REF
from slime.utils.hf_checkpoint import read_config, tensor_names
from slime.launch.memory import EIGHT_BIT, GIB, engine_weight_format, memory_plan, on_gpus
from slime.utils.checkout import CONF_DIR

_LEADING_OPTIONS = re.compile(r"^((?:--[\w-]+)(?:, --[\w-]+)*): (.*)$", re.S)


@dataclass
class Report:
    config_name: str
    overrides: list[str]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    over_memory: list[str] = field(default_factory=list)  # GPUs the estimate says cannot hold their share
    allow_over_memory: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems and (not self.over_memory or self.allow_over_memory)

    @property
    def status(self) -> int:
        """The exit status of the check: 2 for a problem of the config, 1 for a run that does not fit, else 0."""
        return 2 if self.problems else 0 if self.ok else 1


def expand_known(value: str | None, environ: Mapping[str, str]) -> str | None:
    """``value`` with the shell variables the environment sets substituted; unset ones stay ``${NAME}``."""
    if value is None:
        return None
    return SHELL_REF.sub(lambda m: environ.get(m.group(1)) or m.group(0), value)


def _megatron(gen: Generated, args: argparse.Namespace, report: Report) -> None:
    from slime.backends.megatron.config_check import megatron_problems

    problems, built = megatron_problems(args, gpu=on_gpus(args))
    report.problems += [gen.explain(p.message, p.flags) for p in problems]
    target = "as slime trains on GPUs (bf16, distributed optimizer)" if on_gpus(args) else "on CPU"
    report.checked.append(f"megatron-core: {', '.join(built)} of each role, {target}")


def _sglang(gen: Generated, args: argparse.Namespace, report: Report) -> None:
    from slime.engines.command import engine_count
    from slime.engines.sglang_check import check_server_args

    problems, notes = check_server_args(args)
    for problem in problems:
        named = _LEADING_OPTIONS.match(problem)
        report.problems.append(gen.explain(named.group(2), tuple(named.group(1).split(", "))) if named else problem)
    # SGLang's deprecation notices are warnings about the config; the rest says what SGLang could not check
    report.warnings += [note for note in notes if "deprecated" in note]
    report.unchecked += [note for note in notes if "deprecated" not in note]
    report.checked.append(f"SGLang: the server arguments of {engine_count(args)} engine(s), by SGLang's own parser")


def _config_json(path: Path) -> Path:
    return path if path.name == "config.json" or path.is_file() else path / "config.json"


def _checkpoint(gen: Generated, args: argparse.Namespace, report: Report, hf_config: str | None) -> None:
    from slime.model.hf_config import FAMILIES, described_mismatches

    source = Path(hf_config) if hf_config else Path(args.hf_checkpoint or "")
    config_file = _config_json(source)
    if "${" in str(source) or not config_file.is_file():
        why = "a shell variable it refers to is unset" if "${" in str(source) else "it is not on this machine"
        report.unchecked.append(f"checkpoint {source}: {why}, so the model flags were not compared with its "
                                "config.json (set the variable, or give --hf-config PATH)")
        return
    config = read_config(config_file.parent)
    if args.train_backend == "megatron":
        _megatron_weights(gen, config, config_file, report)
    _engine_weights(gen, args, config, config_file, report)
    if config.get("model_type") not in FAMILIES:
        report.unchecked.append(f"checkpoint {config_file}: model_type {config.get('model_type')!r} is not mapped "
                                f"(mapped: {', '.join(FAMILIES)}); its config.json was not compared")
        return
    report.problems += [gen.explain(message, flags) for message, flags in described_mismatches(args, config_file.parent)]
    names = "and tensor names " if tensor_names(config_file.parent) is not None else ""
    report.checked.append(f"checkpoint: the model flags against {config_file} {names}({config['model_type']})")


def _engine_weights(gen: Generated, args: argparse.Namespace, config: dict, config_file: Path, report: Report) -> None:
    """SGLang serves a checkpoint's 8-bit weights as they are (DeepSeek-R1's block FP8): the memory estimate
    counts them so only when --sglang-quantization says it."""
    method = (config.get("quantization_config") or {}).get("quant_method")
    if on_gpus(args) and not args.debug_train_only and method in EIGHT_BIT and engine_weight_format(args) == "bf16":
        report.warnings.append(gen.explain(
            f"{config_file} holds {method} weights, which SGLang serves as they are: set --sglang-quantization {method} "
            "so that the memory estimate counts them at one byte each (it counts them in bf16)", ("--sglang-quantization",)))


def _megatron_weights(gen: Generated, config: dict, config_file: Path, report: Report) -> None:
    """Whether the megatron backend can read the checkpoint's weights: an HF ↔ megatron mapping for its
    model_type, and a quantization it can dequantize (the backend would stop at start otherwise)."""
    from slime.backends.megatron.hf_mapping import family_problem
    from slime.backends.megatron.quantized import block_fp8, quantization_problem

    family = family_problem(config.get("model_type"))
    if family:
        # named by the checkpoint's key and by the model file (its --num-layers, which every model file sets)
        report.problems.append(gen.explain(f"{config_file}: {family}; the megatron backend would stop when it starts: "
                                           "train a model of a mapped family", ("--hf-checkpoint", "--num-layers")))
    quantized = quantization_problem(config, config_file)
    if quantized:
        report.problems.append(gen.explain(quantized, ("--hf-checkpoint",)))
    elif block_fp8(config):
        report.checked.append(f"checkpoint: block-wise FP8 weights ({config_file}), read dequantized to full precision")


def _memory(gen: Generated, args: argparse.Namespace, report: Report) -> None:
    if not on_gpus(args):
        report.unchecked.append("memory: a CPU run (the torch engine), so no GPU memory estimate")
        return
    memory = memory_plan(args)
    if memory["unknown"]:
        report.unchecked.append(f"memory: not estimated, {', '.join(memory['unknown'])} unset")
        return
    report.warnings += memory["warnings"]
    report.over_memory += [gen.explain(over["message"], tuple(over["knobs"])) for over in memory["over"]]
    parts = [f"{role} {max(m['total'] for m in stages) / GIB:.1f} GiB training" for role, stages in memory["train"].items()]
    if memory["engine"] and memory["engine"]["static"]:
        parts.append(f"engines {memory['engine']['static'] / GIB:.1f} GiB")
    peak = max(memory["peak_per_gpu"].values(), default=0)
    report.checked.append(f"memory per GPU (estimated): {', '.join(parts)}; peak {peak / GIB:.1f} of "
                          f"{memory['gpu_memory_gib']:g} GiB (the launch plan shows the parts)")


def import_owners() -> None:
    """Import megatron-core and SGLang up front, so that the time of each config's check is its own."""
    import sglang.srt.server_args  # noqa: F401

    import slime.backends.megatron.config_check  # noqa: F401
    import slime.backends.megatron.model  # noqa: F401
    from megatron.core.models.gpt import gpt_layer_specs  # noqa: F401
    from megatron.core.optimizer import OptimizerConfig  # noqa: F401
    from megatron.core.distributed import DistributedDataParallelConfig  # noqa: F401


def deep_check(config_name: str, overrides: Sequence[str] = (), environ: Mapping[str, str] | None = None,
               hf_config: str | None = None, allow_over_memory: bool = False) -> Report:
    """Every problem of one config that the generator, megatron-core, SGLang and the checkpoint find, and
    the GPUs it would not fit on (a failure too, unless ``allow_over_memory``)."""
    started = time.perf_counter()
    report = Report(config_name, list(overrides), allow_over_memory=allow_over_memory)
    try:
        gen = generate_config(config_name, overrides)
    except GenerationError as err:
        report.problems = list(err.messages)
    except (HydraException, OmegaConfBaseException) as err:  # an override Hydra cannot apply
        report.problems = explain_hydra(str(err), list(overrides), [CONF_DIR]) or [" ".join(str(err).split())]
    else:
        environ = os.environ if environ is None else environ
        args = copy.copy(gen.namespace)
        args.hf_checkpoint = expand_known(args.hf_checkpoint, environ)
        if args.train_backend == "megatron":
            _megatron(gen, args, report)
        if args.rollout_backend == "sglang" and not args.debug_train_only:
            _sglang(gen, args, report)
        _checkpoint(gen, args, report, hf_config)
        _memory(gen, args, report)
    report.seconds = time.perf_counter() - started
    return report


def render(report: Report) -> str:
    """The report as a person reads it: problems first, then warnings, what ran and what did not."""
    where = f" {' '.join(report.overrides)}" if report.overrides else ""
    count = len(report.problems)
    verdicts = [f"{count} problem{'s' if count != 1 else ''}"] if count else []
    if report.over_memory:  # never "passes": allowed, it proceeds, but the figure says it does not fit
        verdicts.append("does not fit in GPU memory " + ("(allowed by --allow-over-memory: exit status 0)"
                                                         if report.allow_over_memory else
                                                         "(--allow-over-memory proceeds anyway)"))
    verdict = ", ".join(verdicts) or "passes the deep check"
    lines = [f"{report.config_name}{where}: {verdict} ({report.seconds:.1f} s)"]
    lines += [f"  - {problem}" for problem in report.problems]
    if report.allow_over_memory:
        lines += [f"  warning: over memory (allowed): {message}" for message in report.over_memory]
    else:
        lines += [f"  - over memory: {message}" for message in report.over_memory]
    lines += [f"  warning: {warning}" for warning in report.warnings]
    lines += [f"  checked: {what}" for what in report.checked]
    lines += [f"  not checked: {what}" for what in report.unchecked]
    return "\n".join(lines)
