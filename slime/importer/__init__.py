"""Bringing existing bash launchers into conf/: capture their real argv, write configs, check parity.

May import: slime.config, slime.arguments, slime.utils."""
