"""Dynamic-sampling filters (``--dynamic-sampling-filter-path``), by upstream slime's module names.

May import: slime.rollout, slime.utils."""
