#!/usr/bin/env bash
# DeepSeek-R1 (the DeepSeek-V3 architecture): GRPO on DAPO-Math-17k, 16 nodes × 8 GPUs colocated.
# Config: conf/run_deepseek_r1.yaml. Every launcher has this shape; the logic lives in scripts/lib/launch.sh.
#   bash scripts/run-deepseek-r1.sh [--dry-run] [hydra overrides...]    e.g. optimizer.lr=2e-6 +experiment=quick_test
#   ARGS_FILE=args.sh bash scripts/run-deepseek-r1.sh                  use a file tools/generate_args.py wrote
set -euo pipefail

# shellcheck source=scripts/lib/launch.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/launch.sh"
slime_launch run_deepseek_r1 "$@"
