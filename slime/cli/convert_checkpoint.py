"""The command line of the two converters: the trainer's own parser for MODEL_ARGS and paths,
every problem reported at once, exit 2 on a user's mistake."""

from __future__ import annotations

import sys
from pathlib import Path

from slime.arguments.parser import ArgumentProblems, parse_args

REQUIRED = {"hf_to_torch_dist": ("hf_checkpoint", "save"), "torch_dist_to_hf": ("load", "hf_checkpoint", "save")}


def _problems(direction: str, args) -> list[str]:
    from slime.backends.megatron.checkpoint import is_torch_dist
    from slime.utils.hf_checkpoint import is_hf_checkpoint, read_config

    problems = [f"--{key.replace('_', '-')} is required" for key in REQUIRED[direction] if not getattr(args, key)]
    missing_model = [flag for flag in ("num_layers", "hidden_size", "num_attention_heads", "vocab_size")
                     if getattr(args, flag) is None]
    if missing_model:
        problems.append(f"the model flags are missing ({', '.join('--' + f.replace('_', '-') for f in missing_model)}):"
                        ' pass "${MODEL_ARGS[@]}" from scripts/models/<model>.sh')
    if args.hf_checkpoint and not (Path(args.hf_checkpoint) / "config.json").is_file():
        problems.append(f"--hf-checkpoint {args.hf_checkpoint}: no config.json there")
    elif direction == "hf_to_torch_dist" and args.hf_checkpoint and not is_hf_checkpoint(args.hf_checkpoint):
        problems.append(f"--hf-checkpoint {args.hf_checkpoint}: no safetensors weights there")
    elif direction == "hf_to_torch_dist" and args.hf_checkpoint:
        from slime.backends.megatron.quantized import quantization_problem

        quantized = quantization_problem(read_config(args.hf_checkpoint), Path(args.hf_checkpoint) / "config.json")
        if quantized:
            problems.append(f"--hf-checkpoint {quantized}")
    if direction == "torch_dist_to_hf" and args.load and not is_torch_dist(args.load):
        problems.append(f"--load {args.load}: not a torch_dist checkpoint (no latest_checkpointed_iteration.txt "
                        "or .metadata)")
    return problems


def main(direction: str, argv: list[str]) -> int:
    prog = f"convert_{direction}.py"
    try:
        args = parse_args(argv, validate=False)
    except ArgumentProblems as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    problems = _problems(direction, args)
    if problems:
        print(f"{prog}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems), file=sys.stderr)
        return 2
    from slime.backends.megatron import convert
    from slime.utils.local_ranks import RankFailed

    try:
        convert.run(getattr(convert, direction), args)
    except RankFailed as err:  # a shape that disagrees with the flags, a missing tensor: the last line says
        print(f"{prog}: conversion failed: {str(err).strip().splitlines()[-1]}", file=sys.stderr)
        return 1
    print(f"{prog}: wrote {args.save}")
    return 0
