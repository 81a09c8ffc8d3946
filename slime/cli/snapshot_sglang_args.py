#!/usr/bin/env python3
"""Regenerate (or check) the snapshot of SGLang's server flags from the installed SGLang.

    python tools/snapshot_sglang_args.py           # rewrite slime/arguments/sglang_server_args.json
    python tools/snapshot_sglang_args.py --check   # exit 1 and show the difference if it is stale
"""

from __future__ import annotations

import argparse
import json
import sys

from slime.arguments.sglang_flags import SNAPSHOT_PATH, snapshot_from_installed
from slime.utils.files import write_or_check


def render(snapshot: dict) -> str:
    """One line per flag, so a changed flag is a one-line diff."""
    lines = [json.dumps(entry, sort_keys=True) for entry in snapshot["flags"]]
    return (
        "{\n"
        f'"sglang_version": {json.dumps(snapshot["sglang_version"])},\n'
        '"flags": [\n' + ",\n".join(lines) + "\n]\n}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = render(snapshot_from_installed())
    return write_or_check(SNAPSHOT_PATH, text, args.check, "python tools/snapshot_sglang_args.py")

if __name__ == "__main__":
    sys.exit(main())
