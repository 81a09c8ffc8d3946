"""SGLang's server flags, re-registered with the ``--sglang-`` prefix from a checked-in snapshot.

The snapshot (``sglang_server_args.json``) records the structure of every flag of SGLang's own
``ServerArgs.add_cli_args`` for the SGLang version the project pins: option strings, action,
type, nargs, default, choices. Parsing reads the snapshot and never imports SGLang, so the
generator on a laptop and the trainer on a cluster accept exactly the same flags.
``tools/snapshot_sglang_args.py`` regenerates it from the installed SGLang, and a test fails
when the two disagree. Where a cluster runs an SGLang other than the pinned one, setting
``SLIME_SGLANG_FLAGS=installed`` registers the flags from the installed ``ServerArgs`` instead
(importing SGLang, and giving up the parity between laptop and cluster).

Settings slime decides itself (model path, tensor-parallel size, ports, …) are not
re-registered; ``SLIME_OWNED`` says which slime flag sets each of them instead.
"""

from __future__ import annotations

import argparse
import json
import os
from functools import lru_cache
from pathlib import Path

from slime.arguments import arg_types
from slime.arguments.flags import CONST, NEGATABLE, SGLANG, SWITCH, VALUE, Flag

SNAPSHOT_PATH = Path(__file__).with_name("sglang_server_args.json")
PREFIX = "--sglang-"
GROUP = "SGLang server (SGLang's own flags, prefixed --sglang-)"

# SGLang settings slime sets itself, by SGLang dest, with the slime flag that controls each.
SLIME_OWNED = {
    "model_path": "--hf-checkpoint",
    "tokenizer_path": "--hf-checkpoint",
    "tp_size": "--rollout-num-gpus-per-engine",
    "random_seed": "--seed",
    "enable_memory_saver": "--offload-rollout",
    "config": "--sglang-config",
    "api_key": None,  # a secret the trainer makes for each run (slime.rollout.client.EngineKey)
    "host": None,
    "port": None,
    "nccl_port": None,
    "nnodes": None,
    "node_rank": None,
    "dist_init_addr": None,
    "base_gpu_id": None,
    "gpu_id_step": None,
    "skip_server_warmup": None,
    "help": None,
}

# Spellings that earlier SGLang releases accepted as deprecated aliases and the pinned release
# dropped; real launch scripts still use them. Each maps to the flag SGLang itself named as its
# replacement, so it sets the same attribute.
RENAMED = {
    "--cuda-graph-bs": "--cuda-graph-bs-decode",
    "--cuda-graph-max-bs": "--cuda-graph-max-bs-decode",
    "--mamba-scheduler-strategy": "--mamba-radix-cache-strategy",
    "--nsa-decode-backend": "--dsa-decode-backend",
    "--nsa-prefill-backend": "--dsa-prefill-backend",
}


def lora_path(text: str):
    """A LoRA adapter: ``PATH``, ``NAME=PATH`` or a JSON object with lora_name and lora_path."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        value = arg_types.json_object(text)
        if "lora_name" not in value or "lora_path" not in value:
            raise argparse.ArgumentTypeError(f"a JSON LoRA adapter needs lora_name and lora_path, got {text!r}")
        return value
    return text


# SGLang's type functions, by name, mapped to converters with the same contract.
CONVERTERS = {
    "str": None,
    "int": int,
    "float": float,
    "loads": arg_types.json_value,
    "json_list_type": arg_types.json_list,
    "human_readable_int": arg_types.human_readable_int,
    "nullable_str": arg_types.nullable_str,
    "parse_cuda_graph_config_arg": arg_types.json_object,
    "parse_cuda_graph_backend_arg": None,
    "lora_path": lora_path,
}

# argparse action classes, by name, mapped to a Flag kind.
ACTION_KINDS = {
    "_StoreAction": "store",
    "_StoreTrueAction": "store_true",
    "_StoreFalseAction": "store_false",
    "BooleanOptionalAction": "boolean_optional",
    "DeprecatedStoreTrueAction": "store_true",
    "DeprecatedStoreConstAction": "store_const",
    "LoRAPathAction": "lora_paths",
}


def prefixed(option: str) -> str:
    return PREFIX + option[2:]


def describe_actions(actions: list[argparse.Action]) -> list[dict]:
    """The snapshot entries of SGLang's parser actions (structure only, no help text)."""
    entries, unknown = [], []
    for action in actions:
        kind = ACTION_KINDS.get(type(action).__name__)
        type_name = "lora_path" if kind == "lora_paths" else getattr(action.type, "__name__", "str")
        if action.dest == "help":
            continue
        if kind is None or type_name not in CONVERTERS:
            unknown.append(f"{'/'.join(action.option_strings)}: action {type(action).__name__}, type {type_name}")
            continue
        const = getattr(action, "const_value", action.const) if kind == "store_const" else None
        entries.append({
            "options": list(action.option_strings),
            "dest": action.dest,
            "action": kind,
            "type": type_name,
            "nargs": action.nargs,
            "default": action.default,
            "const": const,
            "choices": _stable_choices(action.choices),
            "deprecated": type(action).__name__.startswith("Deprecated"),
        })
    if unknown:
        raise ValueError("SGLang flags this project cannot mirror yet (add a converter in sglang_flags.py):\n  "
                         + "\n  ".join(unknown))
    return entries


def _stable_choices(choices) -> list | None:
    if choices is None:
        return None
    # Some choices are sets, whose order changes from run to run.
    return sorted(choices, key=str) if isinstance(choices, (set, frozenset)) else list(choices)


def snapshot_from_installed() -> dict:
    """Describe the installed SGLang's ServerArgs; imports SGLang (and torch), so tools and tests only."""
    import sglang
    from sglang.srt.server_args import ServerArgs

    parser = argparse.ArgumentParser(add_help=False)
    ServerArgs.add_cli_args(parser)
    return {"sglang_version": sglang.__version__, "flags": describe_actions(parser._actions)}


@lru_cache(maxsize=1)
def load_snapshot() -> dict:
    return json.loads(SNAPSHOT_PATH.read_text())


def _flag_from_entry(entry: dict) -> Flag:
    options = entry["options"]
    renamed = [old for old, new in RENAMED.items() if new in options]
    on = tuple(prefixed(o) for o in options if not o.startswith("--no-")) + tuple(prefixed(o) for o in renamed)
    note = " Deprecated by SGLang." if entry["deprecated"] else ""
    if renamed:
        note += f" Also accepts the retired spelling {', '.join(prefixed(o) for o in renamed)}."
    fields = {
        "names": on,
        "dest": "sglang_" + entry["dest"],
        "default": entry["default"],
        "group": GROUP,
        "owner": SGLANG,
        "help": f"SGLang {options[0]}.{note}",
    }
    kind = entry["action"]
    if kind in ("store_true", "store_false"):
        return Flag(kind=SWITCH, const=kind == "store_true", **fields)
    if kind == "boolean_optional":
        return Flag(kind=NEGATABLE, off_names=tuple(prefixed(o) for o in options if o.startswith("--no-")), **fields)
    if kind == "store_const":
        return Flag(kind=CONST, const=entry["const"], nargs=entry["nargs"], choices=_tuple(entry["choices"]), **fields)
    nargs = "*" if kind == "lora_paths" else entry["nargs"]
    return Flag(kind=VALUE, type=CONVERTERS[entry["type"]], nargs=nargs, choices=_tuple(entry["choices"]), **fields)


def _tuple(choices):
    return tuple(choices) if choices is not None else None


def sglang_flags(snapshot: dict | None = None) -> list[Flag]:
    """The ``--sglang-`` flags of the snapshot (or of the installed SGLang, when asked), without the
    settings slime owns."""
    if snapshot is None:
        use_installed = os.environ.get("SLIME_SGLANG_FLAGS") == "installed"
        snapshot = snapshot_from_installed() if use_installed else load_snapshot()
    return [_flag_from_entry(e) for e in snapshot["flags"] if e["dest"] not in SLIME_OWNED]


def slime_owned_hint(option: str) -> str | None:
    """For `--sglang-tp-size` and the like: which slime flag sets that SGLang setting instead."""
    if not option.startswith(PREFIX):
        return None
    original = "--" + option[len(PREFIX):].split("=", 1)[0]
    for entry in load_snapshot()["flags"]:
        if original in entry["options"] and entry["dest"] in SLIME_OWNED:
            replacement = SLIME_OWNED[entry["dest"]]
            if replacement:
                return f"slime sets SGLang's {original} itself: use {replacement}"
            return f"slime sets SGLang's {original} itself for every engine; leave it out"
    return None
