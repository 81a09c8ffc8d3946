"""slime: RL post-training of LLMs with Megatron (training), SGLang (rollout) and Ray (placement)."""
