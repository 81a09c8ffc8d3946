"""The evaluation datasets a command line names, as (name, path) pairs: those of --eval-config's
``datasets:`` list, or --eval-prompt-data's name/path pairs. A single path alone is one dataset
named ``aime``, upstream slime's legacy form (``--eval-prompt-data /data/aime-2024.jsonl``)."""

from __future__ import annotations

import argparse
from pathlib import Path

LEGACY_NAME = "aime"


def pairs_of(values: list[str] | None) -> list[tuple[str, str]]:
    """``--eval-prompt-data``'s values as (name, path) pairs (an odd count > 1 is a validation error)."""
    values = values or []
    if len(values) == 1:
        return [(LEGACY_NAME, values[0])]
    return list(zip(values[::2], values[1::2]))


def eval_datasets(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Every (name, path) the run evaluates on."""
    if args.eval_config:
        import yaml

        config = yaml.safe_load(Path(args.eval_config).read_text()) or {}
        return [(item["name"], item["path"]) for item in config.get("datasets", [])]
    return pairs_of(args.eval_prompt_data)
