"""The command that starts each rollout engine's server: SGLang's ``sglang.launch_server`` on GPUs, the
project's torch engine on CPUs, with the same server arguments.

The arguments are the run's ``--sglang-*`` flags (those that differ from SGLang's default, written
with SGLang's own spelling from the snapshot) plus what slime owns, as upstream slime's engine builds
them (docs/rollout_engines.md, "The server arguments", lists each rule and where slime differs): the
model, the parallel sizes (tensor parallel = the engine's GPUs / --sglang-pp-size), the seed, host and
ports, the first GPU, the engine's nodes and its dist-init address (the first of a block of free
ports: SGLang derives its own ports from it), metrics for the router, memory saving when colocated
(with SGLang's prefill CUDA graph backend off, which the memory saver cannot release), fp16 weights
with --fp16, and the run's API key, which reaches each
server in a file only the run's user can read (SGLang's ``--config FILE``: the key is never on a
command line, in a plan or a log). What is only known once the engines are placed (hosts, ports, GPU
ids, that file) is an ``EngineSlot``; ``placeholder_slot`` names those values for a dry run. Pure
Python: the launch plan imports it without torch, Ray or SGLang.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from slime.arguments.sglang_flags import SLIME_OWNED, load_snapshot

SGLANG_MODULE = "sglang.launch_server"
TORCH_ENGINE_MODULE = "slime.engines.torch_engine"
# The server arguments the torch engine honours; the rest of SGLang's are GPU settings it has no use for.
TORCH_ENGINE_DESTS = ("model_path", "host", "port", "random_seed", "tp_size", "trust_remote_code",
                      "skip_server_warmup", "enable_memory_saver", "config")


@dataclass(frozen=True)
class EngineSlot:
    """Where one node of one engine runs, known once it is placed."""

    engine: int
    node_rank: int  # of the engine's nodes; 0 serves HTTP
    host: str
    port: int
    nccl_port: int
    base_gpu_id: int
    dist_init_addr: str | None = None  # host:port of the engine's node 0 (the first of its block of ports)
    key_file: str | None = None  # the YAML file holding the run's API key (SGLang's --config)


def nodes_per_engine(args: argparse.Namespace) -> int:
    return max(1, -(-args.rollout_num_gpus_per_engine // args.num_gpus_per_node))


def engine_count(args: argparse.Namespace) -> int:
    return (args.rollout_num_gpus or 0) // args.rollout_num_gpus_per_engine


def engine_tp_size(args: argparse.Namespace) -> int:
    """SGLang's tensor-parallel size: the engine's GPUs over its pipeline stages (validation requires
    the pipeline-parallel size to divide them)."""
    return args.rollout_num_gpus_per_engine // args.sglang_pp_size


def engine_seed(args: argparse.Namespace, engine: int) -> int:
    """The engine's ``--random-seed``: --seed plus the index upstream's engine actor of the engine's first
    node has (one actor per node, so engine e of n-node engines is actor e·n). Every node of an engine
    gets that one seed (upstream gives node k of it seed + e·n + k)."""
    return args.seed + engine * nodes_per_engine(args)


def dist_init_block(args: argparse.Namespace) -> int:
    """The free ports reserved from an engine's dist-init port on, as upstream slime does: SGLang derives
    its ZMQ ports from that port (port + 1 … port + 6, and one per data-parallel rank)."""
    return 30 + args.sglang_dp_size


def placeholder_slot(engine: int, node_rank: int, spans_nodes: bool) -> EngineSlot:
    name = f"ENGINE{engine}"
    return EngineSlot(engine, node_rank, f"{{{name}_NODE{node_rank}_HOST}}" if spans_nodes else f"{{{name}_HOST}}",
                      f"{{{name}_PORT}}", f"{{{name}_NCCL_PORT}}", f"{{{name}_BASE_GPU_ID}}",  # type: ignore[arg-type]
                      f"{{{name}_NODE0_HOST}}:{{{name}_DIST_INIT_PORT}}" if spans_nodes else
                      f"{{{name}_HOST}}:{{{name}_DIST_INIT_PORT}}",
                      f"{{{name}_KEY_FILE}}")


def _entries() -> dict[str, dict]:
    return {entry["dest"]: entry for entry in load_snapshot()["flags"]}


def server_args(args: argparse.Namespace, slot: EngineSlot) -> dict:
    """SGLang ``ServerArgs`` fields (by dest) for one node of one engine: the ``--sglang-*`` values that
    differ from SGLang's defaults, then what slime sets itself."""
    entries = _entries()
    values = {}
    for dest, entry in entries.items():
        attr = "sglang_" + dest
        # SLIME_OWNED settings are slime's below (--sglang-config is slime's own deployments file).
        if dest not in SLIME_OWNED and hasattr(args, attr) and getattr(args, attr) != entry["default"]:
            values[dest] = getattr(args, attr)
    nnodes = nodes_per_engine(args)
    values.update({
        "model_path": args.hf_checkpoint,
        "tp_size": engine_tp_size(args),
        "random_seed": engine_seed(args, slot.engine),
        "host": slot.host,
        "port": slot.port,
        "nccl_port": slot.nccl_port,
        "base_gpu_id": slot.base_gpu_id,
        "skip_server_warmup": True,
        "enable_metrics": True,  # the router's /engine_metrics
    })
    if nnodes > 1:
        values.update({"nnodes": nnodes, "node_rank": slot.node_rank})
    if slot.dist_init_addr:
        values["dist_init_addr"] = slot.dist_init_addr
    if args.offload_rollout:
        values["enable_memory_saver"] = True
        if "cuda_graph_backend_prefill" in entries and values.get("cuda_graph_backend_prefill") is None:
            # SGLang's default prefill backend (breakable) refuses to run under the memory saver
            values["cuda_graph_backend_prefill"] = "disabled"
    if args.fp16 and "dtype" not in values:
        values["dtype"] = "float16"  # the engines generate in the precision the trainer trains in
    if values.get("speculative_algorithm"):
        values["enable_draft_weights_cpu_backup"] = True  # the draft model's weights survive a release
    if slot.key_file:
        values["config"] = slot.key_file
    return {dest: value for dest, value in values.items() if dest in entries}


def _render(entry: dict, value) -> list[str]:
    option = next(o for o in entry["options"] if not o.startswith("--no-"))
    action = entry["action"]
    if action in ("store_true", "store_false"):
        return [option] if value != entry["default"] else []
    if action == "store_const":
        return [option, entry["choices"][0]] if entry["choices"] and value == entry["const"] else \
            ([option] if value == entry["const"] else [])
    if action == "boolean_optional":
        off = next((o for o in entry["options"] if o.startswith("--no-")), None)
        return [option] if value else ([off] if off else [])
    if entry["type"] in ("loads", "json_list_type", "parse_cuda_graph_config_arg") and not isinstance(value, str):
        return [option, json.dumps(value)]
    if isinstance(value, (list, tuple)):
        return [option, *(json.dumps(v) if isinstance(v, dict) else str(v) for v in value)]
    return [option, str(value)]


def render_server_args(values: dict) -> list[str]:
    """``values`` as SGLang command-line flags, in SGLang's own spelling."""
    entries = _entries()
    return [token for dest, value in values.items() for token in _render(entries[dest], value)]


def server_command(args: argparse.Namespace, slot: EngineSlot, python: str = "python3") -> list[str]:
    """The command line that starts one node of one engine for ``--rollout-backend``."""
    values = server_args(args, slot)
    if args.rollout_backend == "torch":
        return [python, "-m", TORCH_ENGINE_MODULE,
                *render_server_args({k: v for k, v in values.items() if k in TORCH_ENGINE_DESTS})]
    return [python, "-m", SGLANG_MODULE, *render_server_args(values)]


def planned_commands(args: argparse.Namespace) -> list[dict]:
    """Every engine's server command (each node of an engine that spans several), placeholders for
    what is known at run time: ``{"engine", "node", "command"}``."""
    nnodes = nodes_per_engine(args)
    return [{"engine": engine, "node": node, "command": server_command(args, placeholder_slot(engine, node, nnodes > 1))}
            for engine in range(engine_count(args)) for node in range(nnodes)]


def display_command(command: list[str]) -> str:
    """A command as a person pastes it: shell-quoted, run-time placeholders left as they are."""
    import re
    import shlex

    return " ".join(word if re.fullmatch(r"[\w@%+=:,./{}-]+", word) else shlex.quote(word) for word in command)


def config_key(dest: str) -> str:
    """The flag a person sets for SGLang's ``dest`` (slime's own flag for what slime owns)."""
    if dest in SLIME_OWNED:
        return SLIME_OWNED[dest] or f"(set by slime: {dest})"
    return "--sglang-" + dest.replace("_", "-")
