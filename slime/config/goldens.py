"""The committed generated files: tests/golden/<config>.sh for every primary config and
scripts/models/<model>.sh for every conf/model/ file, regenerated or checked in one process."""

from __future__ import annotations

from pathlib import Path


from slime.config.argsfile import render_bash, render_model_script
from slime.config.compose import generate_config, hydra_context, primary_configs
from slime.config.generate import GenerationError
from slime.config.model_files import flatten_model, load_model_entries
from slime.arguments.parser import ArgumentProblems, parse_argv
from slime.utils.files import write_or_check
from slime.utils.checkout import CONF_DIR, ROOT

GOLDEN_DIR = ROOT / "tests" / "golden"
MODELS_DIR = ROOT / "scripts" / "models"
REGENERATE = "python tools/generate_args.py --goldens"


def model_script(path: Path) -> str:
    """scripts/models/<model>.sh from conf/model/<model>.yaml: MODEL_ARGS only, checked by the parser."""
    flat = flatten_model(load_model_entries(path))
    messages = [f"conf/model/{path.name}: {p.key}: {p.message}" for p in flat.problems]
    lines = flat.arrays["MODEL_ARGS"]
    try:
        parse_argv([token for line in lines for token in line])
    except ArgumentProblems as err:
        messages += [f"conf/model/{path.name}: {p.message}" for p in err.problems]
    if messages:
        raise GenerationError(f"model/{path.stem}", messages)
    return render_model_script(path.stem, lines)


def golden_files() -> dict[Path, str]:
    """Every committed generated file and its fresh content."""
    files: dict[Path, str] = {}
    with hydra_context():
        for name in primary_configs():
            files[GOLDEN_DIR / f"{name}.sh"] = render_bash(generate_config(name))
    for path in sorted((CONF_DIR / "model").glob("*.yaml")):
        files[MODELS_DIR / f"{path.stem}.sh"] = model_script(path)
    return files


def update_goldens(check: bool) -> int:
    """Rewrite the golden files, or with ``check`` print the diff of each stale one; 1 if any is stale."""
    files = golden_files()
    status = 0
    for path, text in files.items():
        status |= write_or_check(path, text, check, REGENERATE, quiet=True)
    orphans = sorted(p for d in (GOLDEN_DIR, MODELS_DIR) for p in d.glob("*.sh") if p not in files)
    for orphan in orphans:
        if check:
            print(f"{orphan.relative_to(ROOT)} has no config any more: run {REGENERATE}")
            status = 1
        else:
            orphan.unlink()
    print(f"{len(files)} generated files {'checked' if check else 'written'}"
          f"{': some are stale' if status else ''}")
    return status
