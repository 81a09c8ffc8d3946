"""Python entry points to the configs: compose with Hydra's Compose API, generate, get a Namespace.

``namespace_from_config("run_qwen3_4B", ["optimizer.lr=2e-6"])`` returns the Namespace
``train.py`` runs on, exactly as if the generated arrays had been sourced and passed on the
command line: defaults, types, derived values and every check included, shell references
expanded from the environment. It is the right way to do what
``argparse.Namespace(**OmegaConf.to_container(cfg))`` does naively.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from omegaconf import DictConfig

from slime.config.generate import Generated, GenerationError, generate
from slime.config.hydra_policy import install_baseline, refused
from slime.config.sources import defaults_recursion, override_problems
from slime.config.provenance import Provenance
from slime.config.shell import expand
from slime.arguments.parser import parse_args
from slime.utils.checkout import CONF_DIR


@contextmanager
def hydra_context() -> Iterator[None]:
    """Hydra initialised on conf/ (reused when already initialised, e.g. inside @hydra.main)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        yield
        return
    install_baseline()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None, job_name="slime"):
        yield


def primary_configs() -> list[str]:
    """The names of the primary configs: conf/run_*.yaml (the one list the README, docs/checks.md, the
    generator's --help, the launchers' --help and tools/check_config.py --all show)."""
    from slime.config.hydra_errors import primary_config_names

    return primary_config_names([CONF_DIR])


def compose_config(config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """The composed config, Hydra's node taken off once it is checked: GenerationError when a setting
    would make Hydra (or ``hydra.utils.instantiate``) run code or write files."""
    from hydra import compose
    from omegaconf import open_dict

    deep = override_problems(list(overrides))
    if deep:
        raise GenerationError(config_name, deep)
    with hydra_context():
        try:
            cfg = compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)
        except RecursionError:  # Hydra would only show a traceback
            raise GenerationError(config_name, [defaults_recursion(config_name, [CONF_DIR])]) from None
        problems = refused(cfg, config_name, list(overrides))
    if problems:
        raise GenerationError(config_name, problems)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def generate_config(config_name: str, overrides: Sequence[str] = ()) -> Generated:
    """Compose and generate in one Hydra context (provenance needs the defaults list)."""
    with hydra_context():
        cfg = compose_config(config_name, overrides)
        return generate(cfg, config_name, list(overrides))


def namespace_from_config(config: str | DictConfig, overrides: Sequence[str] = (),
                          environ: Mapping[str, str] | None = None) -> argparse.Namespace:
    """The trainer's Namespace for a config name plus Hydra overrides, or for a composed DictConfig."""
    if isinstance(config, str):
        gen = generate_config(config, overrides)
    else:
        gen = generate(config, "(composed config)", list(overrides), provenance=lambda: Provenance({}))
    return namespace_from_generated(gen, environ)


def namespace_from_generated(gen: Generated, environ: Mapping[str, str] | None = None) -> argparse.Namespace:
    """The trainer's Namespace for generated arrays, their shell references expanded from ``environ``."""
    environ = os.environ if environ is None else environ
    argv, unset = [], set()
    for token in gen.argv:
        try:
            argv.append(expand(token, environ))
        except KeyError as err:
            unset.add(err.args[0])
            argv.append(token)
    if unset:
        raise GenerationError(gen.config_name, [f"shell variable {name} is not set (the config refers to ${{{name}}})"
                                                for name in sorted(unset)])
    return parse_args(argv)
