"""What the tests share, and nothing that is a test: the checkout's paths (``paths``), the packages a test
needs (``stack``), small command lines (``command_lines``), a Ray head of the session's own
(``ray_cluster``), bash (``bash``), the generator in-process (``generator``), engines (``engines``),
training runs (``runs``, ``training``: the functions runs name by path), launchers (``launchers``),
published checkpoints (``checkpoints``), megatron ranks (``megatron``), rollout hooks (``hooks``) and
hosts made of network namespaces (``multinode``)."""
