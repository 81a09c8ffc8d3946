#!/usr/bin/env bash
# Qwen2.5-0.5B-Instruct: the smallest real run, GRPO on GSM8K with four GPUs of one node.
# Config: conf/run_qwen2.5_0.5B.yaml. Every launcher has this shape; the logic lives in scripts/lib/launch.sh.
#   bash scripts/run-qwen2.5-0.5B.sh [--dry-run] [hydra overrides...]    e.g. optimizer.lr=2e-6 +experiment=quick_test
#   ARGS_FILE=args.sh bash scripts/run-qwen2.5-0.5B.sh                  use a file tools/generate_args.py wrote
set -euo pipefail

# shellcheck source=scripts/lib/launch.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/launch.sh"
slime_launch run_qwen2.5_0.5B "$@"
