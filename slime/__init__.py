"""slime: RL post-training of LLMs with Megatron (training), SGLang (rollout) and Ray (placement).

One package per layer; docs/architecture.md ("Package map") says what each holds and may import, and
tests/test_layers.py keeps the order."""
