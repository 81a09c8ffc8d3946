"""Import an existing launch script: capture its real argv, write the config in the project's style,
prove parity with the original, and only then write the files.

Parity: the imported config's generated argv parses, with ``parse_args``, to the same Namespace as
the original argv, flag by flag; where a flag's tokens differ in spelling only (``0.00`` → ``0.0``)
it is listed as a re-spelling. Any difference fails the import and nothing is written.
"""

from __future__ import annotations

import fnmatch
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from slime.config.argsfile import render_bash
from slime.config.flatten import ARRAY_GROUPS
from slime.config.generate import GenerationError, Generated, generate
from slime.config.goldens import model_script
from slime.config.model_files import load_model_entries, model_argv
from slime.arguments.entry_points import DEFAULT_ENTRY_POINT
from slime.config.launcher_template import launcher_name, render_launcher
from slime.config.provenance import Provenance
from slime.config.shell import referenced_names, shell_refs
from slime.importer.capture import SOURCED_LIMIT, Capture, CaptureError, capture, read_bounded
from slime.importer.convert import Converted, ModelOverride, convert
from slime.importer.yaml_out import mapping, value
from slime.arguments.parser import ArgumentProblems, parse_args
from slime.arguments.registry import flag_by_option
from slime.arguments.flags import APPEND
from slime.utils.files import atomic_write
from slime.utils.checkout import CONF_DIR, ROOT


class ImportFailed(Exception):
    """The import cannot be written; the message lists every reason."""


class ModelArgsProblems(ArgumentProblems):
    """The script's MODEL_ARGS themselves do not parse."""


@dataclass(frozen=True)
class ImportTarget:
    """Where an import writes: a folder laid out like the repository (``conf/``, ``conf/model/``,
    ``scripts/``, ``scripts/models/``, ``tests/golden/``), the repository itself by default.

    Configs written elsewhere compose on top of the repository's ``conf/`` (their defaults name its
    groups), as ``tools/generate_args.py -cd <folder>/conf`` does."""

    root: Path = ROOT

    @property
    def conf(self) -> Path:
        return self.root / "conf"

    @property
    def is_repository(self) -> bool:
        return self.root.resolve() == ROOT

    def model_dirs(self) -> list[Path]:
        """Where existing model files are looked up: this target's, then the repository's."""
        return list(dict.fromkeys([self.conf / "model", CONF_DIR / "model"]))

    def config_file(self, name: str) -> Path:
        return self.conf / f"{name}.yaml"

    def model_file(self, model: str) -> Path:
        return self.conf / "model" / f"{model}.yaml"

    def launcher(self, name: str) -> Path:
        return self.root / "scripts" / launcher_name(name)

    def model_script(self, model: str) -> Path:
        return self.root / "scripts" / "models" / f"{model}.sh"

    def golden(self, name: str) -> Path:
        return self.root / "tests" / "golden" / f"{name}.sh"

    def generate_command(self, name: str) -> str:
        config_dir = "" if self.is_repository else f"-cd {shown(self.conf)} "
        return f"python tools/generate_args.py {config_dir}--config-name {name} > args.sh"


def shown(path: Path) -> str:
    """A path as a message shows it: relative to the repository when inside it."""
    path = path.absolute()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


@dataclass
class ImportResult:
    name: str
    files: dict[Path, str]  # path → content, written only after parity holds
    model: str
    new_model: bool
    respelled: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    defaults: dict[str, str] = field(default_factory=dict)  # of the variables, those with the script's default
    substituted: list[str] = field(default_factory=list)  # values from command substitutions, and where they went


def default_name(script: Path) -> str:
    """``run-qwen3-4B.sh`` → ``run_qwen3_4B``."""
    return script.stem.replace("-", "_") if script.stem.startswith("run") else "run_" + script.stem.replace("-", "_")


def _namespace(tokens: list[str]) -> dict:
    return vars(parse_args(tokens, validate=False))


def find_model(model_tokens: list[str], sourced: list[Path], name: str,
               target: ImportTarget = ImportTarget()) -> tuple[str, bool]:
    """An existing model file with the same MODEL_ARGS (the target's or conf/model's), or the name
    for a new one."""
    model_dirs = target.model_dirs()
    if model_tokens and not any("${" in token for token in model_tokens):
        try:
            wanted = _namespace(model_tokens)
        except ArgumentProblems as err:
            raise ModelArgsProblems(err.problems, "MODEL_ARGS") from None
        for model_dir in model_dirs:
            for path in sorted(model_dir.glob("*.yaml")):
                if _namespace(model_argv(load_model_entries(path))) == wanted:
                    return path.stem, False
    model_files = [p for p in sourced if "model" in p.parent.name or "model" in p.stem]
    stem = model_files[-1].stem if model_files else f"{name.removeprefix('run_')}_model"
    if any((model_dir / f"{stem}.yaml").exists() for model_dir in model_dirs):
        stem = f"{stem}_{name.removeprefix('run_')}"
    return stem, True


_GLOB_WORD = re.compile(r"[^\s'\"()=]*[\[*?][^\s'\"()]*")


def model_args_problems(captured: Capture, model_tokens: list[str], err: ArgumentProblems) -> str:
    """Why the script's MODEL_ARGS do not parse, each problem with the file that defines them; a value bash
    expanded as a glob to the name of a file beside the script is named with its spelling and the fix."""
    files = [p for p in captured.sourced if p.is_file()] or [captured.script]
    lines = [f"MODEL_ARGS (from {', '.join(shown(p) for p in dict.fromkeys(files))}) do not parse as train.py's flags:"]
    lines += [f"  - {problem.message}" for problem in err.problems]
    for path in dict.fromkeys([captured.script, *files]):
        text = read_bounded(path, SOURCED_LIMIT).decode(errors="replace")
        words = {w for line in text.splitlines() if not line.lstrip().startswith("#") for w in _GLOB_WORD.findall(line)}
        for token in model_tokens:
            if (captured.script.parent / token).exists():
                for word in sorted(w for w in words if fnmatch.fnmatchcase(token, w)):
                    lines.append(f"  bash expanded the unquoted {word} of {shown(path)} to {token}, the name of a file "
                                 f"in {shown(captured.script.parent)} (where the script runs): quote it, '{word}', "
                                 "so bash passes it as written")
    return "\n".join(lines)


def render_config(script: Path, name: str, model: str, converted: Converted, variables: list[str],
                  target: ImportTarget = ImportTarget(), defaults: dict[str, str] | None = None,
                  entry_point: str = DEFAULT_ENTRY_POINT) -> str:
    lines = [f"# Imported from {script.name} by tools/import_launcher.py.",
             f"#   {target.generate_command(name)}"]
    if variables:
        shown_names = [f"{v} (default {defaults[v]})" if v in (defaults or {}) else v for v in variables]
        lines.append("# Shell variables it refers to (export them before sourcing): " + ", ".join(shown_names))
    lines += ["defaults:", "  - generator", f"  - model: {model}", "  - _self_", ""]
    if entry_point != DEFAULT_ENTRY_POINT:
        lines += [f"# the launcher runs {entry_point}, as the script did", f"entry_point: {entry_point}", ""]
    text = "\n".join(lines) + "\n"
    for group in ARRAY_GROUPS:
        if group == "model":
            text += render_model_overrides(model, converted.model_overrides)
            continue
        entries = converted.groups.get(group)
        if entries:
            text += f"{group}:\n{mapping(entries, '  ')}\n"
    return text.rstrip("\n") + "\n"


def render_model_overrides(model: str, overrides: dict[str, ModelOverride]) -> str:
    """The primary config's ``model:`` section: the values later arrays of the launcher give model flags,
    over model/<model>.yaml's (which holds MODEL_ARGS's, as the launcher's model file did)."""
    if not overrides:
        return ""
    lines = [f"# over model/{model}.yaml: set again later on the launcher's train.py line, where argparse keeps the last",
             "model:"]
    for key, override in overrides.items():
        lines.append(f"  # from {override.source}; model/{model}.yaml has {value(override.model_value)}")
        lines.append(mapping({key: override.value}, "  ").rstrip("\n"))
    return "\n".join(lines) + "\n\n"


def render_model(model: str, script: Path, entries: dict) -> str:
    return ("# @package _global_\n"
            f"# {model}: imported from the MODEL_ARGS of {script.name}.\n"
            f"# model: the Megatron flags (MODEL_ARGS); scripts/models/{model}.sh is generated from them.\n"
            f"model:\n{mapping(entries, '  ')}")


@contextmanager
def _overlay(files: dict[str, str], target: ImportTarget):
    """A Hydra context whose primary configs include ``files`` on top of the target's conf/ and
    the repository's: (its search path override, a function naming the files of a Provenance by
    where the import writes them)."""
    from hydra import initialize_config_dir

    dirs = [d.resolve() for d in (target.conf, CONF_DIR) if d.is_dir()]
    search_path = ",".join(f"file://{d}" for d in dict.fromkeys(dirs))
    with tempfile.TemporaryDirectory(prefix="slime-import-conf-") as tmp:
        for relative, text in files.items():
            (Path(tmp) / relative).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / relative).write_text(text)
        with initialize_config_dir(config_dir=tmp, version_base=None, job_name="import"):
            yield [f"hydra.searchpath=[{search_path}]"], lambda provenance: Provenance(
                {key: source.replace(str(Path(tmp).resolve()), shown(target.conf)).replace(tmp, shown(target.conf))
                 for key, source in provenance.sources.items()})


def parity(original: list[str], generated: list[str]) -> tuple[list[str], list[str]]:
    """(differences, re-spelled flags) between two argvs, compared as parsed Namespaces."""
    before, after = _namespace(original), _namespace(generated)
    by_attr = {}
    for f in flag_by_option().values():
        by_attr.setdefault(f.attr, f.name)
    differences = [f"{by_attr.get(k, k)}: the launcher gives {before.get(k)!r}, the config {after.get(k)!r}"
                   for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    respelled = [f"{by_attr.get(k, k)}" for k in sorted(before)
                 if before[k] == after.get(k) and _tokens_of(original, by_attr.get(k)) != _tokens_of(generated, by_attr.get(k))]
    return differences, respelled


def _tokens_of(argv: list[str], option: str | None) -> list[list[str]]:
    """The tokens of the occurrence of ``option`` that argparse keeps: the last one, or every one of a
    repeatable flag."""
    if option is None:
        return []
    occurrences = []
    for start in (i for i, token in enumerate(argv) if token == option):
        end = next((i for i in range(start + 1, len(argv)) if argv[i].startswith("--")), len(argv))
        occurrences.append(argv[start:end])
    return occurrences if flag_by_option()[option].kind == APPEND else occurrences[-1:]


def import_launcher(script: Path, name: str | None = None, values: dict[str, str] | None = None,
                    args: list[str] | None = None, target: ImportTarget = ImportTarget()) -> ImportResult:
    """Everything an import writes into ``target``, after capture, conversion, validation and the
    parity check."""
    name = name or default_name(script)
    try:
        captured: Capture = capture(script, args=args, values=values)
    except CaptureError as err:
        raise ImportFailed(str(err)) from None
    converted = convert(captured.argv, captured.arrays)
    if converted.problems:
        raise ImportFailed(f"{script.name}: " + "; ".join(converted.problems))
    try:
        model, new_model = find_model(converted.model_tokens, captured.sourced, name, target)
    except ModelArgsProblems as err:
        raise ImportFailed(model_args_problems(captured, converted.model_tokens, err)) from None
    override_notes = [f"{o.option}: {o.source} gives {value(o.value)} after MODEL_ARGS's {value(o.model_value)}, and "
                      f"argparse keeps the last: the config's model: section overrides model/{model}.yaml with it"
                      for o in converted.model_overrides.values()]
    held = converted.argv(captured.argv)
    variables = [v for v in captured.variables if any(v in shell_refs(token) for token in held)]
    required = set(referenced_names(held))
    defaults = {v: d for v, d in captured.defaults.items() if v in variables and v not in required}
    config_text = render_config(script, name, model, converted, variables, target, defaults, captured.entry_point)
    overlay = {f"{name}.yaml": config_text}
    if new_model:
        overlay[f"model/{model}.yaml"] = render_model(model, script, converted.groups.get("model", {}))
    with _overlay(overlay, target) as (search_path, shown_as):
        from hydra import compose

        try:
            cfg = compose(name, overrides=search_path)
            # Where a value came from is looked up in the same search path, the files named as they will be written.
            gen: Generated = generate(cfg, name, [], provenance=lambda: shown_as(Provenance.compute(name, search_path)))
        except (GenerationError, ArgumentProblems) as err:
            raise ImportFailed(f"the imported config does not validate:\n{err}") from None
    differences, respelled = parity(converted.argv(captured.argv), gen.argv)
    if gen.entry_point != captured.entry_point:
        differences.append(f"entry point: the launcher runs {captured.entry_point}, the config {gen.entry_point}")
    if differences:
        raise ImportFailed("parity check failed, flag by flag:\n  - " + "\n  - ".join(differences))
    files = {target.config_file(name): config_text,
             target.launcher(name): render_launcher(name, config_text.splitlines()[0].lstrip("# ")),
             target.golden(name): render_bash(gen)}
    if new_model:
        model_text = overlay[f"model/{model}.yaml"]
        files[target.model_file(model)] = model_text
        files[target.model_script(model)] = model_script_of(model, model_text)
    return ImportResult(name, files, model, new_model, respelled, captured.notes + converted.notes + override_notes, variables, defaults,
                        substituted_values(captured))


def substituted_values(captured: Capture) -> list[str]:
    """``SECRET=$(cat /run/key) gave 'hunter2', written as --wandb-key`` for each value a command
    substitution of the script produced that the config now holds: a file the script read (a key, a
    token) would be committed with it."""
    lines = []
    for name, (command, value) in captured.substituted.items():
        flags = [captured.argv[i - 1] if i and captured.argv[i - 1].startswith("-") else captured.argv[i]
                 for i, token in enumerate(captured.argv) if value.strip() in token]
        shown_value = value if len(value) <= 200 else value[:200] + "…"
        lines.append(f"{name}={command} gave {shown_value!r}, written as {', '.join(dict.fromkeys(flags))}")
    return lines


def model_script_of(model: str, model_text: str) -> str:
    """scripts/models/<model>.sh of a model file that is not written yet."""
    with tempfile.TemporaryDirectory(prefix="slime-import-model-") as tmp:
        path = Path(tmp) / f"{model}.yaml"
        path.write_text(model_text)
        return model_script(path)


def write(result: ImportResult, force: bool = False) -> None:
    existing = [p for p in result.files if p.exists() and p.read_text() != result.files[p]]
    if existing and not force:
        raise ImportFailed("would overwrite " + ", ".join(shown(p) for p in existing)
                           + " (pass --force, or --name to choose another name)")
    for path, text in result.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text, mode=0o755 if path.suffix == ".sh" and path.parent.name == "scripts" else None)

