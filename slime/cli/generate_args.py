#!/usr/bin/env python3
"""Compose conf/ with Hydra and print the bash arrays train.py takes.

    python tools/generate_args.py --config-name run_qwen3_4B > args.sh && source args.sh
    python tools/generate_args.py --config-name run_qwen3_4B optimizer.lr=2e-6 -o args.sh
    python tools/generate_args.py --config-name run_qwen3_4B --multirun optimizer.lr=1e-6,3e-6
    python tools/generate_args.py --goldens [--check]

Hydra's options work as usual (--cfg job, --info defaults-tree, --help, --multirun, overrides);
the generator's own are listed by --help. The arrays are validated by the trainer's parser
before anything is written: on any problem nothing reaches stdout or the output file, every
problem is explained on stderr, and the exit status is 2.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path

from slime.config.argsfile import (REVISION, Reproduction, command_of_header, project_revision, read_header, render_bash,
                                   render_json)
from slime.config.generate import GenerationError, Generated, generate
from slime.config.hydra_command import (config_dirs, hydra_command_line, parse_hydra_command_line, take_shown_config,
                                        with_generator_help)
from slime.config.provenance import Provenance
from slime.config.search_path import SearchPath, folder_of, searchpath_overrides
from slime.config.show import provenance_text, resolved_config
from slime.config.sources import config_problems, defaults_recursion, override_problems, yaml_syntax_problems
from slime.config.sweeps import SweepManifest, remove_empty_sweep, write_sweep
from slime.utils.checkout import CONF_DIR
from slime.utils.files import output_problems, write_output


def own_options() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("-o", "--output", type=Path)
    parser.add_argument("--format", choices=("bash", "json"), default="bash")
    parser.add_argument("--plan", "--dry-run", action="store_true", dest="plan")
    parser.add_argument("--provenance", action="store_true")
    parser.add_argument("--which")
    parser.add_argument("--goldens", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--regenerate", type=Path, metavar="ARGS_FILE")
    return parser


# The primary config when no --config-name is given: Hydra's settings for this tool and nothing else,
# so that even then no outputs/ folder or log file is left behind.
DEFAULT_CONFIG = "generator"


class _StdoutForData(io.TextIOBase):
    """sys.stdout while Hydra runs: what it prints on purpose (--cfg, --info, --help) reaches stdout;
    what the logging module writes (Hydra's log lines, whatever logging config was chosen, which
    may say ext://sys.stdout) goes to stderr, so that stdout carries nothing but data."""

    def __init__(self, stdout):
        self.stdout = stdout

    def write(self, text: str) -> int:
        caller = sys._getframe(1).f_globals.get("__name__")
        return (sys.stderr if caller == "logging" else self.stdout).write(text)

    def flush(self) -> None:
        self.stdout.flush()

    def isatty(self) -> bool:
        return self.stdout.isatty()


@dataclass
class Job:
    """What one Hydra job produced: its generated arrays or its error, and where its file goes."""

    overrides: list[str]
    generated: Generated | None
    error: GenerationError | None
    text: str
    output_dir: Path
    sweep_dir: Path | None
    read_files: list[Path] = field(default_factory=list)  # the config files composed, which -o must not name


class Generator:
    def __init__(self, options: argparse.Namespace):
        self.options = options
        self.jobs: list[Job] = []
        self.lookup: list[str] = []  # the task overrides and a hydra.searchpath override
        self.search_path: tuple[str, ...] = ()

    def task(self, cfg) -> None:
        """The Hydra task: runs once, or once per job of a sweep; never raises for config problems."""
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        from omegaconf import OmegaConf

        hydra_cfg = HydraConfig.get()
        name = "" if hydra_cfg.job.config_name == DEFAULT_CONFIG else hydra_cfg.job.config_name
        # As typed: iterating the node would resolve the ${…} inside each override string.
        overrides = OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False)
        # Hydra's own lookups of the defaults list (provenance, the files read) need the search path
        # the command line gave; the header records the one Hydra used, as absolute folders.
        self.lookup = [*overrides, *searchpath_overrides(OmegaConf.to_container(hydra_cfg.overrides.hydra))]
        self.search_path = tuple(folder_of(str(entry), Path.cwd()) for entry in hydra_cfg.searchpath)
        multirun = hydra_cfg.mode == RunMode.MULTIRUN
        sweep_dir = Path(hydra_cfg.sweep.dir).resolve() if multirun else None
        output_dir = Path(hydra_cfg.runtime.output_dir)
        if not name:
            from slime.config.compose import primary_configs

            error = GenerationError("", ["give --config-name NAME: one of " + ", ".join(primary_configs())])
            self.jobs.append(Job(overrides, None, error, "", output_dir, sweep_dir))
            return
        if self.options.misplaced:  # trainer flags or bare flag keys on the command line: say what was meant
            from slime.config.misplaced import hints

            error = GenerationError(name, hints(self.options.misplaced, OmegaConf.to_container(cfg, resolve=False)))
            self.jobs.append(Job(overrides, None, error, "", output_dir, sweep_dir))
            return
        read_files = self.read_files(name, self.lookup) if self.options.output and not multirun else []
        if self.options.shown_config:
            text, error = resolved_config(name, cfg, *self.options.shown_config)
            self.jobs.append(Job(overrides, None, error, text, output_dir, None))
            return
        try:
            generated = generate(cfg, name, overrides, provenance=self.provenance(name))
            text = self.render(generated, cfg)
        except GenerationError as err:
            self.jobs.append(Job(overrides, None, err, "", output_dir, sweep_dir, read_files))
            return
        self.jobs.append(Job(overrides, generated, None, text, output_dir, sweep_dir, read_files))

    @staticmethod
    def read_files(name: str, overrides: list[str]) -> list[Path]:
        from slime.config.provenance import config_files

        return config_files(name, overrides)

    def provenance(self, name: str):
        lookup = list(self.lookup)
        return lambda: Provenance.compute(name, lookup)

    def render(self, gen: Generated, cfg) -> str:
        o = self.options
        if o.plan:
            from slime.launch.plan import build_plan, format_plan

            return format_plan(build_plan(gen.namespace, gen.entry_point))
        if o.provenance or o.which:
            return provenance_text(gen.config_name, cfg, gen.explainer.provenance, o.which)
        if o.format == "json":
            return render_json(gen)
        return render_bash(gen, reproduction=Reproduction(tuple(o.config_dirs), project_revision(), o.config_path,
                                                          self.search_path))

    def finish(self) -> int:
        if not self.jobs:  # --help, --cfg, --info: Hydra printed what was asked
            return 0
        failed = [job for job in self.jobs if job.error]
        unwritable = (output_problems(self.options.output, self.jobs[0].read_files)
                      if self.options.output and self.jobs[0].sweep_dir is None else [])
        if failed or unwritable:
            for job in failed:
                prefix = f"job {job.overrides}: " if len(self.jobs) > 1 else ""
                print(prefix + job.error.render(), file=sys.stderr)
            for problem in unwritable:
                print(f"generate_args: {problem}", file=sys.stderr)
            self.remove_empty_sweep()
            return 2
        if self.jobs[0].sweep_dir is not None:
            return self.write_sweep()
        job = self.jobs[0]
        if self.options.output:
            try:
                write_output(self.options.output, job.text)
            except OSError as err:
                print(f"generate_args: -o {self.options.output}: cannot write: {err.strerror}", file=sys.stderr)
                return 2
        else:
            sys.stdout.write(job.text)
        return 0

    def remove_empty_sweep(self) -> None:
        remove_empty_sweep(self.jobs[0].sweep_dir, [job.output_dir for job in self.jobs])

    def write_sweep(self) -> int:
        o = self.options
        if o.output or o.plan or o.provenance or o.which:
            print("with --multirun each job's file goes to <hydra.sweep.dir>/<job>/; "
                  "-o, --plan, --provenance and --which apply to single runs", file=sys.stderr)
            self.remove_empty_sweep()
            return 2
        sweep_dir = self.jobs[0].sweep_dir
        write_sweep(sweep_dir, self.jobs[0].generated.config_name,
                    [(job.overrides, job.output_dir, job.text) for job in self.jobs],
                    "args.json" if o.format == "json" else "args.sh")
        print(f"{len(self.jobs)} args files in {sweep_dir} (manifest.yaml lists each job's overrides)",
              file=sys.stderr)
        return 0


def regenerate(path: Path) -> int:
    """Rebuild an args file from its header; 0 when the result is the same file, 1 with a diff when
    it differs (a different revision is reported, not counted as a difference), 2 on errors, with
    nothing run when the header holds anything but what the generator writes there."""
    import difflib

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        print(f"generate_args: --regenerate {path}: cannot read it ({getattr(err, 'strerror', None) or err})",
              file=sys.stderr)
        return 2
    fields = read_header(text)
    if "config" not in fields or "overrides" not in fields:
        print(f"generate_args: --regenerate {path}: not an args file this tool wrote (its header lacks the "
              "'# config:' and '# overrides:' lines)", file=sys.stderr)
        return 2
    hydra_args, problems = command_of_header(fields)
    if problems:
        sys.stderr.write("".join(f"generate_args: --regenerate {path}: {p}\n" for p in problems))
        print(f"generate_args: --regenerate {path}: nothing was run; the header says how the file was generated, "
              "and the generator writes only config names, Hydra overrides and absolute folders there",
              file=sys.stderr)
        return 2
    fresh = io.StringIO()
    with contextlib.redirect_stdout(fresh):
        status = run(own_options().parse_args([]), hydra_args)
    if status:
        return status
    before, after = fields.get("revision"), read_header(fresh.getvalue()).get("revision")
    if before != after:
        print(f"generate_args: {path} was generated at revision {before}; this checkout is at {after}",
              file=sys.stderr)

    def comparable(lines: str) -> list[str]:
        return [line for line in lines.splitlines(True) if not line.startswith(REVISION)]

    if comparable(text) == comparable(fresh.getvalue()):
        print(f"generate_args: {path} regenerates to the same arrays", file=sys.stderr)
        return 0
    sys.stdout.writelines(difflib.unified_diff(comparable(text), comparable(fresh.getvalue()), f"{path}",
                                               f"{path} (regenerated)"))
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    options, hydra_args = own_options().parse_known_args(argv)
    if options.goldens:
        from slime.config.goldens import update_goldens

        return update_goldens(check=options.check)
    if options.check:
        print("--check goes with --goldens", file=sys.stderr)
        return 2
    if options.regenerate:
        at = next(i for i, arg in enumerate(argv) if arg.startswith("--regenerate"))
        others = argv[:at] + argv[at + (1 if "=" in argv[at] else 2):]
        if others:
            print(f"generate_args: --regenerate takes the args file alone (its header says how to generate it), "
                  f"not also {' '.join(others)}", file=sys.stderr)
            return 2
        return regenerate(options.regenerate)
    return run(options, hydra_args)


def _search_path(options: argparse.Namespace,
                 hydra_args: list[str]) -> tuple[list[str], SearchPath, argparse.Namespace | None]:
    """Hydra's command line in one spelling (``--cfg job --resolve`` taken off: the generator shows it, a
    relative -cp made absolute), the folders it will read configs from, and the command line parsed."""
    cwd = Path.cwd()
    command = parse_hydra_command_line(hydra_args)
    options.shown_config, options.config_path = None, None
    if command is None:  # Hydra will refuse the command line and say why; still check what -cd names
        named = config_dirs(hydra_args)
        search = SearchPath.of(None, str(named[-1]) if named else None, [], cwd)
    else:
        options.shown_config = take_shown_config(command)
        if command.config_path is not None:  # relative to here, as -cd is (Hydra's would mean tools/)
            options.config_path = command.config_path = folder_of(command.config_path, cwd)
        search = SearchPath.of(command.config_path, command.config_dir, command.overrides, cwd)
        hydra_args = hydra_command_line(command)
    options.config_dirs = [str(Path(search.config_dir).resolve())] if search.config_dir else []
    return hydra_args, search, command


def _register_primary_configs(config_dirs: list[Path]) -> None:
    """``${slime_primary_configs:}``, which the --help page (conf/hydra/help/slime.yaml) lists."""
    from omegaconf import OmegaConf

    from slime.config.hydra_errors import primary_config_names

    OmegaConf.register_new_resolver("slime_primary_configs", lambda: ", ".join(primary_config_names(config_dirs)),
                                    replace=True)


def _misplaced(hydra_args: list[str]) -> tuple[list[str], list]:
    """Hydra's arguments without the trainer flags (``--lr 2e-6``) and bare flag keys (``lr=2e-6``) in
    them, which the task then explains with the composed config (slime.config.misplaced)."""
    from slime.config.hydra_errors import config_groups
    from slime.config.misplaced import split

    return split(hydra_args, set(config_groups([*config_dirs(hydra_args), CONF_DIR])))


def _config_problems(search: SearchPath, config_name: str | None) -> list[str]:
    """Every config file's problem in the folders Hydra will read, before it reads one; the primary
    config's own hydra.searchpath is read (and its folders checked) once that file passed."""
    checked = search.folders()
    problems = config_problems(checked)
    if not problems:
        search.add_primary_config_searchpath(config_name)
        problems = config_problems([folder for folder in search.folders() if folder not in checked])
    return problems


def _refused_settings(command: argparse.Namespace, search: SearchPath) -> list[str]:
    """Hydra's own composition of the command line, made before Hydra acts on any of it: every setting
    that would make Hydra run code or write files (slime.config.hydra_policy). A command line Hydra
    cannot compose is left to Hydra, which then says why, before it acts on anything."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_automatic_config_search_path
    from hydra import version
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from slime.config.hydra_policy import refused

    version.setbase(None)  # as hydra.main(version_base=None) sets it
    name, overrides = command.config_name or DEFAULT_CONFIG, list(command.overrides)
    search_path = create_automatic_config_search_path(None, None, search.primary)
    if search.config_dir:  # where Hydra puts a --config-dir
        search_path.prepend(provider="command-line", path=f"file://{search.config_dir}",
                            anchor=SearchPathQuery(provider="schema"))
    try:
        hydra = Hydra.create_main_hydra2(task_name="generate_args", config_search_path=search_path)
        try:  # a sweep's base config: its jobs differ only by the sweep, which refused() looks at
            cfg = hydra.compose_config(name, overrides, run_mode=RunMode.MULTIRUN, with_log_configuration=False,
                                       validate_sweep_overrides=False)
        except RecursionError:  # Hydra would only show a traceback
            return [defaults_recursion(name, search.folders())]
        except Exception:  # noqa: BLE001 - Hydra's own error, which it reports when it runs
            return []
        return refused(cfg, name, overrides)
    finally:
        GlobalHydra.instance().clear()


def run(options: argparse.Namespace, hydra_args: list[str]) -> int:
    """The generator on Hydra's command line, with its own options already taken."""
    import hydra

    from slime.config.hydra_policy import install_baseline

    install_baseline()
    hydra_args, options.misplaced = _misplaced(hydra_args)
    hydra_args, search, command = _search_path(options, hydra_args)
    printing = command is not None and (command.help or command.hydra_help or command.cfg or command.info
                                        or command.shell_completion)
    if options.output and printing:
        print(f"generate_args: -o {options.output} writes the generated file, which Hydra's --help, --cfg and "
              "--info do not make (they print on stdout: redirect it instead); --cfg with --resolve is shown by "
              "the generator and can be written with -o", file=sys.stderr)
        return 2
    problems = _config_problems(search, command.config_name if command is not None else None)
    if not problems and command is not None:
        problems = override_problems(command.overrides) or _refused_settings(command, search)
    if problems:
        sys.stderr.write("".join(f"generate_args: {p}\n" for p in problems))
        return 2
    config_dirs = search.folders()
    _register_primary_configs(config_dirs)
    generator = Generator(options)
    sys.argv = [sys.argv[0], *with_generator_help(hydra_args)]
    manifest = SweepManifest(hydra_args)
    captured = io.StringIO()
    # Hydra prints --info through its logger: then what the logging module writes is the data asked for.
    asks_info = command is not None and command.info is not None
    stdout = sys.stdout if asks_info else _StdoutForData(sys.stdout)
    try:
        with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(stdout):
            hydra.main(config_path=search.primary, config_name=DEFAULT_CONFIG, version_base=None)(generator.task)()
    except ValueError as err:  # Hydra's word on its own options that do not go together (--resolve alone, …)
        sys.stderr.write(captured.getvalue() + f"generate_args: {err}\n")
        manifest.restore()
        return 2
    except SystemExit as stop:
        if stop.code in (0, None):
            raise
        # Hydra failed before the task ran: show YAML syntax errors plainly instead of a traceback, and
        # the errors the generator knows in its own words.
        from slime.config.hydra_errors import explain

        problems = yaml_syntax_problems(config_dirs) or explain(captured.getvalue(), hydra_args, config_dirs)
        sys.stderr.write("".join(f"generate_args: {p}\n" for p in problems) if problems else captured.getvalue())
        manifest.restore()
        return 2
    sys.stderr.write(captured.getvalue())
    status = generator.finish()
    if status:
        manifest.restore()
    return status


if __name__ == "__main__":
    sys.exit(main())
