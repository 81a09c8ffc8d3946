"""The megatron-core train backend: megatron's parallel state, the model of a pipeline stage, its
weights and their HF mapping, checkpoints, offload, megatron-core's config objects and its own checks
of them, checkpoint conversion, and the CPU compatibility layer that runs it all on gloo.

May import: as slime.backends (megatron-core inside functions where a light import matters)."""
