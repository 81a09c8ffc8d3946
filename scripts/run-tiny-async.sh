#!/usr/bin/env bash
# A tiny model learning a toy task one step off policy (train_async.py) on a laptop CPU.
# Config: conf/run_tiny_async.yaml. Every launcher has this shape; the logic lives in scripts/lib/launch.sh.
#   bash scripts/run-tiny-async.sh [--dry-run] [hydra overrides...]    e.g. optimizer.lr=2e-6 +experiment=quick_test
#   ARGS_FILE=args.sh bash scripts/run-tiny-async.sh                  use a file tools/generate_args.py wrote
set -euo pipefail

# shellcheck source=scripts/lib/launch.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/launch.sh"
slime_launch run_tiny_async "$@"
