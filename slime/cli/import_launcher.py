#!/usr/bin/env python3
"""Bring an existing bash launcher into conf/, with a parity check against its real argv.

    python tools/import_launcher.py path/to/run-foo.sh [--name run_foo] [--set NAME=VALUE ...] [--into DIR]

Runs the script with every external command replaced (nothing is started or killed), reads the
arrays it builds from bash itself, writes conf/<name>.yaml (and conf/model/<model>.yaml and
scripts/models/<model>.sh for a new model), scripts/run-<name>.sh and tests/golden/<name>.sh — but
only after the config's generated argv parses to the same Namespace as the original. Exit status 2
and nothing written otherwise. --into writes the same files under another folder instead of the
repository (to review an import before copying it in, or for test fixtures).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


from slime.importer.importer import ImportFailed, ImportTarget, import_launcher, shown, write
from slime.config.shell import reference
from slime.utils.checkout import ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("script", type=Path, help="the launch script to import")
    parser.add_argument("--name", help="primary config name (default: from the script's file name)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a value for a variable the script needs (others become shell references)")
    parser.add_argument("--force", action="store_true", help="overwrite files that exist with other content")
    parser.add_argument("--check", action="store_true", help="run the import and the parity check, write nothing")
    parser.add_argument("--into", type=Path, default=ROOT, metavar="DIR",
                        help="write into DIR, laid out like the repository (DIR/conf/, DIR/scripts/, "
                             "DIR/tests/golden/), instead of into the repository; its configs compose on "
                             "top of conf/ (generate_args.py -cd DIR/conf)")
    options = parser.parse_args(argv)
    values = dict(item.split("=", 1) for item in options.set if "=" in item)
    try:
        result = import_launcher(options.script, options.name, values, target=ImportTarget(options.into.resolve()))
        if not options.check:
            write(result, force=options.force)
    except ImportFailed as err:
        print(f"import_launcher: {options.script}: {err}", file=sys.stderr)
        return 2
    verb = "would write" if options.check else "wrote"
    for path in result.files:
        print(f"{verb} {shown(path)}")
    model = f"new model {result.model}" if result.new_model else f"model {result.model} (existing file reused)"
    print(f"parity: the config's argv parses to the launcher's Namespace; {model}")
    if result.respelled:
        print("re-spelled, same value: " + ", ".join(result.respelled))
    for note in result.notes:
        print(f"note: {note}")
    if result.variables:
        print("shell references kept: " + ", ".join(reference(v, result.defaults.get(v)) for v in result.variables))
    for line in result.substituted:
        print(f"from a command substitution (check it before committing; the config and golden file hold it): {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
