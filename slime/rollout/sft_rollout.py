"""The SFT rollout function, as slime's: ``--rollout-function-path slime.rollout.sft_rollout.generate_rollout``.

It generates nothing: each rollout takes ``--rollout-batch-size`` conversations from the prompt data
(``--input-key`` holds a list of chat messages), renders each with the tokenizer's chat template and
marks the assistant's tokens for the loss (``--loss-mask-type``, ``slime.rollout.loss_mask``). A
sample's response starts at its first trained token, so that everything before it is the prompt.
Run it with ``--loss-type sft_loss`` and ``--debug-train-only`` (no rollout engines are started).
"""

from __future__ import annotations

import argparse

from slime.rollout.loss_mask import LossMaskError, tokens_and_loss_mask
from slime.rollout.sample import Sample


def sft_sample(args: argparse.Namespace, tokenizer, messages: list[dict], index: int,
               tools: list[dict] | None = None) -> Sample:
    tokens, mask = tokens_and_loss_mask(tokenizer, messages, args.loss_mask_type, args.apply_chat_template_kwargs,
                                        tools=tools)
    if 1 not in mask:
        raise LossMaskError(f"conversation {index} of the rollout has no assistant tokens to train on under "
                            f"--loss-mask-type {args.loss_mask_type}")
    first = mask.index(1)
    return Sample(group_index=index, index=index, prompt=messages, tokens=tokens, response_length=len(tokens) - first,
                  loss_mask=mask[first:], reward=0.0, metadata={"messages": messages})


def generate_rollout(args: argparse.Namespace, rollout_id: int, data_source, evaluation: bool = False) -> list[Sample]:
    """One rollout's worth of conversations, tokenized with their loss masks (upstream's signature; the
    SFT rollout has nothing to evaluate)."""
    if evaluation:
        raise ValueError("the SFT rollout generates nothing to evaluate: give --eval-function-path a rollout "
                         "function that generates, or drop --eval-interval")
    prompts = data_source.data_source.next_batch(args.rollout_batch_size * args.n_samples_per_prompt)
    samples = []
    for index, prompt in enumerate(prompts):
        if prompt.messages is None:
            raise LossMaskError(f"--prompt-data row with prompt {prompt.text[:40]!r} is no conversation: the SFT "
                                f"rollout needs --input-key to name a list of chat messages, and no "
                                f"--apply-chat-template (it renders the conversation itself)")
        samples.append(sft_sample(args, data_source.tokenizer, prompt.messages, index, prompt.metadata.get("tools")))
    return samples
