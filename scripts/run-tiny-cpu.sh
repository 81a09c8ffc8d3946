#!/usr/bin/env bash
# A tiny model learning a toy task with GRPO on a laptop CPU: RL you can watch in a few minutes.
# Config: conf/run_tiny_cpu.yaml. Every launcher has this shape; the logic lives in scripts/lib/launch.sh.
#   bash scripts/run-tiny-cpu.sh [--dry-run] [hydra overrides...]    e.g. optimizer.lr=2e-6 +experiment=quick_test
#   ARGS_FILE=args.sh bash scripts/run-tiny-cpu.sh                  use a file tools/generate_args.py wrote
set -euo pipefail

# shellcheck source=scripts/lib/launch.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/launch.sh"
slime_launch run_tiny_cpu "$@"
