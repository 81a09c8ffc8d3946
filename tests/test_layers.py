"""The package layers of slime/ (docs/architecture.md, "Package map"): no import circle, function-local
imports counted; each package imports only the layers below it; the train backends never import Ray;
the argument machinery never imports torch or Ray; nothing but the trainer's command line imports the
trainer; utils/ stays small; one class is named Layout; no sys.path editing; tests share code through
tests/helpers/ only."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

from tests.helpers.paths import ROOT

# package → the packages it may import (besides itself); docs/architecture.md draws the same map
ALLOWED = {
    "slime.utils": set(),
    "slime.arguments": {"slime.utils"},
    "slime.model": {"slime.arguments", "slime.utils"},
    "slime.config": {"slime.model", "slime.arguments", "slime.utils"},
    "slime.importer": {"slime.config", "slime.arguments", "slime.utils"},
    "slime.algorithms": set(),
    "slime.rewards": {"slime.utils"},
    "slime.rollout": {"slime.rewards", "slime.utils"},
    "slime.backends": {"slime.algorithms", "slime.arguments", "slime.model", "slime.rollout", "slime.utils"},
    "slime.ray": {"slime.backends", "slime.arguments", "slime.rollout", "slime.utils"},
    "slime.engines": {"slime.ray", "slime.backends", "slime.rollout", "slime.arguments", "slime.utils"},
    "slime.launch": {"slime.engines", "slime.backends", "slime.config", "slime.model", "slime.arguments",
                     "slime.utils"},
    "slime.trainer": {"slime.engines", "slime.ray", "slime.backends", "slime.rollout", "slime.rewards",
                      "slime.algorithms", "slime.arguments", "slime.utils"},
}
ALLOWED["slime.cli"] = set(ALLOWED)  # every other package (the trainer included)
HEAVY = ("torch", "ray", "megatron", "transformers")


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / "slime").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def imports(name: str, path: Path) -> list[str]:
    """Every module ``name`` imports, at any depth of its code (TYPE_CHECKING blocks left out)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[str] = []

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                continue
            if isinstance(child, ast.Import):
                found.extend(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                found.extend(f"{base}.{alias.name}" for alias in child.names)
                found.append(base)
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    edges = {}
    for name, path in known.items():
        targets = set()
        for target in imports(name, path):
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target != "slime":
                targets.add(target)
        edges[name] = targets
    return edges


def layer(module: str) -> str:
    return ".".join(module.split(".")[:2])


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


def test_no_import_circle_counting_function_local_imports():
    assert cycles(graph()) == []


def test_each_package_imports_only_the_layers_below_it():
    bad = sorted(f"{a} → {b}" for a, targets in graph().items() for b in targets
                 if layer(a) != layer(b) and layer(b) not in ALLOWED[layer(a)])
    assert bad == []


def test_every_package_is_in_the_layer_map():
    assert {layer(m) for m in modules()} - {"slime"} == set(ALLOWED)


def test_the_train_backends_never_import_ray():
    known = modules()
    bad = [f"{name} imports {target}" for name, path in known.items() if name.startswith("slime.backends")
           for target in imports(name, path) if target.split(".")[0] == "ray"]
    assert bad == []


def test_the_argument_machinery_imports_no_torch_or_ray():
    known = modules()
    bad = [f"{name} imports {target}" for name, path in known.items() if name.startswith("slime.arguments")
           for target in imports(name, path) if target.split(".")[0] in HEAVY]
    assert bad == []


def test_only_the_trainers_command_line_imports_the_trainer():
    assert sorted(a for a, targets in graph().items() if "slime.trainer" in targets) == ["slime.cli.train"]


def test_utils_stays_under_1500_lines():
    utils = [p for name, p in modules().items() if layer(name) == "slime.utils"]
    assert sum(len(p.read_text().splitlines()) for p in utils) <= 1500


def test_one_class_is_named_layout():
    named = [str(p.relative_to(ROOT)) for p in modules().values()
             for node in ast.walk(ast.parse(p.read_text())) if isinstance(node, ast.ClassDef) and node.name == "Layout"]
    assert named == ["slime/backends/base.py"]


def test_every_package_says_what_it_holds_and_may_import():
    for name, path in modules().items():
        if path.name == "__init__.py" and name != "slime":
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            assert "May import" in doc, name


def _tracked_python() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [name for name in listed.stdout.split() if (ROOT / name).is_file()]


def test_no_tracked_python_file_edits_sys_path():
    pattern = "sys.path." + "insert"  # spelled apart so that this file does not list itself
    assert [name for name in _tracked_python() if pattern in (ROOT / name).read_text()] == []


def test_no_test_module_imports_another():
    bad = []
    for name in _tracked_python():
        if not name.startswith("tests/"):
            continue
        for node in ast.walk(ast.parse((ROOT / name).read_text())):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad += [f"{name} imports {m}" for m in modules
                    if m.startswith("tests.") and m.rsplit(".", 1)[-1].startswith(("test_", "conftest"))]
    assert bad == []
