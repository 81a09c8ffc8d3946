"""Bringing existing bash launchers into conf/: capture their real argv, write configs, check parity."""
