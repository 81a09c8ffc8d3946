"""The model a config describes, in numbers and without torch: the parameters each rank of
megatron-core's GPTModel holds (``parameters``), and the HF config.json fields the model flags give,
per family, with the families the megatron backend maps (``hf_config``).

May import: slime.arguments, slime.utils."""
