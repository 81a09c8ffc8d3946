"""Each engine's server command: every --sglang-* flag of every primary config reaches it in SGLang's
own spelling with its values, slime adds what it owns, the dry runs (train.py and the launcher) print
it with named placeholders for what is only known at run time, and SGLang's own parser accepts it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from slime.arguments.flags import SGLANG
from slime.arguments.parser import looks_like_option
from slime.arguments.registry import flag_by_option
from slime.arguments.sglang_flags import load_snapshot
from slime.config.compose import generate_config, namespace_from_config, primary_configs
from slime.engines.command import engine_count, planned_commands, server_command
from tests.helpers.paths import ROOT
from tests.helpers.stack import require_module

ENV = {"BASE_FOLDER": "/models"}


class _EveryVariable(dict):
    """BASE_FOLDER=/models, and a folder named after any other variable a config refers to."""

    def get(self, name, default=None):
        return ENV.get(name, f"/{name.lower()}")


def _namespace(config: str):
    return namespace_from_config(config, [], environ=_EveryVariable())


def _sglang_flags_of(argv: list[str]) -> dict[str, list[str]]:
    """The SGLang server flags on a generated command line, with the words that follow each."""
    flags, current = {}, None
    for token in argv:
        if looks_like_option(token):
            flag = flag_by_option().get(token.split("=", 1)[0])
            current = token if flag is not None and flag.owner == SGLANG else None
            if current:
                flags[current] = []
        elif current:
            flags[current].append(token)
    return flags


def _sglang_option(slime_option: str) -> str:
    """SGLang's own spelling of a --sglang- flag (its first option for the same setting)."""
    dest = flag_by_option()[slime_option].dest.removeprefix("sglang_")
    entry = next(e for e in load_snapshot()["flags"] if e["dest"] == dest)
    return next(o for o in entry["options"] if not o.startswith("--no-"))


@pytest.mark.parametrize("config", primary_configs())
def test_every_sglang_flag_of_the_config_reaches_each_engines_command(config):
    args = _namespace(config)
    flags = _sglang_flags_of(generate_config(config).argv)
    commands = [server["command"] for server in planned_commands(args)]
    assert len(commands) == engine_count(args) * max(1, -(-args.rollout_num_gpus_per_engine // args.num_gpus_per_node))
    for command in commands:
        for option, values in flags.items():
            spelled = _sglang_option(option)
            assert spelled in command, f"{config}: {option} does not reach {command}"
            at = command.index(spelled) + 1
            assert command[at:at + len(values)] == values, f"{config}: {option} {values}"


def test_slime_sets_what_it_owns():
    args = _namespace("run_qwen3_235B_A22B")
    command = planned_commands(args)[1]["command"]  # engine 0, its second node
    text = " ".join(command)
    assert command[:3] == ["python3", "-m", "sglang.launch_server"]
    assert "--model-path /models/Qwen3-235B-A22B --tp-size 32 --random-seed 1234" in text
    assert "--nnodes 4 --node-rank 1 --dist-init-addr {ENGINE0_NODE0_HOST}:{ENGINE0_DIST_INIT_PORT}" in text
    assert "--host {ENGINE0_NODE1_HOST} --port {ENGINE0_PORT} --nccl-port {ENGINE0_NCCL_PORT}" in text
    assert "--enable-memory-saver" in text  # colocated: memory is released while training
    assert text.endswith("--config {ENGINE0_KEY_FILE}")  # the run's API key, in a file


# Upstream slime's engine (slime/backends/sglang_utils/sglang_engine.py, _compute_server_args), written
# down as rules, not as its code: what its ServerArgs holds for the engine actor of global rank ``rank``
# (one actor per node of an engine). Upstream versions differ in three places, each noted.
def _upstream_server_args(args, rank: int) -> dict:
    gpus = args.rollout_num_gpus_per_engine
    nnodes = max(1, gpus // args.num_gpus_per_node)
    values = {
        "model_path": args.hf_checkpoint,
        "trust_remote_code": True,
        "random_seed": args.seed + rank,  # one copy has args.seed + rank × --num-gpus-per-node
        "enable_memory_saver": bool(args.offload_rollout),
        "nnodes": nnodes,
        "node_rank": rank % nnodes,
        "tp_size": gpus // args.sglang_pp_size,
        "dp_size": args.sglang_dp_size,
        "pp_size": args.sglang_pp_size,
        "ep_size": args.sglang_ep_size,
        "skip_server_warmup": True,
        "enable_draft_weights_cpu_backup": True,  # the newest copy: only with a draft model
        "enable_metrics": True,  # the later copies
    }
    if args.fp16:
        values["dtype"] = "float16"
    if args.use_rollout_routing_replay:  # refused by slime's parser: not implemented (no routing replay)
        values["enable_return_routed_experts"] = True
    for entry in load_snapshot()["flags"]:  # every --sglang-<field> not set above
        values.setdefault(entry["dest"], getattr(args, "sglang_" + entry["dest"], entry["default"]))
    if values["enable_memory_saver"] and values["cuda_graph_backend_prefill"] is None:  # the later copies
        values["cuda_graph_backend_prefill"] = "disabled"
    return values


# Where slime differs on purpose (docs/rollout_engines.md, "Where slime differs from upstream").
DELIBERATE = {
    "trust_remote_code": "a checkpoint's own code runs only with --sglang-trust-remote-code (issue 20)",
    "enable_draft_weights_cpu_backup": "set only with a draft model (--sglang-speculative-algorithm), as upstream's "
                                       "newest copy does",
}
RUN_TIME = ("host", "port", "nccl_port", "base_gpu_id", "dist_init_addr", "config", "api_key", "gpu_id_step")


def _ours(args, engine: int, node: int) -> dict:
    """Every ServerArgs field SGLang gets for one node of one engine: SGLang's defaults, then slime's values."""
    from slime.engines.command import placeholder_slot, server_args

    values = {entry["dest"]: entry["default"] for entry in load_snapshot()["flags"]}
    values.update(server_args(args, placeholder_slot(engine, node, args.rollout_num_gpus_per_engine
                                                     > args.num_gpus_per_node)))
    return values


@pytest.mark.parametrize("config, overrides, engines, nodes", [
    ("run_qwen3_4B", [], 4, 1),  # colocated: the memory saver, with the prefill CUDA graph off
    ("run_qwen3_235B_A22B", [], 2, 4),  # engines of 4 nodes, DP attention 4, EP 32
    ("run_qwen3_4B", ["+sglang.sglang_pp_size=2"], 4, 1),  # 2 GPUs per engine: TP 1 × PP 2
    ("run_qwen3_30B_A3B", ["+perf.fp16=true"], 1, 1),  # fp16 training, fp16 engines
])
def test_the_engines_get_the_server_arguments_upstreams_construction_gives(config, overrides, engines, nodes):
    args = namespace_from_config(config, overrides, environ=_EveryVariable())
    assert engine_count(args) == engines
    for engine in range(engines):
        for node in range(nodes):
            ours, upstream = _ours(args, engine, node), _upstream_server_args(args, engine * nodes + node)
            differ = {dest: (ours[dest], upstream[dest]) for dest in upstream
                      if dest not in RUN_TIME and dest not in DELIBERATE and ours[dest] != upstream[dest]}
            if node:  # one seed per engine: the node-0 actor's (docs/rollout_engines.md)
                assert differ.pop("random_seed") == (args.seed + engine * nodes, args.seed + engine * nodes + node)
            assert differ == {}, f"{config} engine {engine} node {node}"
            assert ours["dist_init_addr"]  # every engine: the first of its block of free ports
    first = _ours(args, 0, 0)
    assert (first["tp_size"], first["pp_size"]) == ((1, 2) if "pp_size=2" in str(overrides) else (first["tp_size"], 1))
    assert first["enable_memory_saver"] is True and first["cuda_graph_backend_prefill"] == "disabled"


def test_pp_2_on_2_gpu_engines_is_tp_1_and_the_validation_wants_pp_to_divide_the_gpus():
    args = namespace_from_config("run_qwen3_4B", ["+sglang.sglang_pp_size=2"], environ=ENV)
    command = " ".join(planned_commands(args)[0]["command"])
    assert "--pp-size 2" in command and "--tp-size 1 " in command
    from slime.config.generate import GenerationError

    with pytest.raises(GenerationError) as err:
        generate_config("run_qwen3_4B", ["+sglang.sglang_pp_size=3"])
    assert "--sglang-pp-size 3 must divide --rollout-num-gpus-per-engine 2" in str(err.value)


def test_a_users_own_prefill_backend_and_dtype_stay_and_fp16_sets_the_engines_dtype():
    from slime.engines.command import placeholder_slot, server_args

    own = namespace_from_config("run_qwen3_4B", ["+sglang.sglang_cuda_graph_backend_prefill=full",
                                                 "+sglang.sglang_dtype=bfloat16", "+perf.fp16=true"],
                                environ=ENV)
    values = server_args(own, placeholder_slot(0, 0, False))
    assert (values["cuda_graph_backend_prefill"], values["dtype"]) == ("full", "bfloat16")
    split = namespace_from_config("run_qwen3_4B", ["cluster.colocate=false", "+cluster.rollout_num_gpus=8",
                                                   "+perf.fp16=true"], environ=ENV)
    values = server_args(split, placeholder_slot(0, 0, False))
    assert "enable_memory_saver" not in values and "cuda_graph_backend_prefill" not in values
    assert values["dtype"] == "float16"


def test_slimes_own_sglang_config_file_is_not_sglangs_config():
    args = _namespace("run_qwen3_4B")
    args.sglang_config = "/deployments.yaml"  # slime's --sglang-config: engine groups, not SGLang's --config
    command = planned_commands(args)[0]["command"]
    assert "/deployments.yaml" not in command and command[command.index("--config") + 1] == "{ENGINE0_KEY_FILE}"


def _dry_run(*argv: str) -> str:
    result = subprocess.run([sys.executable, "train.py", *argv, "--dry-run"], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, **ENV}, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_train_dry_run_prints_each_engines_server_command_for_qwen3_4B():
    plan = _dry_run("--config-name", "run_qwen3_4B")
    assert "4 SGLang engine(s) × 2 GPU(s); SGLang's router, started by slime; weights pushed by tensor" in plan
    expected = ("python3 -m sglang.launch_server --mem-fraction-static 0.7 --model-path /models/Qwen3-4B "
                "--tp-size 2 --random-seed {seed} --host {{ENGINE{i}_HOST}} "
                "--port {{ENGINE{i}_PORT}} --nccl-port {{ENGINE{i}_NCCL_PORT}} --base-gpu-id {{ENGINE{i}_BASE_GPU_ID}} "
                "--skip-server-warmup --enable-metrics --dist-init-addr {{ENGINE{i}_HOST}}:{{ENGINE{i}_DIST_INIT_PORT}} "
                "--enable-memory-saver --cuda-graph-backend-prefill disabled --config {{ENGINE{i}_KEY_FILE}}")
    for i in range(4):
        assert f"  Engine {i}     " + expected.format(i=i, seed=1234 + i) + "\n" in plan


def test_train_dry_run_prints_each_node_of_each_engine_for_qwen3_235B():
    plan = _dry_run("--config-name", "run_qwen3_235B_A22B")
    lines = [line for line in plan.splitlines() if line.startswith("  Engine ")]
    assert len(lines) == 2 * 4  # 64 GPUs in engines of 32 GPUs on nodes of 8
    sizes = " ".join(map(str, [1, 2, 4, *range(8, 257, 8)]))
    assert lines[0] == (
        "  Engine 0 node 0  python3 -m sglang.launch_server --mem-fraction-static 0.7 --dp-size 4 --enable-dp-lm-head "
        f"--cuda-graph-bs-decode {sizes} --ep-size 32 --enable-dp-attention --model-path /models/Qwen3-235B-A22B "
        "--tp-size 32 --random-seed 1234 --host {ENGINE0_NODE0_HOST} --port {ENGINE0_PORT} "
        "--nccl-port {ENGINE0_NCCL_PORT} --base-gpu-id {ENGINE0_BASE_GPU_ID} --skip-server-warmup --enable-metrics "
        "--nnodes 4 --node-rank 0 --dist-init-addr {ENGINE0_NODE0_HOST}:{ENGINE0_DIST_INIT_PORT} --enable-memory-saver "
        "--cuda-graph-backend-prefill disabled --config {ENGINE0_KEY_FILE}")
    assert "--random-seed 1238 " in lines[-1]  # engine 1: --seed + its first node's index among the engines' nodes
    assert lines[-1].endswith("--nnodes 4 --node-rank 3 --dist-init-addr {ENGINE1_NODE0_HOST}:{ENGINE1_DIST_INIT_PORT} "
                              "--enable-memory-saver --cuda-graph-backend-prefill disabled --config {ENGINE1_KEY_FILE}")


def test_the_launchers_dry_run_prints_the_server_commands(tmp_path):
    env = {**os.environ, **ENV, "PYTHON": sys.executable, "MASTER_ADDR": "127.0.0.1", "TMPDIR": str(tmp_path)}
    result = subprocess.run(["bash", "scripts/run-qwen3-4B.sh", "--dry-run"], cwd=ROOT, capture_output=True,
                            text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert "#   Engine 3     python3 -m sglang.launch_server --mem-fraction-static 0.7 --model-path /models/Qwen3-4B" \
        in result.stdout


def test_the_torch_engine_command_takes_the_same_server_arguments(tmp_path):
    args = namespace_from_config("run_tiny_cpu", [], environ=ENV)
    command = planned_commands(args)[1]["command"]
    assert command == ["python3", "-m", "slime.engines.torch_engine", "--model-path", "/models/tiny-cpu",
                       "--tp-size", "1", "--random-seed", "1235", "--host", "{ENGINE1_HOST}",
                       "--port", "{ENGINE1_PORT}", "--skip-server-warmup", "--enable-memory-saver",
                       "--config", "{ENGINE1_KEY_FILE}"]
    from slime.engines.torch_engine import parse_server_args

    key_file = tmp_path / "engine_1.key.yaml"
    key_file.write_text('api-key: "-s3cret"\n')  # a value that looks like an option still reads as the key
    slot_values = [w.replace("{ENGINE1_HOST}", "127.0.0.1").replace("{ENGINE1_PORT}", "30001")
                   .replace("{ENGINE1_KEY_FILE}", str(key_file)) for w in command[3:]]
    parsed = parse_server_args(slot_values)
    assert (parsed.port, parsed.api_key, parsed.trust_remote_code) == (30001, "-s3cret", False)


@pytest.mark.parametrize("config", [c for c in primary_configs() if "tiny" not in c])
def test_sglangs_own_parser_accepts_every_engines_command(config):
    require_module("sglang")
    from slime.engines.sglang_check import check_server_args

    problems, notes = check_server_args(_namespace(config))
    assert problems == []
    assert all("resolve_once" in note or "SGLang says --" in note for note in notes), notes


@pytest.mark.parametrize("logging_configured_after_sglang_imported", [False, True])
def test_sglangs_deprecation_warnings_name_the_config_key(logging_configured_after_sglang_imported):
    """Also when a logging.config call (Hydra's, in this process) disabled SGLang's existing loggers."""
    require_module("sglang")
    import logging
    import logging.config

    import sglang.srt.server_args  # noqa: F401  (its logger exists before the logging config below)

    from slime.engines.sglang_check import check_server_args

    loggers = [logging.getLogger(name) for name in list(logging.getLogger().manager.loggerDict)]
    was_disabled = {logger: logger.disabled for logger in loggers}
    try:
        if logging_configured_after_sglang_imported:
            logging.config.dictConfig({"version": 1, "disable_existing_loggers": True})
        else:  # as SGLang leaves them, whatever an earlier test in this process configured
            for logger in loggers:
                if logger.name.startswith("sglang"):
                    logger.disabled = False
        _, notes = check_server_args(_namespace("run_qwen3_235B_A22B"))
        left_disabled = logging.getLogger("sglang.srt.server_args").disabled
    finally:
        for logger, disabled in was_disabled.items():
            logger.disabled = disabled
    assert [n for n in notes if "deprecated" in n] == [
        "--sglang-enable-dp-attention: SGLang says --enable-dp-attention is deprecated and will be removed in a future "
        "release. Use '--attn-dp-size <dp-size>' instead."]
    assert left_disabled == logging_configured_after_sglang_imported  # as the check found it


def test_sglangs_parser_objects_by_config_key():
    require_module("sglang")
    from slime.engines.command import EngineSlot
    from slime.engines.sglang_check import check_server_args

    args = _namespace("run_qwen3_4B")
    args.sglang_attention_backend = "no-such-backend"  # past slime's parser: only SGLang's can object
    assert "--attention-backend" in server_command(args, EngineSlot(0, 0, "h", 1, 2, 0))
    problems, _ = check_server_args(args)
    assert len(problems) == 1 and problems[0].startswith("--sglang-attention-backend: SGLang's parser says: invalid "
                                                         "choice: 'no-such-backend'"), problems


def _hostile_checkpoint(tiny: Path, folder: Path) -> Path:
    """The tiny model with a Python file of its own that config.json names (auto_map): loading it with
    remote code allowed runs that file, which leaves a marker beside the checkpoint."""
    import json
    import shutil

    shutil.copytree(tiny, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_evil.py").write_text(
        f"open({str(folder.parent / 'RAN')!r}, 'w').close()\n"
        "from transformers import Qwen2ForCausalLM\n\n\nclass EvilForCausalLM(Qwen2ForCausalLM):\n    pass\n")
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("trusted", [False, True])
def test_issue20_9_a_checkpoints_own_code_runs_in_the_torch_engine_only_with_trust_remote_code(tiny_base, tmp_path,
                                                                                             trusted):
    hostile = _hostile_checkpoint(tiny_base / "tiny-cpu", tmp_path / "hostile")
    load = ("import sys\nfrom slime.engines.torch_engine import TorchEngine, parse_server_args\n"
            "TorchEngine(parse_server_args(sys.argv[1:]))\n")
    result = subprocess.run([sys.executable, "-c", load, "--model-path", str(hostile),
                             *(["--trust-remote-code"] if trusted else [])], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "HF_HOME": str(tmp_path / "hf")}, check=False, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "RAN").exists() == trusted


def test_issue20_9_one_flag_trusts_remote_code_for_sglang_and_the_torch_engine_off_by_default():
    for config in ("run_qwen3_4B", "run_tiny_cpu"):
        assert all("--trust-remote-code" not in c["command"] for c in planned_commands(_namespace(config)))
        trusted = namespace_from_config(config, ["+sglang.sglang_trust_remote_code=true"], environ=ENV)
        assert all("--trust-remote-code" in c["command"] for c in planned_commands(trusted))
