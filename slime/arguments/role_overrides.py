"""Role overrides (``--megatron-config-path``): per-role settings applied on top of the command line.

The flag names a YAML file, or holds the list itself inline (a value starting with ``[`` or ``{``,
as ``tools/generate_args.py`` writes it, so an args file needs no file beside it). Either way it is
a list of ``{name, role: actor|critic, overrides: {...}}`` entries (``args``
is accepted as an alias of ``overrides``), either at the top level or under a ``megatron:`` key.
Keys are argparse attribute names (``lr``, ``tensor_model_parallel_size``), values are converted
to the flag's type (``1e-5`` written as a YAML string becomes a float). A role without an entry
inherits the command line. ``num_nodes`` and ``num_gpus_per_node`` are ignored with a warning:
placement stays on the command line. Actor and critic must share one parallel topology.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import warnings
from pathlib import Path

from slime.arguments.flags import CONST, NEGATABLE, SWITCH, Flag
from slime.arguments.problems import ProblemList
from slime.arguments.registry import flags_by_attr

ROLES = ("actor", "critic")
IGNORED_KEYS = ("num_nodes", "num_gpus_per_node")
PLACEMENT_KEYS = (
    "actor_num_nodes", "actor_num_gpus_per_node", "critic_num_nodes", "critic_num_gpus_per_node",
    "rollout_num_gpus", "rollout_num_gpus_per_engine", "colocate", "use_critic", "megatron_config_path",
)
TOPOLOGY_KEYS = (
    "tensor_model_parallel_size", "pipeline_model_parallel_size", "context_parallel_size",
    "expert_model_parallel_size", "expert_tensor_parallel_size", "sequence_parallel",
    "decoder_first_pipeline_num_layers", "decoder_last_pipeline_num_layers",
    "num_layers_per_virtual_pipeline_stage", "num_virtual_stages_per_pipeline_rank",
)


class RoleOverrideWarning(UserWarning):
    """A key in the role-override file that has no effect."""


def convert_value(f: Flag, value):
    """Convert a YAML value to what parsing ``--flag value`` would give; ValueError says what is expected."""
    if value is None:
        return None
    if f.kind in (SWITCH, NEGATABLE):
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if f.kind == CONST:
        return value
    if f.is_list:
        return [_convert_scalar(f, v) for v in (value if isinstance(value, list) else [value])]
    return _convert_scalar(f, value)


def _convert_scalar(f: Flag, value):
    if isinstance(value, (dict, list)):
        if f.type is not None and f.type.__name__.startswith("json"):
            return value
        raise ValueError(f"expected a single {f.type_name}, got {value!r}")
    if isinstance(value, bool):
        raise ValueError(f"expected {f.type_name}, got {value!r}")
    try:
        result = f.type(str(value)) if f.type else str(value)
    except (ValueError, argparse.ArgumentTypeError):
        raise ValueError(f"expected {f.type_name}, got {value!r}") from None
    if f.choices and result not in f.choices:
        raise ValueError(f"expected one of {', '.join(map(str, f.choices))}, got {value!r}")
    return result


def is_inline(value: str) -> bool:
    """Whether a --megatron-config-path value is the overrides themselves rather than a file's path."""
    return value.lstrip().startswith(("[", "{"))


def _entries(path: str, problems: ProblemList) -> list:
    import yaml

    where = "--megatron-config-path (inline)" if is_inline(path) else f"--megatron-config-path {path}"
    try:
        data = yaml.safe_load(path if is_inline(path) else Path(path).read_text())
    except OSError as err:
        problems.add(f"{where}: cannot read the file ({err.strerror})", "--megatron-config-path")
        return []
    except yaml.YAMLError as err:
        problems.add(f"{where}: not valid YAML: {err}", "--megatron-config-path")
        return []
    if isinstance(data, dict) and set(data) == {"megatron"}:
        data = data["megatron"]
    if data is None:
        return []
    if not isinstance(data, list):
        problems.add(f"{where}: expected a list of {{name, role, overrides}} entries (optionally under 'megatron:')",
                     "--megatron-config-path")
        return []
    return data


def load_role_overrides(args: argparse.Namespace, problems: ProblemList) -> tuple[dict[str, dict], list[str]]:
    """Read and check the role file; return ({role: {attr: value}}, ignored "role.key" names)."""
    path = args.megatron_config_path
    by_attr = flags_by_attr()
    overrides: dict[str, dict] = {}
    ignored: list[str] = []
    shown = "(inline)" if is_inline(path) else path
    for index, entry in enumerate(_entries(path, problems)):
        where = f"--megatron-config-path {shown}, entry {index + 1}"
        if not isinstance(entry, dict) or entry.get("role") not in ROLES:
            problems.add(f"{where}: needs role: actor or role: critic", "--megatron-config-path")
            continue
        role = entry["role"]
        where += f" (role {role})"
        unknown_fields = set(entry) - {"name", "role", "overrides", "args"}
        if unknown_fields:
            problems.add(f"{where}: unknown field(s) {', '.join(sorted(unknown_fields))}; "
                         "an entry has name, role and overrides", "--megatron-config-path")
        if "overrides" in entry and "args" in entry:
            problems.add(f"{where}: give overrides or its alias args, not both", "--megatron-config-path")
        if role in overrides:
            problems.add(f"{where}: role {role} appears twice; merge its entries", "--megatron-config-path")
            continue
        values = entry.get("overrides", entry.get("args")) or {}
        if not isinstance(values, dict):
            problems.add(f"{where}: overrides must be a mapping of attribute names to values", "--megatron-config-path")
            continue
        overrides[role] = {}
        for key, value in values.items():
            if key in IGNORED_KEYS:
                ignored.append(f"{role}.{key}")
                warnings.warn(f"{where}: {key} is ignored; placement comes from --{role}-num-nodes and "
                              f"--{role}-num-gpus-per-node", RoleOverrideWarning, stacklevel=2)
                continue
            if key in PLACEMENT_KEYS:
                problems.add(f"{where}: {key} is placement and stays on the command line", "--megatron-config-path")
                continue
            f = by_attr.get(key)
            if f is None:
                close = difflib.get_close_matches(str(key), by_attr, n=1, cutoff=0.6)
                hint = f": did you mean {close[0]}?" if close else " (keys are argparse attribute names, e.g. lr)"
                problems.add(f"{where}: unknown key {key}{hint}", "--megatron-config-path")
                continue
            try:
                overrides[role][key] = convert_value(f, value)
            except ValueError as err:
                problems.add(f"{where}: {key}: {err}", "--megatron-config-path")
    if "critic" in overrides and not args.use_critic:
        problems.add(f"--megatron-config-path {shown} overrides the critic, but no critic is trained (--use-critic)",
                     "--megatron-config-path", "--use-critic")
    for key in TOPOLOGY_KEYS:
        actor = overrides.get("actor", {}).get(key, getattr(args, key))
        critic = overrides.get("critic", {}).get(key, getattr(args, key))
        if args.use_critic and actor != critic:
            problems.add(f"--megatron-config-path {shown}: {key} is {actor} for the actor but {critic} for the critic; "
                         "actor and critic must share one parallel topology: keep it on the command line",
                         "--megatron-config-path", "--" + key.replace("_", "-"))
    return overrides, ignored


def role_args(args: argparse.Namespace, role: str) -> argparse.Namespace:
    """The Namespace one role trains with: the command line, the critic's own --critic-lr/--critic-load/
    --critic-save for the critic, then that role's overrides from the file."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    result = copy.deepcopy(args)
    if role == "critic":
        for key, critic_key in (("lr", "critic_lr"), ("load", "critic_load"), ("save", "critic_save")):
            if getattr(args, critic_key, None) is not None:
                setattr(result, key, getattr(args, critic_key))
            elif key != "lr" and getattr(args, key, None):
                # the critic's checkpoints live beside the actor's, not over them
                setattr(result, key, str(Path(getattr(args, key)) / "critic"))
    for key, value in getattr(args, "role_overrides", {}).get(role, {}).items():
        setattr(result, key, value)
    return result
