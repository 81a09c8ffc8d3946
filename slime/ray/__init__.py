"""Placement on a Ray cluster: placement groups from the plan, with the node of every bundle
(``placement``), the hosts a run lost (``hosts``), and the Ray actors of each train role (``groups``).

May import: Ray, slime.backends, slime.arguments, slime.rollout, slime.utils."""
