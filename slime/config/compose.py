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

from slime.config.generate import CONF_DIR, ROOT, Generated, GenerationError, generate
from slime.config.provenance import Provenance
from slime.config.shell import expand
from slime.utils.arguments import parse_args


@contextmanager
def hydra_context() -> Iterator[None]:
    """Hydra initialised on conf/ (reused when already initialised, e.g. inside @hydra.main)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        yield
        return
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None, job_name="slime"):
        yield


def primary_configs() -> list[str]:
    """The names of the primary configs: conf/run_*.yaml (the one list the README, docs/checks.md, the
    generator's --help, the launchers' --help and tools/check_config.py --all show)."""
    from slime.config.hydra_errors import primary_config_names

    return primary_config_names([CONF_DIR])


def compose_config(config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    from hydra import compose

    with hydra_context():
        return compose(config_name=config_name, overrides=list(overrides))


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
