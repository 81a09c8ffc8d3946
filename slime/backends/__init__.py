"""The train backends behind ``base.TrainBackend`` -- megatron-core (``megatron``) and plain torch
(``torch_backend``) -- and the push of their weights to the rollout engines (``weight_sync``).

May import: slime.algorithms, slime.arguments, slime.model, slime.rollout (its HTTP client),
slime.utils, torch and megatron-core. Never Ray, slime.ray, slime.engines or any package above: the
Ray layer drives the backends."""
