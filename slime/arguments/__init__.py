"""The argument machinery of train.py and of the config toolchain: one record per flag (``flags``);
the flag tables of slime, Megatron-LM and SGLang (``slime_flags``, ``megatron_flags``, ``sglang_flags``
with its snapshot ``sglang_server_args.json``); value types (``arg_types``); the parser
(``parser.parse_args``); cross-field validation and derived values (``validation``); per-role overrides
(``role_overrides``); the entry points and what each asks of a run (``entry_points``); the evaluation
datasets a command line names (``eval_datasets``); problems reported all at once (``problems``).

May import: slime.utils, the standard library and PyYAML. Never torch, Ray, Megatron or
transformers; SGLang only inside ``sglang_flags``' functions that read the installed one."""
