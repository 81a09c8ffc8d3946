"""Leaf helpers, each module standing alone: TCP ports (``ports``), files written atomically
(``files``), the one address rule of the run (``addresses``), Megatron-LM's checkpoint folders and run
records (``checkpoint``, ``resume``), HF checkpoint folders (``hf_checkpoint``), user functions loaded by
path (``functions``), local torch.distributed ranks (``local_ranks``), the run log (``run_log``), NaN and
infinity checks (``non_finite``), sequence-length balancing (``seqlen_balancing``), daemon threads
(``background``), and the launcher's Ray readiness probe and runtime env (``ray_ready``,
``runtime_env``).

May import: the standard library and third-party packages (torch and Ray only inside functions, and
Ray only as a process has already imported it); no other slime package. Every other package may
import these."""
