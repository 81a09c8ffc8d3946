"""The rollout engines: each engine's server command (SGLang's sglang.launch_server on GPUs, the torch
engine on CPUs: ``command``), SGLang's own check of it (``sglang_check``), the torch engine server
(``torch_engine``), SGLang's router in front of them (``router``), and the engine group that places,
starts, routes, watches and restarts them on Ray (``group``).

May import: slime.ray, slime.backends (the weight push's tensor format), slime.rollout (its HTTP
client), slime.arguments, slime.utils, and Ray. ``command`` imports no torch, Ray or SGLang: the launch
plan uses it."""
