"""Every registered flag is read by the code, or refused by name (issue 22, item 7; the upstream-parity
rule: a parsed feature that is not implemented is a validation error, never ignored).

A flag is accounted for in one of these ways:
- its ``unimplemented`` note: any value but its default is a validation error naming the flag (checked
  here for every such flag, and for the routing-replay pair in particular);
- SGLang's flags (``--sglang-*``): every one that differs from SGLang's default reaches the engines'
  ``ServerArgs`` (``slime.engines.command.server_args``), checked flag by flag;
- Megatron flags that feed a megatron-core config object: built from the registry
  (``slime.backends.megatron.config._fed``) for the config classes it builds, or read by name;
- any other flag: read by name (``args.<dest>``, ``a.<dest>``, ``getattr(args, "<dest>")``) by a module of
  ``slime/`` outside the argument machinery and the validation; the few that are not are in
  ``ELSEWHERE`` with the code that consumes them or the rule that refuses them.
"""

from __future__ import annotations

import argparse
import re

import pytest

from slime.arguments.flags import CONST, MEGATRON, NEGATABLE, SGLANG, SWITCH
from slime.arguments.parser import ArgumentProblems, all_flags, parse_args
from slime.arguments.slime_flags import FUNCTION_PATHS
from tests.helpers.command_lines import MINIMAL
from tests.helpers.paths import ROOT

MACHINERY = {f"slime/arguments/{name}.py" for name in ("slime_flags", "megatron_flags", "sglang_flags", "flags",
                                                       "registry", "parser", "validation")}
BUILT_FROM_THE_REGISTRY = ("TransformerConfig", "ModelParallelConfig", "MLATransformerConfig", "OptimizerConfig",
                           "DistributedDataParallelConfig")
SAMPLING = "slime.rollout.sglang_rollout.sampling_params: getattr(args, f'{prefix}_…') for rollout and eval"
# Flags no module reads by name, and what consumes (or refuses) them.
ELSEWHERE = {
    "rollout_top_p": SAMPLING, "rollout_top_k": SAMPLING, "eval_temperature": SAMPLING, "eval_top_p": SAMPLING,
    "eval_top_k": SAMPLING, "eval_max_response_len": SAMPLING,
    "offload": "slime.arguments.validation turns it into --offload-train and --offload-rollout",
    **{f"critic_{key}": f"slime.arguments.role_overrides: the critic's --{key}" for key in ("lr", "load", "save")},
    "add_position_embedding": "validation holds Megatron-LM's rule (with rope only, for which megatron-core builds "
                              "no learned position embedding)",
    "use_gated_attention": "refused by validation: the megatron backend does not build gated attention",
    "auto_detect_ckpt_format": "always on: a checkpoint is told apart from an HF folder by its files "
                               "(slime.backends.megatron.checkpoint.is_torch_dist)",
}
REFUSED_BY_VALIDATION = {"use_gated_attention": "--use-gated-attention: gated attention",
                         "add_position_embedding": "--no-position-embedding needs --position-embedding-type rope",
                         "sglang_enable_return_routed_experts": "read only by routing replay, which is not "
                                                                "implemented"}


def _sources() -> dict[str, str]:
    paths = [*ROOT.glob("slime/**/*.py"), *ROOT.glob("slime_plugins/**/*.py"), ROOT / "train.py",
             ROOT / "train_async.py"]
    return {str(p.relative_to(ROOT)): p.read_text() for p in paths if str(p.relative_to(ROOT)) not in MACHINERY}


READ = re.compile(r"\b(?:a|args|self\.args|namespace)\.(\w+)|getattr\([^,()]+,\s*[\"'](\w+)[\"']")


def names_read(sources: dict[str, str]) -> set[str]:
    """Every attribute the sources read off an argument namespace by name (one pass over each file)."""
    return {attr or by_getattr for text in sources.values() for attr, by_getattr in READ.findall(text)}


def read_by_name(f) -> bool:
    if f.unimplemented or f.owner == SGLANG:
        return False
    return not (f.owner == MEGATRON and f.feeds and f.feeds.split(".")[0] in BUILT_FROM_THE_REGISTRY)


def test_every_flag_is_read_by_the_code_or_accounted_for():
    read = names_read(_sources())
    unread = {f.attr for f in all_flags() if read_by_name(f) and f.attr not in read}
    assert unread == set(ELSEWHERE), "a flag nothing reads: implement it, or refuse it (unimplemented=...)"


def test_the_config_classes_built_from_the_registry_are_the_ones_megatron_builds():
    text = (ROOT / "slime/backends/megatron/config.py").read_text()
    for owner in BUILT_FROM_THE_REGISTRY:
        assert f'"{owner}"' in text, owner


def _non_default_argv(f) -> list[str]:
    """The flag at a value other than its default, as a command line."""
    if f.kind == SWITCH:
        return [f.name]
    if f.kind == NEGATABLE:
        return [f.off_names[0] if f.default else f.name]
    if f.kind == CONST:
        return [f.name]
    if f.choices:
        return [f.name, next(str(c) for c in f.choices if c != f.default and c not in (f.default or []))]
    if f.attr in FUNCTION_PATHS:
        return [f.name, "pkg.module.function"]
    kind = getattr(f.type, "__name__", "str")
    return [f.name, {"int": "7", "float": "0.375", "json_object": '{"a": 1}'}.get(kind, "/some/where")]


@pytest.mark.parametrize("f", [f for f in all_flags() if f.unimplemented], ids=lambda f: f.name)
def test_a_flag_of_a_feature_not_implemented_is_refused_by_name(f):
    with pytest.raises(ArgumentProblems) as caught:
        parse_args([*MINIMAL, *_non_default_argv(f)])
    assert any(str(p).startswith(f.name) and "not implemented" in str(p) for p in caught.value.problems), \
        [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("argv", [["--use-rollout-routing-replay"], ["--use-routing-replay"]])
def test_routing_replay_is_refused_by_name(argv):
    with pytest.raises(ArgumentProblems, match=rf"{argv[0]}: not implemented yet \(MoE routing replay\)"):
        parse_args([*MINIMAL, *argv])


@pytest.mark.parametrize(("argv", "attr"), [
    (["--sglang-enable-return-routed-experts"], "sglang_enable_return_routed_experts"),
    (["--use-gated-attention"], "use_gated_attention"),
    (["--no-position-embedding"], "add_position_embedding"),
])
def test_the_refusals_validation_holds_name_their_flag(argv, attr):
    with pytest.raises(ArgumentProblems, match=re.escape(REFUSED_BY_VALIDATION[attr])):
        parse_args([*MINIMAL, *argv])
    assert parse_args([*MINIMAL, "--no-position-embedding", "--position-embedding-type", "rope"])


def _sglang_value(f):
    if f.kind in (SWITCH, NEGATABLE):
        return not f.default
    if f.kind == CONST:
        return f.const
    if f.choices:
        return next((c for c in f.choices if c != f.default), None)
    kind = getattr(f.type, "__name__", "str")
    value = {"int": 7, "float": 0.375, "human_readable_int": 7}.get(kind, "x")
    if kind in ("json_object", "json_value", "json_list"):
        value = {"json_list": [1]}.get(kind, {"a": 1})
    return [value] if f.is_list else value


def test_every_sglang_flag_reaches_the_engines_server_args():
    from slime.arguments.sglang_flags import PREFIX
    from slime.engines.command import placeholder_slot, server_args

    base = parse_args(MINIMAL)
    slot = placeholder_slot(0, 0, False)
    missing = []
    for f in all_flags():
        if f.owner != SGLANG or f.unimplemented:
            continue
        args = argparse.Namespace(**vars(base))
        setattr(args, f.attr, _sglang_value(f))
        dest = f.attr[len(PREFIX) - 2:]
        if server_args(args, slot).get(dest, "absent") != getattr(args, f.attr):
            missing.append(f.name)
    assert missing == []


def test_the_upstream_flags_that_main_refused_and_this_issue_implements_now_parse_and_run():
    args = parse_args([*MINIMAL, "--disable-rewards-normalization", "--eval-function-path", "my.evals.run"])
    assert args.rewards_normalization is False and args.eval_function_path == "my.evals.run"
