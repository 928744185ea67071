"""Encoder-decoder with attention (``seq2seq``): token ids in, per-step logits of a target vocabulary out.

The encoder embeds the source ids and reads them with a (bidirectional) GRU over packed sequences,
so padding never reaches the recurrence; attention masks the padded positions too, so extra
padding never changes the output. The decoder is a GRU cell fed with the previous token and the
previous context vector ("input feeding", Luong et al. 2015); after each step it attends over the
encoder states with an ``additive`` score (Bahdanau et al. 2015) or a ``dot`` score against
projected encoder states (Luong's "general"), and predicts the next token from its state, the
context and the previous token.

``model(inputs, targets)`` decodes with teacher forcing (the decoder reads the true previous
token); ``model(inputs)`` decodes greedily for ``spec.extra["max_target_length"]`` steps. Both
return logits ``N x T_out x V``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError
from glassnet.models.layers import Dropout, check_positive, check_probability
from glassnet.models.recurrent import vocabulary_size
from glassnet.models.registry import register_model

ATTENTIONS = ("additive", "dot")
REQUIRED_EXTRA = ("target_vocab", "bos_index", "eos_index", "max_target_length")


class Attention(nn.Module):
    """Scores a decoder state against every encoder state; returns the context and the weights.

    Args:
        kind: ``additive`` (``v . tanh(W q + U k)``) or ``dot`` (``q . U k``).
        hidden: decoder state size.
        memory_size: encoder state size.
    """

    def __init__(self, kind: str, hidden: int, memory_size: int) -> None:
        super().__init__()
        self.kind = kind
        self.keys = nn.Linear(memory_size, hidden, bias=False)
        if kind == "additive":
            self.query = nn.Linear(hidden, hidden)
            self.score = nn.Linear(hidden, 1, bias=False)

    def forward(
        self, state: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from ``state`` (``N x H``) over ``memory`` (``N x T x M``) whose ``keys`` are ``self.keys(memory)``.

        Returns:
            ``(context N x M, weights N x T)``; padded positions (``~valid``) get zero weight.
        """
        if self.kind == "additive":
            scores = self.score(torch.tanh(self.query(state)[:, None, :] + keys)).squeeze(-1)
        else:
            scores = torch.einsum("nh,nth->nt", state, keys)
        weights = scores.masked_fill(~valid, float("-inf")).softmax(dim=1)
        return torch.einsum("nt,ntm->nm", weights, memory), weights


class Seq2Seq(nn.Module):
    """``embedding -> (bi)GRU encoder -> GRU decoder with attention -> logits per output step``.

    Args:
        spec: a ``text`` spec for the ``seq2seq`` task (see ``REQUIRED_EXTRA``).
        hidden: encoder units per direction and decoder units.
        embedding_dim: size of the source and target token embeddings.
        attention: ``additive`` or ``dot``.
        dropout: on embeddings and before the output layer.
        bidirectional: read the source in both directions.
    """

    def __init__(
        self, spec: DataSpec, hidden: int, embedding_dim: int, attention: str, dropout: float, bidirectional: bool
    ) -> None:
        super().__init__()
        extra = spec.extra
        self.pad_index = int(extra.get("pad_index", 0))
        self.bos_index = int(extra["bos_index"])
        self.max_target_length = int(extra["max_target_length"])
        memory_size = hidden * (2 if bidirectional else 1)
        self.source_embedding = nn.Embedding(vocabulary_size(spec), embedding_dim, padding_idx=self.pad_index)
        self.encoder = nn.GRU(embedding_dim, hidden, batch_first=True, bidirectional=bidirectional)
        self.bridge = nn.Linear(memory_size, hidden)
        self.target_embedding = nn.Embedding(spec.num_outputs, embedding_dim, padding_idx=self.pad_index)
        self.decoder = nn.GRUCell(embedding_dim + memory_size, hidden)
        self.attention = Attention(attention, hidden, memory_size)
        self.dropout = Dropout(dropout)
        self.head = nn.Linear(hidden + memory_size + embedding_dim, spec.num_outputs)

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``N x T_out x V``: teacher-forced on ``targets`` when given, greedy otherwise.

        Args:
            inputs: ``N x T_in`` source ids, padding at the end.
            targets: ``N x T_out`` target ids ending in ``<eos>`` then padding (training).
        """
        memory, state, valid = self.encode(inputs)
        keys = self.attention.keys(memory)
        context = memory.new_zeros(len(inputs), memory.shape[2])
        token = torch.full((len(inputs),), self.bos_index, dtype=torch.long, device=inputs.device)
        steps = self.max_target_length if targets is None else targets.shape[1]
        logits = []
        for step in range(steps):
            step_logits, state, context = self.decode_step(token, state, context, memory, keys, valid)
            logits.append(step_logits)
            token = step_logits.argmax(dim=1) if targets is None else targets[:, step]
        return torch.stack(logits, dim=1)

    def encode(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encoder states ``N x T_in x M``, the decoder's first state ``N x H`` and the valid-position mask."""
        valid = inputs != self.pad_index
        lengths = valid.sum(dim=1).clamp_min(1)  # an all-padding source still gets one step
        valid[:, 0] = True
        embedded = self.dropout(self.source_embedding(inputs))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, final = self.encoder(packed)
        memory, _ = pad_packed_sequence(outputs, batch_first=True, total_length=inputs.shape[1])
        state = torch.tanh(self.bridge(torch.cat(list(final), dim=1)))  # every direction's last state
        return memory, state, valid

    def decode_step(
        self,
        token: torch.Tensor,
        state: torch.Tensor,
        context: torch.Tensor,
        memory: torch.Tensor,
        keys: torch.Tensor,
        valid: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One decoder step from the previous ``token``; returns ``(logits N x V, new state, new context)``."""
        embedded = self.dropout(self.target_embedding(token))
        state = self.decoder(torch.cat([embedded, context], dim=1), state)
        context, _ = self.attention(state, memory, keys, valid)
        logits = self.head(self.dropout(torch.cat([state, context, embedded], dim=1)))
        return logits, state, context


@register_model(
    "seq2seq",
    modalities=("text",),
    tasks=("seq2seq",),
    description="GRU encoder-decoder with additive or dot-product attention, teacher forcing and greedy decoding",
)
def seq2seq(
    spec: DataSpec,
    hidden: int = 128,
    embedding_dim: int = 64,
    attention: str = "additive",
    dropout: float = 0.1,
    bidirectional: bool = True,
) -> nn.Module:
    """Encoder-decoder with attention for string-to-string tasks; see ``Seq2Seq`` for the arguments."""
    check_positive("hidden", hidden)
    check_positive("embedding_dim", embedding_dim)
    check_probability("dropout", dropout)
    if attention not in ATTENTIONS:
        raise ConfigError(f"attention must be one of {', '.join(ATTENTIONS)}. Received: attention={attention!r}")
    _check_spec(spec)
    return Seq2Seq(spec, hidden, embedding_dim, attention, dropout, bool(bidirectional))


def _check_spec(spec: DataSpec) -> None:
    """The spec must describe target tokens, not only source tokens."""
    missing = [key for key in REQUIRED_EXTRA if key not in spec.extra]
    if missing:
        raise ConfigError(
            f"seq2seq needs a target vocabulary and decoding limits in the data spec, but dataset "
            f"{spec.name or '(unnamed)'!r} lacks spec.extra[{', '.join(map(repr, missing))}]. Load a "
            f"sequence-to-sequence dataset (e.g. reverse-strings, digits-to-words)"
        )
    if len(spec.extra["target_vocab"]) != spec.num_outputs:
        raise ConfigError(
            f"num_outputs must equal the target vocabulary size. Received: num_outputs={spec.num_outputs}, "
            f"len(target_vocab)={len(spec.extra['target_vocab'])}"
        )
    check_positive("max_target_length", spec.extra["max_target_length"])
    if not 0 <= int(spec.extra["bos_index"]) < spec.num_outputs:
        raise ConfigError(f"bos_index must be a target token id. Received: bos_index={spec.extra['bos_index']!r}")
