#!/usr/bin/env bash
# Qwen3-4B: GRPO on DAPO-Math-17k with AIME 2024 evaluation, one node of 8 GPUs, colocated.
# Config: conf/run_qwen3_4B.yaml. Every launcher has this shape; the logic lives in scripts/lib/launch.sh.
#   bash scripts/run-qwen3-4B.sh [--dry-run] [hydra overrides...]    e.g. optimizer.lr=2e-6 +experiment=quick_test
#   ARGS_FILE=args.sh bash scripts/run-qwen3-4B.sh                  use a file tools/generate_args.py wrote
set -euo pipefail

# shellcheck source=scripts/lib/launch.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/launch.sh"
slime_launch run_qwen3_4B "$@"
