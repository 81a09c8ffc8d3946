"""The config toolchain: Hydra configs in conf/ composed, flattened into argv per bash array,
validated by the trainer's own parser and rendered as a file that is safe to source.

May import: Hydra, OmegaConf, PyYAML, slime.model, slime.arguments, slime.utils. Never torch or Ray."""
