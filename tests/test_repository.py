"""A clone of the repository is the whole product: no tracked file reads or links anything beside it."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.helpers.paths import REFERENCE, ROOT

# The folder that sat beside the repository while it was built, spelt in pieces so that this file does
# not name it; and a path to it however it is written: as text, as pathlib's parent / NAME, or as
# os.path.join's two arguments.
NAME = "sha" + "red"
SIBLING = f"../{NAME}"
REACHES_OUT = re.compile("|".join([re.escape(SIBLING), rf"parents?(?:\[\d\])?\s*/\s*['\"]{NAME}['\"]",
                                   rf"['\"]\.\.['\"]\s*,\s*['\"]{NAME}['\"]"]))


def tracked_files() -> list[str]:
    result = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"not a git checkout ({result.stderr.decode(errors='replace').strip()})")
    return [name for name in result.stdout.decode().split("\0") if name]


def test_no_tracked_file_names_the_folder_beside_the_repository():
    offenders = []
    for name in tracked_files():
        path = ROOT / name
        if not path.is_file() or path.is_symlink():
            continue
        text = path.read_bytes().decode(errors="replace")
        offenders += [f"{name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}" for m in REACHES_OUT.finditer(text)]
    assert offenders == [], "these read outside the repository:\n" + "\n".join(offenders)


def test_the_pattern_finds_each_spelling_of_the_sibling_folder():
    for spelling in [f"{SIBLING}/DESIGN.md", f'ROOT.parent / "{NAME}" / "reference"', f"Path(x).parents[1] / '{NAME}'",
                     f'os.path.join("..", "{NAME}")']:
        assert REACHES_OUT.search(spelling), spelling
    assert not REACHES_OUT.search(f"a {NAME} machine, a {NAME} expert, {NAME}/ of the worktree")


def test_the_reference_facts_are_tracked_in_the_repository():
    tracked = set(tracked_files())
    for name in ("README.md", "model_args.json", "launcher_flags.txt", "upstream_slime_flags.tsv"):
        assert str((REFERENCE / name).relative_to(ROOT)) in tracked


def _named_configs(text: str) -> list[str]:
    return re.findall(r"`(run_[\w.]+)`", text)


def test_the_readme_lists_every_primary_config_once_split_by_where_it_runs():
    from slime.config.compose import namespace_from_config, primary_configs

    readme = (ROOT / "README.md").read_text()
    paragraph = readme[readme.index("Primary configs —"):readme.index("Every problem of a config is reported at once")]
    gpu_part, _, cpu_part = paragraph.partition("on a CPU")
    named = _named_configs(paragraph)
    assert sorted(named) == primary_configs() and len(named) == len(set(named))
    for name in named:
        on_gpus = namespace_from_config(name, environ={"BASE_FOLDER": "/data"}).rollout_backend == "sglang"
        assert (name in _named_configs(gpu_part)) == on_gpus, name
    assert name in _named_configs(cpu_part)


def test_the_docs_count_the_primary_configs_as_the_clone_has_them():
    from slime.config.compose import primary_configs

    checks = (ROOT / "docs" / "checks.md").read_text()
    counted = re.findall(r"the (\d+)\s+primary\s+configs", checks)
    assert counted and all(int(n) == len(primary_configs()) for n in counted), counted


def test_the_architecture_page_names_only_what_exists_and_every_package():
    """docs/architecture.md stays true to the code: each module, name and file it names exists, and
    each package of slime/ is on its map."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    missing = [dotted for dotted in sorted(set(re.findall(r"`(slime(?:\.\w+)+)", page))) if not _defined(dotted)]
    assert missing == []
    paths = set(re.findall(r"`((?:slime|tests|tools|scripts|docs|conf|benchmarks)/[\w./-]*\w)`", page))
    assert [p for p in sorted(paths) if "*" not in p and not (ROOT / p).exists()] == []
    packages = sorted({str(p.parent.relative_to(ROOT)) for p in (ROOT / "slime").rglob("*.py")})
    assert [p for p in packages if f"`{p}/`" not in page and p != "slime"] == []


def _defined(dotted: str) -> bool:
    """A module or package (namespace packages too) of the repository, or a name defined at the top of a
    module (read, not imported)."""
    import ast

    path = ROOT / dotted.replace(".", "/")
    if path.with_suffix(".py").is_file() or (path.is_dir() and any(path.glob("*.py"))):
        return True
    module, _, name = dotted.rpartition(".")
    source = ROOT / (module.replace(".", "/") + ".py")
    if not source.is_file():
        return False
    tree = ast.parse(source.read_text())
    names = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    names |= {target.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
              for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
              if isinstance(target, ast.Name)}
    return name in names
