#!/usr/bin/env python3
"""Write docs/arguments.md, the argument reference, from the parser's own flag records.

    python tools/generate_arguments_doc.py           # rewrite docs/arguments.md
    python tools/generate_arguments_doc.py --check   # exit 1 with a diff when it is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from itertools import groupby


from slime.arguments.registry import all_flags
from slime.utils.files import write_or_check
from slime.arguments.flags import APPEND, Flag
from slime.arguments.slime_flags import UNIMPLEMENTED_CHOICES
from slime.arguments.sglang_flags import load_snapshot
from slime.utils.checkout import ROOT

DOC_PATH = ROOT / "docs" / "arguments.md"

INTRO = """# Argument reference

Every flag `train.py` accepts, generated from the flag tables of `slime/arguments/` by
`python tools/generate_arguments_doc.py` (CI fails when this page is stale). In Hydra
configs the key of a flag is its name without the leading dashes, in snake_case:
`--rollout-batch-size` is `rollout_batch_size`.

Owners: slime's own flags; Megatron-LM's flags under Megatron-LM's names (the project's
registry, each naming the megatron-core field it feeds or the setting it controls); SGLang's
server flags from SGLang {version}, prefixed `--sglang-` (see `python -m sglang.launch_server --help`
for their meaning). A switch takes no value; `--x`/`--no-x` pairs may also stay unset. Flags that
name Python functions take `module.path.function` (upstream slime's spelling) or
`module.path:function`.

Every flag of upstream slime's parser is accepted, with its type, default and choices. Those
whose feature this trainer does not implement yet are marked **not implemented** below: they
parse, so upstream's command lines do, but any value other than the default is a validation error
that names the flag. They are:

{unimplemented}
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(f: Flag) -> str:
    if f.default is None or f.default == []:
        return ""
    return f"`{json.dumps(f.default) if not isinstance(f.default, str) else f.default}`"


def _type(f: Flag) -> str:
    if f.choices:
        missing = UNIMPLEMENTED_CHOICES.get(f.attr, {})
        shown = [f"`{c}`" + (" (not implemented)" if c in missing else "") for c in f.choices]
        return " \\| ".join(shown) + (" …" if f.is_list else "")
    if f.kind == APPEND:
        return f"{f.type_name}, repeatable"
    return f.type_name


def _names(f: Flag) -> str:
    return "<br>".join(f"`{n}`" for n in (*f.names, *f.off_names))


def _help(f: Flag) -> str:
    where = f" → `{f.feeds}`" if f.feeds else (f" → {f.controls}" if f.controls else "")
    missing = f"**Not implemented** ({f.unimplemented}). " if f.unimplemented else ""
    return _cell(missing + f.help + where)


def _unimplemented_list() -> str:
    """One line per missing feature, with its flags (and the choices of implemented flags it covers)."""
    features: dict[str, list[str]] = {}
    for f in all_flags():
        if f.unimplemented:
            features.setdefault(f.unimplemented, []).append(f"`{f.name}`")
        for choice, feature in UNIMPLEMENTED_CHOICES.get(f.attr, {}).items():
            features.setdefault(feature, []).append(f"`{f.name} {choice}`")
    return "\n".join(f"- {feature}: {', '.join(flags)}" for feature, flags in features.items())


def render() -> str:
    out = [INTRO.format(version=load_snapshot()["sglang_version"], unimplemented=_unimplemented_list())]
    for group, flags in groupby(all_flags(), key=lambda f: f.group):
        out.append(f"\n## {group}\n\n| flag | type | default | description |\n|---|---|---|---|\n")
        out.extend(f"| {_names(f)} | {_type(f)} | {_cell(_default(f))} | {_help(f)} |\n" for f in flags)
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    return write_or_check(DOC_PATH, render(), args.check, "python tools/generate_arguments_doc.py")

if __name__ == "__main__":
    sys.exit(main())
