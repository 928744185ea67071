"""The ``language_model`` task (next-token cross-entropy, perplexity, bits per character) and text sampling.

Inputs are token ids ``N x T`` and targets the next token at every position, ``N x T``; models
return logits ``N x T x V``. Padding targets (``pad_index``, 0) never count. Perplexity is
``exp(loss)`` with the loss in nats, so a model that spreads its bets evenly over ``V`` tokens has
perplexity ``V``; bits per character is ``loss / ln 2``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError, DataError
from glassnet.train.tasks import TaskContext, TokenTask, register_task

# How a sampled special token (<pad>, <unk>) is shown: one character, so a sample keeps its length.
REPLACEMENT_CHARACTER = "\ufffd"


@register_task
class LanguageModelling(TokenTask):
    """Next-token prediction scored by mean token cross-entropy.

    Args:
        pad_index: the target padding id, ignored by the loss and the metrics.
    """

    name = "language_model"
    monitor_modes = {"loss": "min", "perplexity": "min", "bits_per_char": "min"}
    headline_metrics = ("perplexity", "bits_per_char")

    def __init__(self, pad_index: int = 0) -> None:
        super().__init__(ignore_index=pad_index)
        self.pad_index = pad_index

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """``loss`` (nats per token), ``perplexity`` = exp(loss) and ``bits_per_char`` = loss / ln 2.

        Raises:
            DataError: the shapes do not match, or every target is padding.
        """
        self.align(outputs, targets)
        if not (targets != self.pad_index).any():
            raise DataError(f"every target is padding (id {self.pad_index}); there is nothing to score")
        loss = self.loss(outputs.float(), targets).item()
        return {"loss": loss, "perplexity": math.exp(loss), "bits_per_char": loss / math.log(2)}

    def details(self, context: TaskContext) -> None:
        """A text sampled after the prompt "the " (temperature 0.8, the run's seed), kept in the results."""
        sample = {"prompt": "the ", "temperature": 0.8, "seed": context.seed}
        sample["text"] = sample_text(context.model, context.bundle.spec, "the ", 200, 0.8, context.seed)
        context.results["sample"] = sample


def sample_text(
    model: nn.Module, spec: DataSpec, prompt: str, n_chars: int = 200, temperature: float = 0.8, seed: int = 0
) -> str:
    """Continue ``prompt`` with ``n_chars`` characters sampled from a character language model.

    Args:
        model: a model with ``generate(prompt_ids, max_new_tokens, temperature, generator=...)``
            (e.g. ``char_transformer``), on any device.
        spec: the spec it was trained on; ``spec.extra["vocab"]`` maps ids to characters.
        prompt: the start of the text (at least one character; characters outside the vocabulary
            are read as ``<unk>``).
        n_chars: characters to add.
        temperature: below 1 is more conservative; 0 always takes the most likely character.
        seed: seed of the sampling; the same seed, model and prompt give the same text.

    Returns:
        ``prompt`` followed by exactly ``n_chars`` characters; a sampled special token shows as
        U+FFFD.

    Raises:
        ConfigError: the model cannot generate, the spec has no vocabulary, or the prompt is empty.
    """
    vocab = spec.extra.get("vocab")
    if not hasattr(model, "generate") or not vocab:
        raise ConfigError(
            f"sample_text needs a generating model (e.g. char_transformer) and a spec with extra['vocab']. "
            f"Received: {type(model).__name__}, vocab {'present' if vocab else 'missing'}"
        )
    if not isinstance(prompt, str) or not prompt:
        raise ConfigError(f"prompt must be a non-empty string. Received: prompt={prompt!r}")
    index = {token: i for i, token in enumerate(vocab)}
    unk = int(spec.extra.get("unk_index", 1))
    device = next(model.parameters()).device
    prompt_ids = torch.tensor([index.get(char, unk) for char in prompt], dtype=torch.long, device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    ids = model.generate(prompt_ids, n_chars, temperature=temperature, generator=generator)
    new = ids[len(prompt) :].tolist()
    return prompt + "".join(vocab[i] if len(vocab[i]) == 1 else REPLACEMENT_CHARACTER for i in new)
