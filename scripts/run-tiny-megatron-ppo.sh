#!/usr/bin/env bash
# The tiny megatron run with PPO: a critic trained at its own learning rate on the actor's two GPU slots.
# Config: conf/run_tiny_megatron_ppo.yaml. Every launcher has this shape; the logic lives in scripts/lib/launch.sh.
#   bash scripts/run-tiny-megatron-ppo.sh [--dry-run] [hydra overrides...]    e.g. optimizer.lr=2e-6 +experiment=quick_test
#   ARGS_FILE=args.sh bash scripts/run-tiny-megatron-ppo.sh                  use a file tools/generate_args.py wrote
set -euo pipefail

# shellcheck source=scripts/lib/launch.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/launch.sh"
slime_launch run_tiny_megatron_ppo "$@"
