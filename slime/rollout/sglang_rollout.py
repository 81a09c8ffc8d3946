"""The default rollout function: prompts from the data source, ``n`` samples each through the engines'
/generate API, rewards from the hub, groups kept or dropped by the dynamic-sampling filter until a
rollout's worth of groups is collected. ``--custom-generate-function-path`` replaces the /generate
call for one sample; ``--rollout-function-path`` can replace this whole function."""

from __future__ import annotations

import argparse
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from slime.rewards.hub import score
from slime.rollout.client import GenerateClient
from slime.rollout.data_source import DataSource, Prompt
from slime.rollout.sample import Sample, Status
from slime.utils.functions import load_function


@dataclass
class RolloutContext:
    """What a rollout function gets besides the arguments: the engines' client (None under
    --debug-train-only, which starts no engines), the tokenizer, and the prompt data (None when a
    custom rollout brings its own: --disable-rollout-global-dataset)."""

    client: GenerateClient | None
    tokenizer: object
    data_source: DataSource | None


def sampling_params(args: argparse.Namespace, evaluation: bool = False) -> dict:
    prefix = "eval" if evaluation else "rollout"
    return {
        "temperature": getattr(args, f"{prefix}_temperature"),
        "top_p": getattr(args, f"{prefix}_top_p"),
        "top_k": getattr(args, f"{prefix}_top_k"),
        "max_new_tokens": getattr(args, f"{prefix}_max_response_len"),
        "stop": args.rollout_stop,
        "stop_token_ids": args.rollout_stop_token_ids,
        "skip_special_tokens": args.rollout_skip_special_tokens,
        "no_stop_trim": True,
    }


def _seed(args: argparse.Namespace, rollout_id: int, index: int, evaluation: bool) -> int:
    """A sampling seed per request, so a rollout does not depend on the order requests are served in."""
    return zlib.crc32(f"{args.rollout_seed}:{int(evaluation)}:{rollout_id}:{index}".encode())


def generate_one(args: argparse.Namespace, sample: Sample, params: dict, client: GenerateClient) -> Sample:
    """Fill ``sample``'s response from one /generate call."""
    reply = client.generate(sample.prompt_tokens, params)
    meta = reply.get("meta_info", {})
    sample.response_tokens = list(reply.get("output_ids", []))
    sample.response = reply.get("text", "")
    sample.rollout_log_probs = [entry[0] for entry in meta.get("output_token_logprobs", [])]
    sample.loss_mask = [1] * len(sample.response_tokens)
    finish = (meta.get("finish_reason") or {}).get("type")
    sample.status = {"length": Status.TRUNCATED, "abort": Status.ABORTED}.get(finish, Status.COMPLETED)
    return sample


def _samples_of(prompts: list[Prompt], n: int, start_group: int) -> list[Sample]:
    return [Sample(group_index=start_group + g, index=(start_group + g) * n + k, prompt=p.text, label=p.label,
                   prompt_tokens=list(p.tokens), metadata=dict(p.metadata))
            for g, p in enumerate(prompts) for k in range(n)]


def max_new_tokens(limit: int | None, context_len: int | None, prompt_len: int) -> int | None:
    """The response budget of one request: --*-max-response-len, within --*-max-context-len less the
    prompt when that is set (None: as long as the engine's context allows)."""
    if context_len is None:
        return limit
    room = max(0, context_len - prompt_len)
    return room if limit is None else min(limit, room)


def run_requests(args: argparse.Namespace, samples: list[Sample], params: dict, client: GenerateClient,
                 rollout_id: int, evaluation: bool = False) -> None:
    generate = load_function(args.custom_generate_function_path) if args.custom_generate_function_path else generate_one
    context_len = args.eval_max_context_len if evaluation else args.rollout_max_context_len

    def one(sample: Sample) -> Sample:
        budget = max_new_tokens(params["max_new_tokens"], context_len, len(sample.prompt_tokens))
        return generate(args, sample, {**params, "max_new_tokens": budget,
                                       "sampling_seed": _seed(args, rollout_id, sample.index, evaluation)}, client)

    with ThreadPoolExecutor(max_workers=min(args.sglang_server_concurrency, 64)) as pool:
        list(pool.map(one, samples))


def generate_rollout(args: argparse.Namespace, rollout_id: int, context: RolloutContext) -> list[Sample]:
    """One rollout: ``rollout_batch_size`` groups of ``n_samples_per_prompt`` scored samples."""
    keep = load_function(args.dynamic_sampling_filter_path) if args.dynamic_sampling_filter_path else None
    n, params = args.n_samples_per_prompt, sampling_params(args)
    kept: list[list[Sample]] = []
    next_group = 0
    while len(kept) < args.rollout_batch_size:
        prompts = context.data_source.next_batch(args.over_sampling_batch_size)
        samples = _samples_of(prompts, n, next_group)
        next_group += len(prompts)
        run_requests(args, samples, params, context.client, rollout_id)
        score(args, samples)
        for g in range(len(prompts)):
            group = samples[g * n:(g + 1) * n]
            if keep is None or keep(args, group):
                kept.append(group)
    rollout = [s for group in kept[:args.rollout_batch_size] for s in group]
    for index, sample in enumerate(rollout):  # groups are consecutive; renumber after filtering
        sample.group_index, sample.index = index // n, index
    return rollout


def evaluate(args: argparse.Namespace, rollout_id: int, datasets: dict[str, list[Prompt]],
             client: GenerateClient) -> dict[str, float]:
    """Mean reward per evaluation dataset."""
    params, results = sampling_params(args, evaluation=True), {}
    for name, prompts in datasets.items():
        samples = _samples_of(prompts, args.n_samples_per_eval_prompt, 0)
        run_requests(args, samples, params, client, rollout_id, evaluation=True)
        score(args, samples, reward_key=args.eval_reward_key)
        results[name] = sum(s.reward for s in samples) / max(1, len(samples))
    return results
