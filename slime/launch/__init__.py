"""What a run will ask of a cluster, for a person to check before booking it, and what the trainer
checks where it runs before it starts anything: the launch plan (``plan``; ``python -m
slime.launch.plan``), the memory per GPU (``memory``), the deep check with megatron-core, SGLang and the
checkpoint (``deep_check``) and the trainer's preflight (``preflight``).

May import: slime.engines, slime.backends, slime.config, slime.model, slime.arguments, slime.utils; at
module level only what imports no torch, Ray, Megatron or SGLang (``plan``, ``memory`` and
``preflight`` stay light; the deep check imports the heavy ones inside its functions)."""
