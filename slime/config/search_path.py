"""Where Hydra will look for configs on one command line, known before Hydra reads any file.

Hydra reads configs from the primary config folder (``conf/``, or the ``--config-path``/``-cp``
folder instead), the ``--config-dir``/``-cd`` folder, and the entries of ``hydra.searchpath`` (an
override, or the primary config's own ``hydra:`` section; ``file://`` or plain paths, ``pkg://``
modules). The generator checks every config file in those folders before Hydra reads one
(``slime.config.sources``), and an args file's header records them so that ``--regenerate`` reads
the same folders from anywhere.

A relative ``-cp`` is taken relative to the current folder, as ``-cd`` is (Hydra's own rule, relative
to the script, would mean ``tools/``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from slime.utils.checkout import CONF_DIR


SEARCHPATH_KEY = "hydra.searchpath"


def folder_of(entry: str, cwd: Path) -> str:
    """A search path entry as an absolute folder (``file://`` dropped, a relative path taken from
    ``cwd``), or a ``pkg://`` entry unchanged."""
    if "://" in entry and not entry.startswith("file://"):  # pkg:// (or another scheme)
        return entry
    path = entry[len("file://"):] if entry.startswith("file://") else entry
    return str((cwd / path).resolve())


def searchpath_overrides(overrides: list[str]) -> list[str]:
    """The ``hydra.searchpath=[…]`` overrides among ``overrides``, as typed."""
    return [o for o in overrides if o.lstrip("+~").partition("=")[0] == SEARCHPATH_KEY]


def searchpath_of_overrides(overrides: list[str]) -> list[str]:
    """The entries a ``hydra.searchpath=[…]`` override gives, as Hydra's own parser reads them (the first
    such override, as Hydra takes it); none without one, or where Hydra will refuse it and say why."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for typed in searchpath_overrides(overrides)[:1]:
        try:
            value = OverridesParser.create().parse_override(typed).value()
        except Exception:  # noqa: BLE001 - any parse problem is Hydra's to report, with its own message
            return []
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [v for v in value if "${" not in v]  # an interpolation is Hydra's to resolve
    return []


def searchpath_of_config(file: Path) -> list[str]:
    """The ``hydra.searchpath`` a primary config file sets for itself (read only once it was checked)."""
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    hydra = data.get("hydra") if isinstance(data, dict) else None
    entries = hydra.get("searchpath") if isinstance(hydra, dict) else None
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, str) and "${" not in e]


@dataclass
class SearchPath:
    """The folders of one command line: ``primary`` (conf/ or -cp, absolute, or a pkg:// module),
    ``config_dir`` (-cd, absolute) and the ``hydra.searchpath`` entries (absolute folders or pkg://)."""

    primary: str = str(CONF_DIR)
    config_dir: str | None = None
    searchpath: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, config_path: str | None, config_dir: str | None, overrides: list[str],
           cwd: Path | None = None) -> SearchPath:
        cwd = Path.cwd() if cwd is None else cwd
        return cls(str(CONF_DIR) if config_path is None else folder_of(config_path, cwd),
                   os.path.abspath(cwd / config_dir) if config_dir is not None else None,
                   [folder_of(e, cwd) for e in searchpath_of_overrides(overrides)])

    def add_primary_config_searchpath(self, config_name: str | None, cwd: Path | None = None) -> None:
        """Without a ``hydra.searchpath`` override, the primary config's own (a checked file only)."""
        if self.searchpath or not config_name:
            return
        from slime.config.sources import file_problems

        for folder in self.folders():
            file = folder / f"{config_name}.yaml"
            if file.is_file():
                if not file_problems(file):
                    cwd = Path.cwd() if cwd is None else cwd
                    self.searchpath = [folder_of(e, cwd) for e in searchpath_of_config(file)]
                return

    def folders(self) -> list[Path]:
        """The folders on disk (pkg:// modules are installed code, not checked)."""
        entries = [self.primary, *([self.config_dir] if self.config_dir else []), *self.searchpath]
        return [Path(e) for e in dict.fromkeys(entries) if "://" not in e]
