#!/usr/bin/env bash
# Imported from run-imported-moe.sh by tools/import_launcher.py.
# Config: conf/run_imported_moe.yaml. Every launcher has this shape; the logic lives in scripts/lib/launch.sh.
#   bash scripts/run-imported-moe.sh [--dry-run] [hydra overrides...]    e.g. optimizer.lr=2e-6 +experiment=quick_test
#   ARGS_FILE=args.sh bash scripts/run-imported-moe.sh                  use a file tools/generate_args.py wrote
set -euo pipefail

# shellcheck source=scripts/lib/launch.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/launch.sh"
slime_launch run_imported_moe "$@"
