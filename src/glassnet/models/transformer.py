"""Transformer encoders over tokens or time steps, and a small causal decoder for language modelling.

``transformer`` (registered) classifies or regresses text and multichannel sequences with a
pre-norm ``nn.TransformerEncoder``: padding is masked out of attention and out of the pooling, so a
padded text gives exactly the result of the same text alone. For a ``tag`` spec (sequence
labelling) there is no pooling: the head reads every step and gives one prediction per step
(``N x T x K``). ``CausalTransformer``, registered as
``char_transformer`` for the ``language_model`` task, predicts the next token and samples text from a prompt.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError, DataError
from glassnet.models.layers import (
    Dropout,
    attention_with_dropout,
    check_positive,
    check_probability,
    input_layer,
    output_layer,
)
from glassnet.models.recurrent import vocabulary_size
from glassnet.models.registry import register_model

POSITIONALS = ("sinusoidal", "learned")
POOLS = ("mean", "cls")


def check_sizes(d_model: int, heads: int, layers: int, ff_mult: int, dropout: float) -> None:
    """Validate the sizes shared by every transformer here.

    Raises:
        ConfigError: a size is not a positive integer, ``dropout`` is outside [0, 1), or
            ``d_model`` is not divisible by ``heads`` (each head takes ``d_model / heads`` features).
    """
    for name, value in (("d_model", d_model), ("heads", heads), ("layers", layers), ("ff_mult", ff_mult)):
        check_positive(name, value)
    check_probability("dropout", dropout)
    if d_model % heads:
        raise ConfigError(
            f"d_model must be divisible by heads (each head gets d_model / heads features). "
            f"Received: d_model={d_model}, heads={heads}; try d_model={heads * math.ceil(d_model / heads)}"
        )


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise ``ConfigError`` quoting ``value`` unless it is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}. Received: {name}={value!r}")


def sinusoidal_table(positions: int, d_model: int) -> torch.Tensor:
    """The fixed encodings of "Attention is all you need": sines on even features, cosines on odd ones.

    Returns:
        float32 tensor ``(positions, d_model)``.
    """
    position = torch.arange(positions, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(positions, d_model)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: d_model // 2])  # odd d_model has one cosine fewer
    return table


class PositionalEncoding(nn.Module):
    """Adds a position vector to each step of ``(N, T, d_model)`` inputs.

    Args:
        positions: the most steps an input may have.
        d_model: feature size.
        kind: ``sinusoidal`` (fixed, not saved with the weights) or ``learned`` (a trained table).
    """

    def __init__(self, positions: int, d_model: int, kind: str) -> None:
        super().__init__()
        check_choice("positional", kind, POSITIONALS)
        if kind == "learned":
            # A small start (as in BERT and GPT-2): order enters only as far as training finds it useful.
            self.table = nn.Parameter(torch.randn(positions, d_model) * 0.02)
        else:
            # Not persistent: the table is a pure function of the sizes, so files need not carry it.
            self.register_buffer("table", sinusoidal_table(positions, d_model), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.shape[1]
        if steps > len(self.table):
            raise DataError(
                f"inputs have {steps} steps, but this model was built for at most {len(self.table)} "
                f"(its data's max_length / time steps). Truncate the inputs or rebuild the model for longer ones"
            )
        return x + self.table[:steps]


class EncoderLayer(nn.TransformerEncoderLayer):
    """``nn.TransformerEncoderLayer`` (the same parameters and names) that computes attention itself on
    a CPU.

    Training with dropout, its masks come from ``fast_dropout`` (torch's attention with dropout leaves
    its fused kernel for one that draws a mask over every weight with ``bernoulli_``). In evaluation
    it runs the layer's own blocks with the fused ``scaled_dot_product_attention`` instead of torch's
    inference fast path (``_transformer_encoder_layer_fwd``), which took 1.5-3x as long here in fp32
    and bf16 alike (docs/training.md). Other devices, unbatched inputs and attention modules with
    hooks (a model summary's) run torch's layer unchanged."""

    def __init__(self, d_model: int, heads: int, ff: int, dropout: float) -> None:
        super().__init__(d_model, heads, ff, dropout, activation="gelu", batch_first=True, norm_first=True)
        self.dropout, self.dropout1, self.dropout2 = (Dropout(dropout) for _ in range(3))

    def forward(
        self,
        src: torch.Tensor,
        src_mask: torch.Tensor | None = None,
        src_key_padding_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        if src.device.type != "cpu" or src.dim() != 3:
            return super().forward(src, src_mask, src_key_padding_mask, is_causal)
        # torch's pre-norm forward without its fast path; masks additive (0 or -inf) as torch makes them
        mask, padding = additive_mask(src_mask, src.dtype), additive_mask(src_key_padding_mask, src.dtype)
        x = src + self._sa_block(self.norm1(src), mask, padding, is_causal)
        return x + self._ff_block(self.norm2(x))

    def _sa_block(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None,
        key_padding_mask: torch.Tensor | None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        attention = self.self_attn
        plain = attention.bias_k is None and not attention.add_zero_attn and attention.in_proj_weight is not None
        masks = (attn_mask is None or attn_mask.dim() == 2) and (attn_mask is not None or not is_causal)
        hooked = attention._forward_hooks or attention._forward_pre_hooks or has_global_hooks()
        if x.device.type != "cpu" or x.dim() != 3 or not plain or not masks or hooked:
            return super()._sa_block(x, attn_mask, key_padding_mask, is_causal)
        n, t, width = x.shape
        heads = attention.num_heads
        qkv = F.linear(x, attention.in_proj_weight, attention.in_proj_bias)
        query, key, value = qkv.view(n, t, 3, heads, width // heads).permute(2, 0, 3, 1, 4)
        mask = additive_mask(attn_mask, x.dtype)
        if key_padding_mask is not None:
            padding = additive_mask(key_padding_mask, x.dtype)[:, None, None, :]
            mask = padding if mask is None else mask + padding
        p = attention.dropout if self.training else 0.0
        if p > 0.0:
            mixed = attention_with_dropout(query, key, value, p, mask)
        else:
            mixed = F.scaled_dot_product_attention(query, key, value, None if mask is None else mask.to(query.dtype))
        return self.dropout1(attention.out_proj(mixed.transpose(1, 2).reshape(n, t, width)))


def has_global_hooks() -> bool:
    """Whether forward hooks are registered for every module (``nn.modules.module.register_module_forward_hook``)."""
    from torch.nn.modules import module

    return bool(module._global_forward_hooks or module._global_forward_pre_hooks)


def additive_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A boolean attention mask (True: not attended to, torch's convention for ``attn_mask`` and
    ``key_padding_mask``) as 0 / -inf of ``dtype``; float masks pass unchanged."""
    if mask is None or mask.dtype != torch.bool:
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))


def encoder_stack(d_model: int, heads: int, layers: int, ff_mult: int, dropout: float) -> nn.TransformerEncoder:
    """A pre-norm (``norm_first``) encoder with a final LayerNorm; pre-norm trains without warm-up."""
    layer = EncoderLayer(d_model, heads, d_model * ff_mult, dropout)
    # Nested tensors need post-norm layers; asking for them with norm_first only earns a warning.
    return nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)


class TokenEmbedding(nn.Module):
    """Token ids to vectors, scaled by ``sqrt(d_model)`` so that a tied output projection starts calibrated.

    The table is initialised with standard deviation ``d_model ** -0.5``: the scaled inputs then have
    unit variance and the logits ``h @ table.T`` of a unit-variance state start near unit variance.
    """

    def __init__(self, vocab_size: int, d_model: int, pad_index: int | None = None) -> None:
        super().__init__()
        self.table = nn.Embedding(vocab_size, d_model, padding_idx=pad_index)
        nn.init.normal_(self.table.weight, std=d_model**-0.5)
        if pad_index is not None:
            with torch.no_grad():
                self.table.weight[pad_index].zero_()
        self.scale = math.sqrt(d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.table(tokens) * self.scale


class TransformerClassifier(nn.Module):
    """``embedding or standardisation + projection -> positions -> encoder -> pooling -> head``.

    Args:
        spec: a ``text`` (``max_length`` token ids, padding at the end) or ``sequence``
            (``T x C``) spec.
        d_model: feature size of every step inside the encoder.
        heads: attention heads per layer (must divide ``d_model``).
        layers: encoder layers.
        ff_mult: the feed-forward block's hidden size is ``ff_mult * d_model``.
        dropout: in attention, feed-forward blocks, after the positions and before the head.
        positional: ``sinusoidal`` or ``learned`` position encodings.
        pool: ``mean`` over the valid (unpadded) steps, or the output at a learned ``cls`` token
            put before the first step. Unused for ``tag`` specs, whose head reads every step.

    Raises:
        ConfigError: the spec's input shape does not suit its modality, or a text spec has no
            vocabulary or a padding id outside it.
    """

    def __init__(
        self,
        spec: DataSpec,
        d_model: int,
        heads: int,
        layers: int,
        ff_mult: int,
        dropout: float,
        positional: str,
        pool: str,
    ) -> None:
        super().__init__()
        self.text = spec.modality == "text"
        self.per_step = spec.task == "tag"
        steps = self._build_input(spec, d_model)
        use_cls = pool == "cls" and not self.per_step
        self.cls = nn.Parameter(torch.randn(1, 1, d_model) * 0.02) if use_cls else None
        self.positions = PositionalEncoding(steps + use_cls, d_model, positional)
        self.dropout = Dropout(dropout)
        self.encoder = encoder_stack(d_model, heads, layers, ff_mult, dropout)
        self.head = nn.Sequential(Dropout(dropout), nn.Linear(d_model, spec.num_outputs), output_layer(spec))

    def _build_input(self, spec: DataSpec, d_model: int) -> int:
        """Create the input side for ``spec``; returns the number of steps per example."""
        if self.text:
            self._build_text_input(spec, d_model)
        else:
            self._build_sequence_input(spec, d_model)
        return spec.input_shape[0]

    def _build_text_input(self, spec: DataSpec, d_model: int) -> None:
        if len(spec.input_shape) != 1:
            raise ConfigError(
                f"transformer needs text inputs of shape (max_length,). Received: input_shape={spec.input_shape}"
            )
        vocab = vocabulary_size(spec)
        self.pad_index = int(spec.extra.get("pad_index", 0))
        if not 0 <= self.pad_index < vocab:
            raise ConfigError(
                f"pad_index must be a token id below the vocabulary size {vocab}. Received: pad_index={self.pad_index}"
            )
        self.embed = TokenEmbedding(vocab, d_model, self.pad_index)

    def _build_sequence_input(self, spec: DataSpec, d_model: int) -> None:
        if len(spec.input_shape) != 2:
            raise ConfigError(
                f"transformer needs T x C sequence inputs (time steps x channels). "
                f"Received: input_shape={spec.input_shape}"
            )
        self.normalize = input_layer(spec)
        self.project = nn.Linear(spec.input_shape[1], d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.text:
            steps, padding = self.embed(x), padding_mask(x, self.pad_index)
        else:
            steps = self.project(self.normalize(x))
            padding = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)  # every time step is real
        if self.cls is not None:
            steps = torch.cat([self.cls.expand(len(x), -1, -1), steps], dim=1)
            padding = F.pad(padding, (1, 0), value=False)  # the cls token is always attended to
        hidden = self.encoder(self.dropout(self.positions(steps)), src_key_padding_mask=padding)
        if self.per_step:
            return self.head(hidden)  # N x T x K; padded steps get outputs too, which the tag task ignores
        return self.head(self._pool(hidden, padding))

    def _pool(self, hidden: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        if self.cls is not None:
            return hidden[:, 0]
        valid = (~padding).unsqueeze(-1).to(hidden.dtype)
        # Padded steps still get (meaningless) outputs from the encoder; the weights drop them.
        return (hidden * valid).sum(dim=1) / valid.sum(dim=1)


def padding_mask(tokens: torch.Tensor, pad_index: int) -> torch.Tensor:
    """``True`` where ``tokens`` is padding, as ``src_key_padding_mask`` expects.

    A row of padding alone keeps its first step, so that attention always has a key to weigh
    (an all-masked row would give NaN) and such a row is read as one padding token.
    """
    padding = tokens == pad_index
    padding[:, 0] &= ~padding.all(dim=1)
    return padding


@register_model(
    "transformer",
    modalities=("text", "sequence"),
    tasks=("classify", "regress", "forecast", "tag"),
    description="Transformer encoder (pre-norm, padding-masked) over tokens or time steps; mean or cls pooling, "
    "or a per-step tagging head",
)
def transformer(
    spec: DataSpec,
    d_model: int = 64,
    heads: int = 4,
    layers: int = 2,
    ff_mult: int = 4,
    dropout: float = 0.1,
    positional: str = "sinusoidal",
    pool: str = "mean",
) -> nn.Module:
    """Transformer encoder classifier/regressor; see ``TransformerClassifier`` for the arguments."""
    check_sizes(d_model, heads, layers, ff_mult, dropout)
    check_choice("positional", positional, POSITIONALS)
    check_choice("pool", pool, POOLS)
    return TransformerClassifier(spec, d_model, heads, layers, ff_mult, dropout, positional, pool)


class CausalTransformer(nn.Module):
    """A decoder-only language model: each position predicts the next token from the ones before it.

    Args:
        vocab_size: number of token ids.
        context: the most tokens the model reads at once (longer prompts keep their end).
        d_model: feature size.
        heads: attention heads per layer (must divide ``d_model``).
        layers: decoder layers.
        ff_mult: the feed-forward block's hidden size is ``ff_mult * d_model``.
        dropout: in attention, feed-forward blocks and after the positions.
        positional: ``learned`` or ``sinusoidal`` position encodings.

    The output projection is the token embedding itself (weight tying), which halves the
    parameters of a small model and ties what a token means on input to how it is predicted.

    Raises:
        ConfigError: a size or choice is invalid.
    """

    def __init__(
        self,
        vocab_size: int,
        context: int = 128,
        d_model: int = 128,
        heads: int = 4,
        layers: int = 4,
        ff_mult: int = 4,
        dropout: float = 0.1,
        positional: str = "learned",
    ) -> None:
        super().__init__()
        check_positive("vocab_size", vocab_size)
        check_positive("context", context)
        check_sizes(d_model, heads, layers, ff_mult, dropout)
        self.context = context
        self.embed = TokenEmbedding(vocab_size, d_model)
        self.positions = PositionalEncoding(context, d_model, positional)
        self.dropout = Dropout(dropout)
        self.decoder = encoder_stack(d_model, heads, layers, ff_mult, dropout)
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(context), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token logits.

        Args:
            tokens: int64 ids ``(N, T)`` with ``T <= context``.

        Returns:
            Logits ``(N, T, vocab_size)``; position ``t`` depends on ``tokens[:, : t + 1]`` only.

        Raises:
            DataError: ``T`` exceeds ``context``.
        """
        steps = tokens.shape[1]
        hidden = self.dropout(self.positions(self.embed(tokens)))
        hidden = self.decoder(hidden, mask=self.causal[:steps, :steps], is_causal=True)
        return hidden @ self.embed.table.weight.T

    @torch.no_grad()
    def generate(
        self,
        prompt_ids: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Extend a prompt by sampling one token at a time (in eval mode; the mode is restored).

        Args:
            prompt_ids: int64 ids ``(T,)`` or ``(N, T)``, ``T >= 1``.
            max_new_tokens: tokens to append.
            temperature: divides the logits; below 1 is more conservative, 0 picks the most
                likely token (greedy decoding).
            top_k: sample only among the ``top_k`` most likely tokens (all when None).
            generator: random generator on the model's device, for reproducible samples.

        Returns:
            The prompt followed by the new tokens, shape ``(T + max_new_tokens,)`` or
            ``(N, T + max_new_tokens)`` like ``prompt_ids``.

        Raises:
            ConfigError: a sampling option is out of range.
            DataError: the prompt is empty or not one- or two-dimensional.
        """
        self._check_sampling(max_new_tokens, temperature, top_k)
        if prompt_ids.ndim not in (1, 2) or prompt_ids.shape[-1] == 0:
            raise DataError(f"prompt_ids must be (T,) or (N, T) with T >= 1. Received shape {tuple(prompt_ids.shape)}")
        tokens = prompt_ids.reshape(-1, prompt_ids.shape[-1])
        was_training = self.training
        self.eval()
        try:
            for _ in range(max_new_tokens):
                logits = self(tokens[:, -self.context :])[:, -1]
                tokens = torch.cat([tokens, self._sample(logits, temperature, top_k, generator)], dim=1)
        finally:
            self.train(was_training)
        return tokens.reshape(*prompt_ids.shape[:-1], -1)

    @staticmethod
    def _sample(
        logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None
    ) -> torch.Tensor:
        """One token id per row of ``logits`` ``(N, vocab)``, as an ``(N, 1)`` tensor."""
        if temperature == 0:
            return logits.argmax(dim=-1, keepdim=True)
        logits = logits / temperature
        if top_k is not None and top_k < logits.shape[-1]:
            threshold = logits.topk(top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < threshold, float("-inf"))
        return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)

    @staticmethod
    def _check_sampling(max_new_tokens: int, temperature: float, top_k: int | None) -> None:
        if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ConfigError(
                f"max_new_tokens must be a whole number >= 0. Received: max_new_tokens={max_new_tokens!r}"
            )
        if not isinstance(temperature, (int, float)) or temperature < 0:
            raise ConfigError(f"temperature must be >= 0 (0 = greedy). Received: temperature={temperature!r}")
        if top_k is not None:
            check_positive("top_k", top_k)


@register_model(
    "char_transformer",
    modalities=("text",),
    tasks=("language_model",),
    description="Causal transformer decoder (GPT-style, tied embeddings) for character-level language modelling",
)
def char_transformer(
    spec: DataSpec,
    d_model: int = 128,
    heads: int = 4,
    layers: int = 2,
    ff_mult: int = 4,
    dropout: float = 0.1,
    positional: str = "learned",
) -> nn.Module:
    """A ``CausalTransformer`` over the spec's vocabulary whose context is the spec's window length.

    Raises:
        ConfigError: the spec's inputs are not ``(context,)`` token ids, it has no vocabulary, or
            its ``num_outputs`` differs from the vocabulary size (the logits cover the vocabulary).
    """
    if len(spec.input_shape) != 1:
        raise ConfigError(
            f"char_transformer needs text inputs of shape (context,). Received: input_shape={spec.input_shape}"
        )
    vocab = vocabulary_size(spec)
    if spec.num_outputs != vocab:
        raise ConfigError(
            f"char_transformer predicts one of the {vocab} vocabulary tokens, so num_outputs must be {vocab}. "
            f"Received: num_outputs={spec.num_outputs}"
        )
    check_choice("positional", positional, POSITIONALS)
    return CausalTransformer(vocab, spec.input_shape[0], d_model, heads, layers, ff_mult, dropout, positional)
