"""Cross-field checks and derived values of a parsed command line.

``validate(args)`` first sets the values that other flags determine (recording each in
``args.derived_values`` with the reason, so the launch plan can list them), then runs every
check and raises one ``ArgumentProblems`` with all failures, each naming the flags involved
and what would be right. Nothing is changed silently: a value the user set is never
overwritten, and a contradiction is an error.
"""

from __future__ import annotations

import argparse
import importlib.util

from slime.arguments.flags import NEGATABLE, SWITCH
from slime.arguments.problems import ProblemList
from slime.arguments.registry import all_flags
from slime.arguments.role_overrides import load_role_overrides, role_args
from slime.arguments.slime_flags import FUNCTION_PATHS, REWARD_TYPES, UNIMPLEMENTED_CHOICES
from slime.arguments.topology import Topology, critic_with_actor, gpus
from slime.utils.functions import DEFAULT_ROLLOUT_FUNCTION, SFT_ROLLOUT_FUNCTION, path_problem, same_function


def uses_reference_model(args: argparse.Namespace) -> bool:
    """Whether training needs the reference model: only a KL of nonzero weight does, as a reward
    penalty (--kl-coef) or as a loss term (--use-kl-loss with a nonzero --kl-loss-coef). A KL of weight
    0 would change nothing, so its model is neither loaded nor run, and no kl is logged."""
    return bool(args.kl_coef) or bool(args.use_kl_loss and args.kl_loss_coef)


class _Validator:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.problems = ProblemList()
        if not hasattr(args, "derived_values"):
            args.derived_values = {}

    def fail(self, message: str, *flags: str) -> None:
        self.problems.add(message, *flags)

    def derive(self, attr: str, value, reason: str) -> None:
        setattr(self.args, attr, value)
        self.args.derived_values[attr] = reason

    def positive(self, *attrs: str) -> None:
        for attr in attrs:
            value = getattr(self.args, attr)
            if value is not None and value < 1:
                self.fail(f"--{attr.replace('_', '-')} must be at least 1, got {value}", _flag(attr))


def _flag(attr: str) -> str:
    return "--" + attr.replace("_", "-")


def validate(args: argparse.Namespace) -> argparse.Namespace:
    """Derive, check, raise ArgumentProblems listing every failure; return ``args``."""
    v = _Validator(args)
    v.positive(
        "actor_num_nodes", "actor_num_gpus_per_node", "critic_num_nodes", "critic_num_gpus_per_node",
        "rollout_num_gpus", "rollout_num_gpus_per_engine", "num_gpus_per_node", "rollout_batch_size",
        "n_samples_per_prompt", "global_batch_size", "num_steps_per_rollout", "micro_batch_size",
        "over_sampling_batch_size", "num_rollout", "num_epoch", "n_samples_per_eval_prompt", "save_interval",
        "eval_interval", "max_tokens_per_gpu", "tensor_model_parallel_size", "pipeline_model_parallel_size",
        "context_parallel_size", "expert_model_parallel_size", "expert_tensor_parallel_size",
    )
    if v.problems.problems:  # the arithmetic below assumes positive sizes
        v.problems.raise_if_any()
    for check in CHECKS:
        check(v)
    v.problems.raise_if_any()
    return args


def _required_inputs(v: _Validator) -> None:
    a = v.args
    if a.hf_checkpoint is None:
        v.fail("--hf-checkpoint is required: the HuggingFace checkpoint the rollout engines and tokenizer load",
               "--hf-checkpoint")
    if a.rollout_batch_size is None:
        v.fail("--rollout-batch-size is required: prompts per rollout", "--rollout-batch-size")
    if a.prompt_data is None and a.rollout_global_dataset and not a.load_debug_rollout_data:
        v.fail("--prompt-data is required: the JSONL file of training prompts "
               "(or --disable-rollout-global-dataset when a custom rollout brings its own data)", "--prompt-data")
    if a.num_rollout is None and a.num_epoch is None:
        v.fail("set --num-rollout (rollouts to run) or --num-epoch (passes over --prompt-data)",
               "--num-rollout", "--num-epoch")
    if a.train_backend == "megatron" and not a.debug_rollout_only:
        missing = [_flag(x) for x in ("num_layers", "hidden_size", "num_attention_heads") if getattr(a, x) is None]
        if missing:
            v.fail(f"the megatron backend needs the model architecture: {', '.join(missing)} unset "
                   "(add MODEL_ARGS, e.g. from scripts/models/<model>.sh)", *missing)


def _placement(v: _Validator) -> None:
    a = v.args
    actor = gpus(a.actor_num_nodes, a.actor_num_gpus_per_node)
    if a.colocate:
        if a.rollout_num_gpus is None:
            v.derive("rollout_num_gpus", actor, "--colocate: the rollout engines share the actor's GPUs")
        elif a.rollout_num_gpus != actor:
            v.fail(f"with --colocate the rollout runs on the actor's {actor} GPUs "
                   f"(--actor-num-nodes × --actor-num-gpus-per-node), but --rollout-num-gpus is {a.rollout_num_gpus}: "
                   "drop --rollout-num-gpus or make it equal", "--rollout-num-gpus", "--colocate")
    elif a.rollout_num_gpus is None and not a.debug_train_only:
        v.fail("--rollout-num-gpus is required unless --colocate (GPUs for the SGLang engines)",
               "--rollout-num-gpus", "--colocate")
    for side in ("train", "rollout"):
        attr = f"offload_{side}"
        if a.offload:
            if getattr(a, attr) is False:
                v.fail(f"--offload turns on --offload-{side}, but --no-offload-{side} is given: keep one",
                       "--offload", f"--no-offload-{side}")
            elif getattr(a, attr) is None:
                v.derive(attr, True, "--offload")
        elif getattr(a, attr) is None:
            v.derive(attr, bool(a.colocate), "follows --colocate")
    per_engine = a.rollout_num_gpus_per_engine
    if a.rollout_num_gpus and a.rollout_num_gpus % per_engine:
        v.fail(f"--rollout-num-gpus {a.rollout_num_gpus} is not a multiple of --rollout-num-gpus-per-engine "
               f"{per_engine}: every engine needs {per_engine} GPUs", "--rollout-num-gpus", "--rollout-num-gpus-per-engine")
    if per_engine > a.num_gpus_per_node and per_engine % a.num_gpus_per_node:
        v.fail(f"an engine spanning nodes needs whole nodes: --rollout-num-gpus-per-engine {per_engine} is not a "
               f"multiple of --num-gpus-per-node {a.num_gpus_per_node}",
               "--rollout-num-gpus-per-engine", "--num-gpus-per-node")
    if a.use_critic:
        with_actor = critic_with_actor(a)
        for size in ("num_nodes", "num_gpus_per_node"):
            critic, actor = getattr(a, f"critic_{size}"), getattr(a, f"actor_{size}")
            if critic is None:
                v.derive(f"critic_{size}", actor, "the actor's: --critic-placement with-actor"
                         if with_actor else f"defaults to {_flag('actor_' + size)}")
            elif with_actor and critic != actor:
                v.fail(f"{_flag('critic_' + size)} {critic} differs from {_flag('actor_' + size)} {actor}, but the critic "
                       "trains on the actor's GPUs (--critic-placement with-actor, the default, as upstream slime places "
                       "it): drop it, or give the critic GPUs of its own with --critic-placement separate",
                       _flag("critic_" + size), "--critic-placement")


def _model_parallel(v: _Validator, role: str, t: Topology) -> None:
    nodes, per_node = f"--{role}-num-nodes", f"--{role}-num-gpus-per-node"
    if t.dp is None:
        v.fail(f"--tensor-model-parallel-size {t.tp} × --pipeline-model-parallel-size {t.pp} × --context-parallel-size "
               f"{t.cp} = {t.model_parallel} does not divide the {role}'s {t.world} GPUs ({nodes} × {per_node})",
               "--tensor-model-parallel-size", "--pipeline-model-parallel-size", "--context-parallel-size", nodes)
    elif t.expert_dp is None:  # pp divides the GPUs here, so this is: ep·etp does not divide GPUs per stage
        v.fail(f"expert parallelism does not fit the {role}: --expert-model-parallel-size {t.ep} × expert tensor "
               f"parallel {t.etp} must divide GPUs per pipeline stage ({t.world} / {t.pp} = {t.world // t.pp})",
               "--expert-model-parallel-size", "--expert-tensor-parallel-size", "--pipeline-model-parallel-size")


def _parallelism(v: _Validator) -> None:
    a = v.args
    tp, pp = a.tensor_model_parallel_size, a.pipeline_model_parallel_size
    ep = a.expert_model_parallel_size
    if a.expert_tensor_parallel_size is None:
        v.derive("expert_tensor_parallel_size", tp, "defaults to --tensor-model-parallel-size")
    _model_parallel(v, "actor", Topology.of(a, "actor"))
    if a.use_critic:
        _model_parallel(v, "critic", Topology.of(a, "critic"))
    if ep > 1 and not a.num_experts:
        v.fail(f"--expert-model-parallel-size {ep} needs an MoE model (--num-experts)",
               "--expert-model-parallel-size", "--num-experts")
    if a.num_experts and a.num_experts % ep:
        v.fail(f"--num-experts {a.num_experts} is not a multiple of --expert-model-parallel-size {ep}",
               "--num-experts", "--expert-model-parallel-size")
    heads, groups = a.num_attention_heads, a.num_query_groups
    if heads and heads % tp:
        v.fail(f"--num-attention-heads {heads} is not a multiple of --tensor-model-parallel-size {tp}",
               "--num-attention-heads", "--tensor-model-parallel-size")
    if a.group_query_attention and groups and groups % tp:
        v.fail(f"--num-query-groups {groups} is not a multiple of --tensor-model-parallel-size {tp}",
               "--num-query-groups", "--tensor-model-parallel-size")
    _pipeline_layers(v)


def _pipeline_layers(v: _Validator) -> None:
    a = v.args
    pp, layers = a.pipeline_model_parallel_size, a.num_layers
    first, last = a.decoder_first_pipeline_num_layers, a.decoder_last_pipeline_num_layers
    if pp == 1 or not layers:
        return
    middle_stages = pp - (first is not None) - (last is not None)
    middle_layers = layers - (first or 0) - (last or 0)
    flags = ("--num-layers", "--pipeline-model-parallel-size",
             "--decoder-first-pipeline-num-layers", "--decoder-last-pipeline-num-layers")
    if middle_layers < 0 or (middle_stages == 0 and middle_layers) or (middle_stages and middle_layers % middle_stages):
        v.fail(f"{layers} layers do not split over {pp} pipeline stages"
               f"{f' with {first} in the first' if first is not None else ''}"
               f"{f' and {last} in the last' if last is not None else ''}: the remaining {middle_layers} must divide "
               f"evenly over {middle_stages} stage(s); set --decoder-first/last-pipeline-num-layers", *flags)


def _batch_sizes(v: _Validator) -> None:
    a = v.args
    if a.rollout_batch_size is None:
        return
    samples = a.rollout_batch_size * a.n_samples_per_prompt
    gbs, steps = a.global_batch_size, a.num_steps_per_rollout
    flags = ("--rollout-batch-size", "--n-samples-per-prompt", "--global-batch-size", "--num-steps-per-rollout")
    formula = "--rollout-batch-size × --n-samples-per-prompt = --global-batch-size × --num-steps-per-rollout"
    if gbs is None and steps is None:
        v.derive("num_steps_per_rollout", 1, "one optimizer step per rollout when neither it nor --global-batch-size is set")
        v.derive("global_batch_size", samples, "--rollout-batch-size × --n-samples-per-prompt")
    elif gbs is None:
        if samples % steps:
            v.fail(f"{a.rollout_batch_size} × {a.n_samples_per_prompt} = {samples} samples per rollout do not split "
                   f"into --num-steps-per-rollout {steps} equal steps ({formula})", *flags)
        else:
            v.derive("global_batch_size", samples // steps, "samples per rollout / --num-steps-per-rollout")
    elif steps is None:
        if samples % gbs:
            v.fail(f"{a.rollout_batch_size} × {a.n_samples_per_prompt} = {samples} samples per rollout are not a "
                   f"multiple of --global-batch-size {gbs} ({formula})", *flags)
        else:
            v.derive("num_steps_per_rollout", samples // gbs, "samples per rollout / --global-batch-size")
    elif gbs * steps != samples:
        v.fail(f"{a.rollout_batch_size} × {a.n_samples_per_prompt} = {samples} samples per rollout, but "
               f"--global-batch-size {gbs} × --num-steps-per-rollout {steps} = {gbs * steps} ({formula})", *flags)
    if a.over_sampling_batch_size is None:
        v.derive("over_sampling_batch_size", a.rollout_batch_size, "defaults to --rollout-batch-size")
    elif a.over_sampling_batch_size < a.rollout_batch_size:
        v.fail(f"--over-sampling-batch-size {a.over_sampling_batch_size} is smaller than --rollout-batch-size "
               f"{a.rollout_batch_size}: it must sample at least a rollout's worth of prompts",
               "--over-sampling-batch-size", "--rollout-batch-size")
    if a.use_dynamic_batch_size:
        if a.max_tokens_per_gpu is None:
            v.fail("--use-dynamic-batch-size packs micro-batches by tokens and needs --max-tokens-per-gpu",
                   "--use-dynamic-batch-size", "--max-tokens-per-gpu")
    dp = Topology.of(a, "actor").dp
    gbs = a.global_batch_size
    if dp and gbs:
        if gbs % dp:
            v.fail(f"--global-batch-size {gbs} does not split over the actor's {dp} data-parallel ranks",
                   "--global-batch-size", "--actor-num-gpus-per-node", "--tensor-model-parallel-size")
        elif not a.use_dynamic_batch_size and (gbs // dp) % a.micro_batch_size:
            v.fail(f"each data-parallel rank gets {gbs // dp} samples per step, not a multiple of "
                   f"--micro-batch-size {a.micro_batch_size}", "--micro-batch-size", "--global-batch-size")


def _algorithm(v: _Validator) -> None:
    a = v.args
    kl_loss = a.use_kl_loss or a.kl_loss_coef
    if a.kl_coef and kl_loss:
        v.fail("--kl-coef (KL folded into the reward) and --use-kl-loss/--kl-loss-coef (KL in the loss) are "
               "exclusive: keep one", "--kl-coef", "--use-kl-loss", "--kl-loss-coef")
    if a.kl_loss_coef and not a.use_kl_loss:
        v.fail(f"--kl-loss-coef {a.kl_loss_coef} has no effect without --use-kl-loss", "--kl-loss-coef", "--use-kl-loss")
    if uses_reference_model(a) and a.ref_load is None:
        v.fail("KL needs a reference model: set --ref-load", "--ref-load", "--kl-coef", "--kl-loss-coef")
    if a.advantage_estimator == "ppo" and not a.use_critic:
        v.fail("--advantage-estimator ppo needs a critic: add --use-critic (and optionally --critic-lr)",
               "--advantage-estimator", "--use-critic")
    if a.use_critic and a.advantage_estimator != "ppo":
        v.fail(f"--use-critic trains a value model that --advantage-estimator {a.advantage_estimator} never uses: "
               "use ppo or drop --use-critic", "--use-critic", "--advantage-estimator")
    if a.num_critic_only_steps and not a.use_critic:
        v.fail("--num-critic-only-steps needs --use-critic", "--num-critic-only-steps", "--use-critic")
    _upstream_estimator_rules(v)
    if a.eps_clip_high is None:
        v.derive("eps_clip_high", a.eps_clip, "defaults to --eps-clip")
    if a.eps_clip <= 0 or a.eps_clip_high <= 0:
        v.fail("--eps-clip and --eps-clip-high must be positive", "--eps-clip", "--eps-clip-high")
    if a.eps_clip_c is not None and a.eps_clip_c <= 1:
        v.fail(f"--eps-clip-c (dual clip) must be greater than 1, got {a.eps_clip_c}", "--eps-clip-c")
    for attr, name in (("gamma", "--gamma"), ("lambd", "--lambd")):
        if not 0 <= getattr(a, attr) <= 1:
            v.fail(f"{name} {getattr(a, attr)} is a discount: it must lie in [0, 1]", name)
    if a.use_tis and a.tis_clip_low >= a.tis_clip:
        v.fail(f"--tis-clip-low {a.tis_clip_low} must be below --tis-clip {a.tis_clip}", "--tis-clip-low", "--tis-clip")
    if a.ref_update_interval is not None and a.ref_update_interval < 1:
        v.fail(f"--ref-update-interval counts rollouts: it must be at least 1, got {a.ref_update_interval}",
               "--ref-update-interval")
    elif a.ref_update_interval and not uses_reference_model(a):
        v.fail(f"--ref-update-interval {a.ref_update_interval} updates a reference model that this run does not "
               "have: only a KL of nonzero weight (--kl-coef, or --use-kl-loss with --kl-loss-coef) loads one",
               "--ref-update-interval", "--kl-coef", "--kl-loss-coef")
    if a.custom_advantage_function_path and not a.compute_advantages_and_returns:
        v.fail("--custom-advantage-function-path computes the advantages that --disable-compute-advantages-and-returns "
               "says the rollout supplies: keep one", "--custom-advantage-function-path",
               "--disable-compute-advantages-and-returns")
    if a.loss_type == "custom_loss" and not a.custom_loss_function_path:
        v.fail("--loss-type custom_loss needs --custom-loss-function-path", "--loss-type", "--custom-loss-function-path")
    if a.trainable_params_regex and a.frozen_params_regex:
        v.fail("--trainable-params-regex and --frozen-params-regex are exclusive: give the parameters to train or "
               "the ones to freeze", "--trainable-params-regex", "--frozen-params-regex")
    if a.reward_timeout is not None and not a.reward_timeout > 0:
        v.fail(f"--reward-timeout must be a number of seconds above 0, got {a.reward_timeout}", "--reward-timeout")
    if a.rm_type is not None and a.rm_type.removeprefix("boxed_") not in REWARD_TYPES:
        v.fail(f"--rm-type {a.rm_type} is not implemented here; the built-in rewards are {', '.join(REWARD_TYPES)} "
               "(or give your own with --custom-rm-path)", "--rm-type")
    if a.rm_type in ("dapo", "boxed_dapo") and not a.custom_rm_path and a.reward_key is None:
        v.fail(f"--rm-type {a.rm_type} returns {{score, acc, pred}}: add --reward-key score (as upstream slime's DAPO "
               "recipes do)", "--rm-type", "--reward-key")
    if a.rm_type == "remote_rm" and not a.rm_url:
        v.fail("--rm-type remote_rm needs --rm-url", "--rm-type", "--rm-url")
    if a.save_interval is not None and a.save is None:
        v.fail("--save-interval needs --save (where checkpoints go)", "--save-interval", "--save")


def _upstream_estimator_rules(v: _Validator) -> None:
    """Upstream slime's rules of the estimators (slime.algorithms.advantages says what each computes)."""
    a = v.args
    group = a.advantage_estimator in ("grpo", "gspo", "cispo")
    if group and a.n_samples_per_prompt == 1 and a.grpo_std_normalization:
        v.derive("grpo_std_normalization", False, "--n-samples-per-prompt 1: a group of one sample has no "
                 "standard deviation to divide by")
    if a.advantage_estimator in ("reinforce_plus_plus", "reinforce_plus_plus_baseline") and not a.normalize_advantages:
        v.fail(f"--advantage-estimator {a.advantage_estimator} needs --normalize-advantages (its advantages are "
               "whitened over the batch only by that flag, and upstream slime requires it)",
               "--advantage-estimator", "--normalize-advantages")
    if a.kl_penalty_in_group_rewards and not (group and a.kl_coef):
        v.fail("--kl-penalty-in-group-rewards charges --kl-coef to the rewards of grpo, gspo and cispo: it needs "
               f"one of them and a nonzero --kl-coef (here {a.advantage_estimator}, --kl-coef {a.kl_coef:g})",
               "--kl-penalty-in-group-rewards", "--kl-coef", "--advantage-estimator")


def _sampling(v: _Validator) -> None:
    a = v.args
    if a.rollout_temperature <= 0:
        v.fail(f"--rollout-temperature must be > 0, got {a.rollout_temperature}", "--rollout-temperature")
    if not 0 < a.rollout_top_p <= 1:
        v.fail(f"--rollout-top-p must be in (0, 1], got {a.rollout_top_p}", "--rollout-top-p")
    limit = a.max_position_embeddings
    if limit and a.rollout_max_context_len and a.rollout_max_context_len > limit:
        v.fail(f"--rollout-max-context-len {a.rollout_max_context_len} exceeds --max-position-embeddings {limit}",
               "--rollout-max-context-len", "--max-position-embeddings")


def _evaluation(v: _Validator) -> None:
    a = v.args
    if a.eval_prompt_data and a.eval_config:
        v.fail("--eval-config replaces --eval-prompt-data: give one", "--eval-config", "--eval-prompt-data")
    if a.eval_prompt_data and len(a.eval_prompt_data) > 1 and len(a.eval_prompt_data) % 2:
        v.fail("--eval-prompt-data takes name/path pairs (aime /data/aime.jsonl gsm8k /data/gsm8k.jsonl) or one "
               "path; got an odd number of values: " + " ".join(a.eval_prompt_data), "--eval-prompt-data")
    if a.eval_interval is not None and not (a.eval_prompt_data or a.eval_config):
        v.fail("--eval-interval needs evaluation data: --eval-prompt-data name path … or --eval-config",
               "--eval-interval", "--eval-prompt-data")
    for attr, source in (("eval_temperature", "rollout_temperature"), ("eval_top_p", "rollout_top_p"),
                         ("eval_top_k", "rollout_top_k"), ("eval_max_response_len", "rollout_max_response_len"),
                         ("eval_input_key", "input_key"), ("eval_label_key", "label_key"), ("eval_tool_key", "tool_key"),
                         ("eval_max_context_len", "rollout_max_context_len"), ("eval_reward_key", "reward_key")):
        if getattr(a, attr) is None and (a.eval_prompt_data or a.eval_config):
            v.derive(attr, getattr(a, source), f"defaults to {_flag(source)}")
    if a.eval_temperature is not None and a.eval_temperature <= 0 and "eval_temperature" not in a.derived_values:
        v.fail(f"--eval-temperature must be > 0, got {a.eval_temperature}", "--eval-temperature")


def _debug(v: _Validator) -> None:
    a = v.args
    if a.debug_rollout_only and a.debug_train_only:
        v.fail("--debug-rollout-only and --debug-train-only are exclusive", "--debug-rollout-only", "--debug-train-only")
    if a.debug_train_only and not a.load_debug_rollout_data and same_function(a.rollout_function_path,
                                                                              DEFAULT_ROLLOUT_FUNCTION):
        v.fail("--debug-train-only starts no rollout engines, which the default rollout function generates with: "
               "replay saved rollouts with --load-debug-rollout-data, or give a --rollout-function-path that needs "
               "no engines",
               "--debug-train-only", "--load-debug-rollout-data", "--rollout-function-path")
    if a.load_debug_rollout_data and a.save_debug_rollout_data:
        v.fail("--load-debug-rollout-data and --save-debug-rollout-data are exclusive",
               "--load-debug-rollout-data", "--save-debug-rollout-data")


def _router(v: _Validator) -> None:
    a = v.args
    if bool(a.sglang_router_ip) != bool(a.sglang_router_port):
        given, missing = ("--sglang-router-ip", "--sglang-router-port") if a.sglang_router_ip else \
            ("--sglang-router-port", "--sglang-router-ip")
        v.fail(f"an external router needs both its address and its port: {given} is set, {missing} is not "
               "(drop both to let slime start its own router)", given, missing)


def _sft(v: _Validator) -> None:
    """The SFT rollout and the SFT loss go together, as in slime's SFT launchers."""
    a = v.args
    sft_rollout = same_function(a.rollout_function_path, SFT_ROLLOUT_FUNCTION)
    if sft_rollout and a.loss_type != "sft_loss":
        v.fail(f"--rollout-function-path {a.rollout_function_path} gives conversations without rewards: train "
               "them with --loss-type sft_loss", "--rollout-function-path", "--loss-type")
    if sft_rollout and a.apply_chat_template:
        v.fail("the SFT rollout renders each conversation with the chat template itself, marking the assistant's "
               "tokens (--loss-mask-type): drop --apply-chat-template", "--apply-chat-template",
               "--rollout-function-path")
    if a.loss_type == "sft_loss" and a.use_critic:
        v.fail("--loss-type sft_loss trains the actor alone: drop --use-critic", "--loss-type", "--use-critic")


def _sglang(v: _Validator) -> None:
    """SGLang's own constraints, with SGLang's tensor-parallel size = --rollout-num-gpus-per-engine over
    --sglang-pp-size (as upstream slime builds the engine)."""
    a = v.args
    gpus, pp = a.rollout_num_gpus_per_engine, a.sglang_pp_size
    if pp < 1 or gpus % pp:
        v.fail(f"--sglang-pp-size {pp} must divide --rollout-num-gpus-per-engine {gpus}: each engine's GPUs are its "
               "pipeline stages × its tensor-parallel size", "--sglang-pp-size", "--rollout-num-gpus-per-engine")
        return
    tp = gpus // pp
    dp = a.sglang_dp_size
    if a.sglang_enable_dp_attention:
        if dp < 2:
            v.fail("--sglang-enable-dp-attention needs --sglang-dp-size > 1 (attention data-parallel groups)",
                   "--sglang-enable-dp-attention", "--sglang-dp-size")
        elif tp % dp:
            v.fail(f"with DP attention, --sglang-dp-size {dp} must divide the engine's tensor-parallel size {tp} "
                   f"({_engine_tp(gpus, pp)})", "--sglang-dp-size", "--rollout-num-gpus-per-engine")
    elif dp > 1:
        v.fail(f"--sglang-dp-size {dp} without --sglang-enable-dp-attention would need {dp}×{tp} GPUs per engine; "
               "slime gives each engine --rollout-num-gpus-per-engine GPUs: add --sglang-enable-dp-attention or "
               "use more engines", "--sglang-dp-size", "--sglang-enable-dp-attention")
    if a.sglang_attn_dp_size > 1 and tp % a.sglang_attn_dp_size:
        v.fail(f"--sglang-attn-dp-size {a.sglang_attn_dp_size} must divide the engine's tensor-parallel size {tp} "
               f"({_engine_tp(gpus, pp)})",
               "--sglang-attn-dp-size", "--rollout-num-gpus-per-engine")
    if a.sglang_ep_size > 1 and tp % a.sglang_ep_size:
        v.fail(f"--sglang-ep-size {a.sglang_ep_size} must divide the engine's tensor-parallel size {tp} "
               f"({_engine_tp(gpus, pp)})",
               "--sglang-ep-size", "--rollout-num-gpus-per-engine")
    if a.sglang_enable_dp_lm_head and not (a.sglang_enable_dp_attention or a.sglang_attn_dp_size > 1):
        v.fail("--sglang-enable-dp-lm-head needs DP attention (--sglang-enable-dp-attention)",
               "--sglang-enable-dp-lm-head", "--sglang-enable-dp-attention")
    if a.sglang_enable_return_routed_experts:
        v.fail("--sglang-enable-return-routed-experts: the routed experts it returns are read only by routing replay, "
               "which is not implemented yet (--use-rollout-routing-replay); drop the flag",
               "--sglang-enable-return-routed-experts")
    if a.sglang_moe_dense_tp_size not in (None, 1):
        v.fail(f"--sglang-moe-dense-tp-size supports only 1, got {a.sglang_moe_dense_tp_size}", "--sglang-moe-dense-tp-size")
    if a.sglang_deepep_mode != "auto" and a.sglang_moe_a2a_backend != "deepep":
        v.fail(f"--sglang-deepep-mode {a.sglang_deepep_mode} needs --sglang-moe-a2a-backend deepep",
               "--sglang-deepep-mode", "--sglang-moe-a2a-backend")
    fraction = a.sglang_mem_fraction_static
    if fraction is not None and not 0 < fraction < 1:
        v.fail(f"--sglang-mem-fraction-static must be between 0 and 1, got {fraction}", "--sglang-mem-fraction-static")
    sizes = a.sglang_cuda_graph_bs_decode
    if sizes and a.sglang_cuda_graph_max_bs_decode and max(sizes) > a.sglang_cuda_graph_max_bs_decode:
        v.fail(f"--sglang-cuda-graph-bs goes up to {max(sizes)}, above --sglang-cuda-graph-max-bs "
               f"{a.sglang_cuda_graph_max_bs_decode}", "--sglang-cuda-graph-bs-decode", "--sglang-cuda-graph-max-bs-decode")


def _engine_tp(gpus: int, pp: int) -> str:
    return f"--rollout-num-gpus-per-engine {gpus}" + (f" / --sglang-pp-size {pp}" if pp > 1 else "")


def _linear_attention(v: _Validator) -> None:
    """Gated DeltaNet layers need their pattern (megatron-core asserts it at build time)."""
    a = v.args
    freq = a.linear_attention_freq
    if a.experimental_attention_variant == "gated_delta_net" and freq is None:
        v.fail("--experimental-attention-variant gated_delta_net needs --linear-attention-freq (every Nth layer full "
               "attention, e.g. 4, or a 1/0 list per layer)", "--linear-attention-freq", "--experimental-attention-variant")
    elif isinstance(freq, list) and a.num_layers and len(freq) != a.num_layers:
        v.fail(f"--linear-attention-freq lists {len(freq)} layers, --num-layers is {a.num_layers}",
               "--linear-attention-freq", "--num-layers")
    elif isinstance(freq, int) and freq < 1:
        v.fail(f"--linear-attention-freq must be at least 1, got {freq}", "--linear-attention-freq")


def _role_overrides(v: _Validator) -> None:
    a = v.args
    if a.megatron_config_path:
        a.role_overrides, a.role_overrides_ignored = load_role_overrides(a, v.problems)
        for role in a.role_overrides:  # a role's own sizes (an actor without a critic may change them)
            own = Topology.of(role_args(a, role), role)
            if own != Topology.of(a, role):
                _model_parallel(v, role, own)


def _megatron_model(v: _Validator) -> None:
    """What the megatron backend cannot build or map yet is an error before the cluster, not at hour two."""
    a = v.args
    rope = a.position_embedding_type == "rope" or a.use_rotary_position_embeddings
    if not a.add_position_embedding and not rope:  # Megatron-LM's own rule
        v.fail(f"--no-position-embedding needs --position-embedding-type rope (Megatron-LM deprecated it for any other "
               f"type), got {a.position_embedding_type}: give the model's type with --position-embedding-type",
               "--no-position-embedding", "--position-embedding-type")
    if a.train_backend != "megatron" or a.debug_rollout_only:
        return
    if a.spec:
        module = a.spec[0] if len(a.spec) == 2 else None
        if module is None:
            v.fail(f"--spec takes a module and a function name, got {' '.join(a.spec)}", "--spec")
        elif _module_missing(module):
            v.fail(f"--spec {' '.join(a.spec)}: there is no module {module} on the Python path, so the megatron "
                   "backend cannot build this model's layers (the project ships slime_plugins.models.glm4)", "--spec")
    elif a.post_self_attn_layernorm or a.post_mlp_layernorm:
        v.fail("sandwich norms (--post-self-attn-layernorm, --post-mlp-layernorm) are built by a layer spec: add "
               "--spec slime_plugins.models.glm4 get_glm_spec", "--post-self-attn-layernorm", "--spec")
    unsupported = {
        "use_gated_attention": "gated attention (Qwen3-Next, Qwen3.5) is not built by the megatron backend yet",
        "attention_output_gate": "the attention output gate (Qwen3-Next, Qwen3.5) is not built by the megatron "
                                 "backend yet",
        "mtp_num_layers": "multi-token prediction layers are not mapped to HF weights by the megatron backend yet",
        "experimental_attention_variant": "megatron-core's attention variants (Gated DeltaNet, DeepSeek sparse "
                                          "attention) are not built by the megatron backend yet",
    }
    for attr, message in unsupported.items():
        if getattr(a, attr):
            v.fail(f"{_flag(attr)}: {message}; train this model elsewhere or drop the flag", _flag(attr))


def _not_implemented(v: _Validator) -> None:
    """A flag of a feature the trainer lacks parses (upstream's command lines do), but only at its default:
    any other value is an error, never silently ignored."""
    for f in all_flags():
        value = getattr(v.args, f.attr, f.default)
        if not f.unimplemented or value == f.default:
            continue
        shown = "" if f.kind in (SWITCH, NEGATABLE) else " " + " ".join(map(str, value if f.is_list else [value]))
        default = "" if f.kind in (SWITCH, NEGATABLE) or f.default in (None, []) else \
            f" (its default, {' '.join(map(str, f.default if f.is_list else [f.default]))}, runs)"
        v.fail(f"{f.name}{shown}: not implemented yet ({f.unimplemented}); drop the flag{default}", f.name)
    for attr in FUNCTION_PATHS:
        value = getattr(v.args, attr)
        for path in value if isinstance(value, list) else [value] if value else []:
            problem = path_problem(path)
            if problem:
                v.fail(f"{_flag(attr)}: {problem}", _flag(attr))
    for attr, choices in UNIMPLEMENTED_CHOICES.items():
        value = getattr(v.args, attr)
        if value in choices:
            v.fail(f"{_flag(attr)} {value}: not implemented yet ({choices[value]})", _flag(attr))


def _module_missing(dotted: str) -> bool:
    try:
        return importlib.util.find_spec(dotted) is None
    except ImportError:  # a parent package is missing
        return True


CHECKS = [
    _not_implemented, _required_inputs, _placement, _parallelism, _batch_sizes, _algorithm, _sampling, _evaluation, _debug, _router, _sft, _sglang,
    _role_overrides, _megatron_model, _linear_attention,
]
