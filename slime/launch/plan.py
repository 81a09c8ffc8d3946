"""The launch plan: what a validated command line will ask of a cluster, for a person to check
before booking it. ``build_plan`` returns plain data (JSON-ready); ``format_plan`` renders it."""

from __future__ import annotations

import argparse

from slime.engines.command import display_command, planned_commands
from slime.arguments.arg_types import format_number
from slime.arguments.eval_datasets import pairs_of
from slime.arguments.entry_points import DEFAULT_ENTRY_POINT, ENTRY_POINTS, entry_point_problems
from slime.launch.memory import format_memory, memory_plan, on_gpus
from slime.arguments.role_overrides import role_args
from slime.arguments.topology import Topology, critic_with_actor


def _role_topology(args: argparse.Namespace, role: str) -> dict:
    """One role's row: its backend, its Topology (from its own overrides) and its learning rate."""
    t = Topology.of(args, role)
    return {
        "backend": args.train_backend,
        "gpus": t.world,
        "tensor_parallel": t.tp,
        "pipeline_parallel": t.pp,
        "context_parallel": t.cp,
        "expert_parallel": t.ep,
        "expert_tensor_parallel": t.etp,
        "data_parallel": t.dp,
        "lr": args.lr,
    }


def build_plan(args: argparse.Namespace, entry_point: str = DEFAULT_ENTRY_POINT) -> dict:
    """The plan of a Namespace that ``validate_args`` accepted, run by ``entry_point``."""
    actor = Topology.of(args, "actor")
    actor_gpus = actor.world
    critic_gpus = Topology.of(args, "critic").world if args.use_critic else 0
    rollout_gpus = 0 if args.debug_train_only else (args.rollout_num_gpus or 0)
    own_critic_gpus = 0 if critic_with_actor(args) else critic_gpus
    train_gpus = 0 if args.debug_rollout_only else actor_gpus + own_critic_gpus
    total = max(train_gpus, rollout_gpus) if args.colocate else train_gpus + rollout_gpus
    per_engine = args.rollout_num_gpus_per_engine
    samples = args.rollout_batch_size * args.n_samples_per_prompt
    per_rank = args.global_batch_size // actor.dp
    plan = {
        "loop": {"entry_point": entry_point, "meaning": ENTRY_POINTS.get(entry_point, "")},
        "placement": {
            "colocated": bool(args.colocate),
            "critic_with_actor": critic_with_actor(args),
            "offload_train": bool(args.offload_train),
            "offload_rollout": bool(args.offload_rollout),
            "nodes": -(-total // args.num_gpus_per_node),
            "gpus_per_node": args.num_gpus_per_node,
        },
        "gpus": {"actor": actor_gpus, "critic": critic_gpus, "rollout": rollout_gpus, "total": total},
        "actor": _role_topology(role_args(args, "actor"), "actor"),
        "critic": _role_topology(role_args(args, "critic"), "critic") if args.use_critic else None,
        "rollout": {
            "engines": rollout_gpus // per_engine,
            "backend": args.rollout_backend,
            "gpus_per_engine": per_engine,
            "sglang_dp_size": args.sglang_dp_size,
            "sglang_dp_attention": bool(args.sglang_enable_dp_attention),
            "sglang_ep_size": args.sglang_ep_size,
            "server_commands": [] if args.debug_train_only else planned_commands(args),
            "router": f"{args.sglang_router_ip}:{args.sglang_router_port} (external)" if args.sglang_router_ip
                      else "SGLang's router, started by slime",
            "weight_transport": weight_transport(args),
            "engineless": bool(args.debug_train_only),
            "function": args.rollout_function_path,
            "replay": args.load_debug_rollout_data,
        },
        "per_rollout": {
            "prompts": args.rollout_batch_size,
            "samples_per_prompt": args.n_samples_per_prompt,
            "samples": samples,
            "over_sampling_prompts": args.over_sampling_batch_size,
            "optimizer_steps": args.num_steps_per_rollout,
            "global_batch_size": args.global_batch_size,
            "samples_per_data_parallel_rank_per_step": per_rank,
            "micro_batches_per_step": None if args.use_dynamic_batch_size else per_rank // args.micro_batch_size,
            "micro_batch_size": None if args.use_dynamic_batch_size else args.micro_batch_size,
            "max_tokens_per_gpu": args.max_tokens_per_gpu,
        },
        "run": {
            "rollouts": args.num_rollout,
            "epochs": args.num_epoch,
            "samples": args.num_rollout * samples if args.num_rollout else None,
            "optimizer_steps": args.num_rollout * args.num_steps_per_rollout if args.num_rollout else None,
        },
        "evaluation": {
            "interval": args.eval_interval,
            "datasets": _eval_datasets(args),
            "samples_per_prompt": args.n_samples_per_eval_prompt,
        },
        "checkpoints": {"save": args.save, "interval": args.save_interval, "load": args.load, "ref_load": args.ref_load},
        "memory": memory_plan(args) if on_gpus(args) else None,
        "derived": dict(getattr(args, "derived_values", {})),
        "role_overrides": getattr(args, "role_overrides", {}),
        "role_overrides_ignored": getattr(args, "role_overrides_ignored", []),
    }
    plan["derived"] = {attr: {"value": getattr(args, attr), "reason": why} for attr, why in plan["derived"].items()}
    return plan


def weight_transport(args: argparse.Namespace) -> str:
    if args.update_weight_transport == "disk":
        return f"disk ({args.update_weight_disk_dir or 'a temporary folder'}, /update_weights_from_disk)"
    if args.colocate:
        return "tensor (/update_weights_from_tensor: CUDA IPC handles on GPUs, tensors by value on CPUs)"
    return "distributed (/update_weights_from_distributed: a weight-update group, NCCL on GPUs, gloo on CPUs)"


def _eval_datasets(args: argparse.Namespace) -> list[str]:
    if args.eval_config:
        return [f"from {args.eval_config}"]
    return [name for name, _ in pairs_of(args.eval_prompt_data)]


def _n(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def format_plan(plan: dict) -> str:
    """A page a person reads before booking the cluster."""
    p, g = plan["placement"], plan["gpus"]
    rows = [("Loop", f"{plan['loop']['entry_point']}: {plan['loop']['meaning']}")]
    where = "colocated (rollout shares the actor's GPUs, taking turns)" if p["colocated"] else "separate GPUs per role"
    rows.append(("Placement", f"{where}; offload train: {_yes(p['offload_train'])}, "
                              f"offload rollout: {_yes(p['offload_rollout'])}"))
    critic = f"critic {g['critic']}" + (" (the actor's, taking turns)" if p["critic_with_actor"] else "")
    rows.append(("GPUs", f"actor {g['actor']}, {critic}, rollout {g['rollout']}"
                         f"{' (shared)' if p['colocated'] else ''}; total {g['total']} on {p['nodes']} node(s)"))
    for role in ("actor", "critic"):
        t = plan[role]
        if t:
            rows.append((role.capitalize(), f"{t['backend']}: TP {t['tensor_parallel']} × PP {t['pipeline_parallel']} × CP "
                         f"{t['context_parallel']} → DP {t['data_parallel']}; EP {t['expert_parallel']}, "
                         f"expert TP {t['expert_tensor_parallel']}; lr {_v(t['lr'])}"))
    r = plan["rollout"]
    kind = "SGLang" if r["backend"] == "sglang" else r["backend"]
    engine = f"{r['engines']} {kind} engine(s) × {r['gpus_per_engine']} GPU(s)"
    if r["sglang_dp_attention"]:
        engine += f", DP attention {r['sglang_dp_size']}"
    if r["sglang_ep_size"] > 1:
        engine += f", EP {r['sglang_ep_size']}"
    if r["engineless"]:
        source = f"replays {r['replay']}" if r["replay"] else f"{r['function']} brings the samples"
        rows.append(("Rollout", f"no engines (--debug-train-only): {source}"))
    else:
        rows.append(("Rollout", f"{engine}; {r['router']}; weights pushed by {r['weight_transport']}"))
    spans = any(server["node"] for server in r["server_commands"])
    for server in r["server_commands"]:
        label = f"Engine {server['engine']}" + (f" node {server['node']}" if spans else "")
        rows.append((label, display_command(server["command"])))
    b = plan["per_rollout"]
    rows.append(("Per rollout", f"{_n(b['prompts'])} prompts × {b['samples_per_prompt']} samples = "
                                f"{_n(b['samples'])} samples (sampling {b['over_sampling_prompts']} prompts at a time)"))
    if b["micro_batch_size"] is None:
        micro = f"dynamic micro-batches of up to {_n(b['max_tokens_per_gpu'])} tokens per GPU"
    else:
        micro = f"{b['micro_batches_per_step']} micro-batch(es) of {b['micro_batch_size']}"
    rows.append(("Optimizer", f"{b['optimizer_steps']} step(s) per rollout × {_n(b['global_batch_size'])} samples; "
                              f"per data-parallel rank {b['samples_per_data_parallel_rank_per_step']} samples per step "
                              f"= {micro}"))
    run = plan["run"]
    if run["rollouts"]:
        rows.append(("Run", f"{_n(run['rollouts'])} rollouts → {_n(run['samples'])} samples, "
                            f"{_n(run['optimizer_steps'])} optimizer steps"))
    else:
        rows.append(("Run", f"{run['epochs']} epoch(s) over the prompt data (rollouts counted at start-up)"))
    e = plan["evaluation"]
    if e["interval"]:
        rows.append(("Evaluation", f"every {e['interval']} rollouts on {', '.join(e['datasets'])} "
                                   f"({e['samples_per_prompt']} sample(s) per prompt)"))
    c = plan["checkpoints"]
    if c["save"]:
        rows.append(("Checkpoints", f"every {c['interval']} rollouts (and the last) to {c['save']}" if c["interval"]
                     else f"none saved: --save {c['save']} without --save-interval"))
    rows += format_memory(plan["memory"]) if plan["memory"] else []
    for attr, d in plan["derived"].items():
        rows.append(("Derived", f"--{attr.replace('_', '-')} = {_v(d['value'])} ({d['reason']})"))
    for role, values in plan["role_overrides"].items():
        rows.append((f"{role.capitalize()} overrides", ", ".join(f"{k}={_v(v)}" for k, v in values.items()) or "none"))
    for key in plan["role_overrides_ignored"]:
        rows.append(("Ignored", f"{key} in the role-override file (placement stays on the command line)"))
    width = max(len(label) for label, _ in rows)
    return "slime launch plan\n" + "\n".join(f"  {label:<{width}}  {text}" for label, text in rows) + "\n"


def _v(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "unset"
    return format_number(value) if isinstance(value, (int, float)) else str(value)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def main(argv: list[str] | None = None) -> int:
    """``python -m slime.launch.plan [--json|--nodes] [--entry-point train_async.py] -- <train.py flags>``: the
    plan of a command line.

    ``--nodes`` prints ``NODES GPUS_PER_NODE`` for launchers (how many machines, how many GPUs each
    declares to Ray); ``--json`` the whole plan; the default, the page ``format_plan`` renders.
    """
    import json
    import sys

    from slime.arguments.parser import ArgumentProblems, parse_args

    argv = sys.argv[1:] if argv is None else list(argv)
    mode = argv.pop(0) if argv and argv[0] in ("--json", "--nodes") else "--text"
    entry_point = DEFAULT_ENTRY_POINT
    if argv[:1] == ["--entry-point"] and len(argv) > 1:
        entry_point, argv = argv[1], argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    try:
        args = parse_args(argv)
        problems = entry_point_problems(args, entry_point)
        if problems:
            raise ArgumentProblems(problems, f"cannot run this command line with {entry_point}")
        plan = build_plan(args, entry_point)
    except ArgumentProblems as err:
        print(err, file=sys.stderr)
        return 2
    if mode == "--nodes":
        p = plan["placement"]
        print(p["nodes"], min(p["gpus_per_node"], plan["gpus"]["total"]))
    elif mode == "--json":
        print(json.dumps(plan, indent=2, default=str))
    else:
        sys.stdout.write(format_plan(plan))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
