"""Model plugins named by ``--spec MODULE FUNCTION``: layer specs megatron-core does not ship."""
