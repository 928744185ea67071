"""Recurrent networks (plain RNN, LSTM, GRU) over token sequences or multichannel time series.

One implementation with a cell choice, registered as ``rnn``, ``lstm`` and ``gru``. Text inputs
(token ids, padding at the end) go through an embedding and are packed, so padding never reaches
the recurrence; sequence inputs (``T x C``) are standardised by the model's first layer.

Many-to-one (``classify``, ``regress``, ``forecast``): the sequence is pooled, then one head.
Many-to-many (``tag``, sequence labelling): the head reads every step's output and gives one
prediction per step (``N x T x K`` logits); the recurrence is bidirectional by default, so each
step's tag sees the whole sequence.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError
from glassnet.models.layers import Dropout, check_positive, check_probability, input_layer, output_layer
from glassnet.models.registry import register_model

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
POOLS = ("last", "mean", "max")


def vocabulary_size(spec: DataSpec) -> int:
    """Number of token ids a text spec's inputs may hold (its vocabulary, specials included)."""
    if "vocab" in spec.extra:
        return len(spec.extra["vocab"])
    if "vocab_size" in spec.extra:
        return int(spec.extra["vocab_size"])
    raise ConfigError(f"text data {spec.name!r} carries no vocabulary (spec.extra['vocab']); re-load the dataset")


class RecurrentNet(nn.Module):
    """``embedding or standardisation -> stacked (bi)directional RNN -> pooling -> head``.

    Args:
        spec: a ``text`` (``max_length`` token ids) or ``sequence`` (``T x C``) spec.
        cell: ``rnn``, ``lstm`` or ``gru``.
        hidden: hidden units per direction.
        layers: stacked recurrent layers.
        bidirectional: also read the sequence backwards.
        dropout: between stacked layers and before the head.
        embedding_dim: token embedding size (text only).
        pool: summary of the sequence fed to the head: ``last`` hidden state (both directions),
            ``mean`` or ``max`` over the valid (unpadded) steps. Unused for ``tag`` specs, whose
            head reads every step.
    """

    def __init__(
        self,
        spec: DataSpec,
        cell: str,
        hidden: int,
        layers: int,
        bidirectional: bool,
        dropout: float,
        embedding_dim: int,
        pool: str,
    ) -> None:
        super().__init__()
        self.text = spec.modality == "text"
        self.pool = pool
        self.per_step = spec.task == "tag"
        if self.text:
            self.pad_index = int(spec.extra.get("pad_index", 0))
            self.embedding = nn.Embedding(vocabulary_size(spec), embedding_dim, padding_idx=self.pad_index)
            input_size = embedding_dim
        else:
            if len(spec.input_shape) != 2:
                raise ConfigError(f"{cell} needs T x C sequence inputs. Received: input_shape={spec.input_shape}")
            self.normalize = input_layer(spec)
            input_size = spec.input_shape[1]
        self.rnn = CELLS[cell](
            input_size,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
        )
        directions = 2 if bidirectional else 1
        self.head = nn.Sequential(
            Dropout(dropout), nn.Linear(hidden * directions, spec.num_outputs), output_layer(spec)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.text:
            lengths = (x != self.pad_index).sum(dim=1).clamp_min(1)
            packed = pack_padded_sequence(self.embedding(x), lengths.cpu(), batch_first=True, enforce_sorted=False)
            outputs, state = self.rnn(packed)
            outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=x.shape[1])
        else:
            outputs, state = self.rnn(self.normalize(x))
            lengths = torch.full((len(x),), x.shape[1], device=x.device)
        if self.per_step:
            return self.head(outputs)  # N x T x K; padded steps get outputs too, which the tag task ignores
        return self.head(self._summarise(outputs, state, lengths))

    def _summarise(self, outputs: torch.Tensor, state: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.pool == "last":
            hidden = state[0] if isinstance(state, tuple) else state  # LSTM state is (h, c)
            directions = 2 if self.rnn.bidirectional else 1
            return torch.cat(list(hidden[-directions:]), dim=1)  # last layer, every direction
        steps = torch.arange(outputs.shape[1], device=outputs.device)
        valid = (steps[None, :] < lengths.to(outputs.device)[:, None]).unsqueeze(-1)
        if self.pool == "mean":
            return (outputs * valid).sum(dim=1) / lengths.to(outputs.device)[:, None]
        return outputs.masked_fill(~valid, float("-inf")).amax(dim=1)


def _build(
    cell: str,
    spec: DataSpec,
    hidden: int,
    layers: int,
    bidirectional: bool | None,
    dropout: float,
    embedding_dim: int,
    pool: str,
) -> nn.Module:
    if bidirectional is None:  # auto: a step's tag may depend on what follows it
        bidirectional = spec.task == "tag"
    check_positive("hidden", hidden)
    check_positive("layers", layers)
    check_positive("embedding_dim", embedding_dim)
    check_probability("dropout", dropout)
    if pool not in POOLS:
        raise ConfigError(f"pool must be one of {', '.join(POOLS)}. Received: pool={pool!r}")
    return RecurrentNet(spec, cell, hidden, layers, bool(bidirectional), dropout, embedding_dim, pool)


def _register(cell: str, bidirectional_default: bool | None, description: str) -> None:
    """Register ``cell`` as a model whose hyper-parameters are those of ``RecurrentNet``.

    ``bidirectional=None`` means: bidirectional for ``tag`` (sequence labelling), one direction otherwise.
    """

    def build(
        spec: DataSpec,
        hidden: int = 128,
        layers: int = 1,
        bidirectional: bool | None = bidirectional_default,
        dropout: float = 0.2,
        embedding_dim: int = 100,
        pool: str = "last",
    ) -> nn.Module:
        return _build(cell, spec, hidden, layers, bidirectional, dropout, embedding_dim, pool)

    build.__name__ = build.__qualname__ = cell
    build.__doc__ = f"{description}; see ``RecurrentNet`` for the arguments."
    register_model(
        cell,
        modalities=("text", "sequence"),
        tasks=("classify", "regress", "forecast", "tag"),
        description=description,
        # bf16 autocast slows the recurrences on a CPU even with AMX (sentiment, one epoch: gru 2,722
        # against 4,668 examples/s in fp32, lstm 1,880 against 2,342, rnn 5,223 against 10,352), so
        # ``--fast`` keeps fp32 there
        bf16_cpu=False,
    )(build)


_register("rnn", None, "Elman RNN (tanh) over tokens or time steps; stacked, bidirectional; per-step tagging head")
_register("lstm", True, "LSTM over tokens (packed) or time steps; stacked, bidirectional; per-step tagging head")
_register("gru", True, "GRU over tokens (packed) or time steps; stacked, bidirectional; per-step tagging head")
