"""The one shape of every scripts/run-*.sh launcher; the logic lives in scripts/lib/launch.sh."""

from __future__ import annotations

from pathlib import Path

TEMPLATE = """#!/usr/bin/env bash
# {description}
# Config: conf/{config}.yaml. Every launcher has this shape; the logic lives in scripts/lib/launch.sh.
#   bash scripts/{launcher} [--dry-run] [hydra overrides...]    e.g. optimizer.lr=2e-6 +experiment=quick_test
#   ARGS_FILE=args.sh bash scripts/{launcher}                  use a file tools/generate_args.py wrote
set -euo pipefail

# shellcheck source=scripts/lib/launch.sh
source "$(dirname "${{BASH_SOURCE[0]}}")/lib/launch.sh"
slime_launch {config} "$@"
"""


def launcher_name(config: str) -> str:
    """``run_qwen3_4B`` → ``run-qwen3-4B.sh``."""
    return config.replace("_", "-") + ".sh"


def description_of(config_file: Path) -> str:
    """The first comment line of a config: what the run is."""
    for line in config_file.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return config_file.stem


def render_launcher(config: str, description: str) -> str:
    return TEMPLATE.format(config=config, description=description, launcher=launcher_name(config))
