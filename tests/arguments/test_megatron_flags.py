"""Each Megatron flag in the registry feeds a megatron-core field that exists and takes its type,
or names the training-loop setting it controls. Runs where megatron-core is installed (CI installs it)."""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import typing
import warnings

import pytest

from slime.arguments.flags import MEGATRON, NEGATABLE, SWITCH, Flag
from slime.arguments.registry import all_flags
from tests.helpers.stack import require_module

TARGETS = {
    "TransformerConfig": "megatron.core.transformer.transformer_config",
    "MLATransformerConfig": "megatron.core.transformer.transformer_config",
    "ModelParallelConfig": "megatron.core.model_parallel_config",
    "OptimizerConfig": "megatron.core.optimizer.optimizer_config",
    "DistributedDataParallelConfig": "megatron.core.distributed.distributed_data_parallel_config",
    "OptimizerParamScheduler": "megatron.core.optimizer_param_scheduler",
    "GPTModel": "megatron.core.models.gpt.gpt_model",
}
MEGATRON_FLAGS = [f for f in all_flags() if f.owner == MEGATRON]


def _annotation(owner: str, name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cls = getattr(importlib.import_module(TARGETS[owner]), owner)
    if dataclasses.is_dataclass(cls):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        assert name in fields, f"{owner} has no field {name}"
        try:
            return typing.get_type_hints(cls)[name]
        except Exception:  # forward references megatron-core leaves unresolved
            return fields[name].type
    parameters = inspect.signature(cls.__init__).parameters
    assert name in parameters, f"{owner}.__init__ takes no {name}"
    annotation = parameters[name].annotation
    default = parameters[name].default
    if annotation is inspect.Parameter.empty and default is not inspect.Parameter.empty and default is not None:
        return type(default)
    return annotation


def _members(annotation) -> set:
    """The plain types, Literal values and enum classes an annotation admits."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return set().union(*(_members(a) for a in typing.get_args(annotation)))
    if origin is typing.Literal:
        return {("literal", v) for v in typing.get_args(annotation)}
    if origin in (list, typing.List):
        return {list}
    return {annotation}


def _accepts(annotation, f: Flag) -> bool:
    if annotation is inspect.Parameter.empty or isinstance(annotation, str):
        return True  # unannotated parameter or unresolved forward reference: nothing to compare
    members = _members(annotation)
    if f.kind in (SWITCH, NEGATABLE):
        return bool in members
    if f.is_list or getattr(f.type, "__name__", "") == "moe_freq_type":
        return list in members
    if f.choices:
        literals = {v for kind, v in (m for m in members if isinstance(m, tuple))}
        enums = [m for m in members if isinstance(m, type) and issubclass(m, enum.Enum)]
        names = {member.name for e in enums for member in e}
        dtypes = any(getattr(m, "__name__", "") == "dtype" for m in members)  # Megatron-LM maps "fp32" etc. to dtypes
        return set(f.choices) <= literals | names or (not literals and not enums and (str in members or dtypes))
    wanted = {int: {int, float}, float: {float}, str: {str}}.get(f.type or str, {f.type})
    return bool(wanted & members)


def test_every_megatron_flag_feeds_a_field_or_names_what_it_controls():
    assert MEGATRON_FLAGS
    missing = [f.name for f in MEGATRON_FLAGS if not (f.feeds or f.controls)]
    assert missing == []


@pytest.mark.parametrize("f", [f for f in MEGATRON_FLAGS if f.feeds], ids=lambda f: f.name)
def test_flag_feeds_an_existing_field_of_its_type(f: Flag):
    require_module("megatron.core")
    owner, name = f.feeds.split(".")
    annotation = _annotation(owner, name)
    assert _accepts(annotation, f), f"{f.name} ({f.type_name}{', choices ' + str(f.choices) if f.choices else ''}) " \
                                    f"cannot feed {f.feeds}: {annotation}"


@pytest.mark.parametrize("model,config,expected", [
    # a model file of a mapped family whose checkpoint folder holds another model (the light check cannot
    # see that; it refuses the model files of unmapped families themselves: tests/config/test_checkpoint_names.py)
    ("qwen3-4B", {"model_type": "glm4_moe"}, "HF model_type 'glm4_moe' has no HF ↔ megatron weight mapping"),
    ("deepseek-v3", {"model_type": "kimi_k2"}, "HF model_type 'kimi_k2' has no HF ↔ megatron weight mapping"),
    ("qwen3-4B", {"model_type": "qwen3", "quantization_config": {"quant_method": "awq", "bits": 4}},
     "quantization_config (quant_method 'awq', bits 4) is a quantization the megatron backend cannot read"),
], ids=["glm4_moe", "kimi_k2", "awq"])
def test_the_deep_check_names_a_checkpoint_the_megatron_backend_cannot_read(tmp_path, model, config, expected):
    """The light check (the parser) cannot see the checkpoint; the deep check reads its config.json and
    names what the backend would stop at: the file, the config key of the checkpoint and the model file."""
    import json

    require_module("megatron.core")
    require_module("sglang")
    from slime.config.compose import generate_config, hydra_context
    from slime.launch.deep_check import deep_check

    (tmp_path / "config.json").write_text(json.dumps(config))
    with warnings.catch_warnings(), hydra_context():
        warnings.simplefilter("ignore")
        generate_config("run_qwen3_4B", [f"model={model}"])  # the light check passes
        report = deep_check("run_qwen3_4B", [f"model={model}"], hf_config=str(tmp_path))
    named = [problem for problem in report.problems if expected in problem]
    assert len(named) == 1, report.problems
    assert str(tmp_path / "config.json") in named[0] and "ckpt.hf_checkpoint" in named[0]
    if "model_type" in expected:
        assert f"conf/model/{model}.yaml" in named[0]
