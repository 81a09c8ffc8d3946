"""The Ray runtime environment of a launch, as the JSON ``ray job submit --runtime-env-json`` takes.

    python -m slime.utils.runtime_env KEY=VALUE ...   →   {"env_vars": {"KEY": "VALUE", ...}}

Launchers build it here rather than by pasting strings into JSON, so any value is encoded safely.
"""

from __future__ import annotations

import json
import re
import sys

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def runtime_env(assignments: list[str]) -> dict:
    env_vars: dict[str, str] = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep or not _NAME.fullmatch(name):
            raise ValueError(f"expected NAME=VALUE, got {assignment!r}")
        env_vars[name] = value
    return {"env_vars": env_vars}


def main(argv: list[str] | None = None) -> int:
    try:
        print(json.dumps(runtime_env(sys.argv[1:] if argv is None else argv), ensure_ascii=False))
    except ValueError as err:
        print(f"runtime_env: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
