#!/usr/bin/env python3
"""Cost of importing slime.arguments.parser and parsing a 200-token argv, as a ratio to `python -c pass`.

    python benchmarks/parse_args.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _timing import interleaved, report, time_command

ROOT = Path(__file__).resolve().parents[1]


def argv_200() -> list[str]:
    model = json.loads((ROOT / "tests" / "reference" / "model_args.json").read_text())["deepseek-v3"]
    run = """--actor-num-nodes 8 --actor-num-gpus-per-node 8 --colocate --tensor-model-parallel-size 8
    --pipeline-model-parallel-size 4 --decoder-last-pipeline-num-layers 13 --expert-model-parallel-size 16
    --expert-tensor-parallel-size 1 --hf-checkpoint /m --ref-load /r --prompt-data /p --rollout-batch-size 64
    --n-samples-per-prompt 8 --num-rollout 100 --lr 1e-6 --use-dynamic-batch-size --max-tokens-per-gpu 8192
    --rollout-num-gpus-per-engine 32 --sglang-enable-dp-attention --sglang-dp-size 8""".split()
    sizes = ["--sglang-cuda-graph-bs", "1", "2", "4", *map(str, range(8, 513, 8))]
    evals = ["--eval-interval", "10", "--eval-prompt-data"]
    evals += [token for name in ("aime", "amc", "math500", "gpqa", "gsm8k") for token in (name, f"/data/{name}.jsonl")]
    optimizer = "--optimizer adam --lr-decay-style constant --weight-decay 0.1 --adam-beta1 0.9 --adam-beta2 0.98".split()
    return [*model, *run, *sizes, *evals, *optimizer]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    repeats = parser.parse_args().repeats
    argv = argv_200()
    from slime.arguments.parser import parse_args

    parse_args(argv)  # fail here, readably, if the argv stopped validating
    parse = f"import sys; from slime.arguments.parser import parse_args; parse_args({argv!r})"
    medians = interleaved({
        "python -c pass": lambda: time_command([sys.executable, "-c", "pass"]),
        "import + parse_args (200 tokens)": lambda: time_command([sys.executable, "-c", parse], cwd=ROOT),
    }, repeats)
    print(f"{len(argv)} tokens, median of {repeats} interleaved runs")
    report(medians, "python -c pass")


if __name__ == "__main__":
    main()
