"""``speech_ctc``: a speech recogniser for log-mel spectrograms, trained with CTC (task ``transcribe``).

Two strided 2-D convolutions read the spectrogram (``1 x mels x frames``), halving the mel axis
twice and the time axis ``stride`` times (3: one output every 30 ms at a 10 ms hop, 33 per second,
more than the characters per second of fast speech, about 15 on average); a bidirectional GRU reads the resulting
frames in both directions, and a linear layer gives logits over the alphabet (blank first) at each
output step: ``N x frames' x symbols``. This is the shape of DeepSpeech 2 and of the small CTC
models of the speech-recognition tutorials, sized for a CPU.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError
from glassnet.models.layers import Dropout, check_positive, check_probability, input_layer
from glassnet.models.registry import register_model


class SpeechCTC(nn.Module):
    """Conv front end, bidirectional GRU, per-frame symbol logits."""

    def __init__(self, spec: DataSpec, channels: int, hidden: int, layers: int, dropout: float, stride: int) -> None:
        super().__init__()
        _, mels, frames = spec.input_shape
        self.normalize = input_layer(spec)
        self.front = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=(2, stride), padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.GELU(),
            nn.Conv2d(channels, channels, 3, stride=(2, 1), padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.GELU(),
        )
        reduced = math.ceil(math.ceil(mels / 2) / 2)
        self.project = nn.Sequential(nn.Linear(channels * reduced, hidden), nn.GELU(), Dropout(dropout))
        self.rnn = nn.GRU(hidden, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                          dropout=dropout if layers > 1 else 0.0)  # fmt: skip
        self.dropout = Dropout(dropout)
        self.head = nn.Linear(2 * hidden, spec.num_outputs)
        self.output_frames = math.ceil(frames / stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.front(self.normalize(x))  # N x C x mels/4 x frames/stride
        x = x.permute(0, 3, 1, 2).flatten(2)  # N x T' x C * mels/4
        x, _ = self.rnn(self.project(x))
        return self.head(self.dropout(x))  # N x T' x symbols


@register_model(
    "speech_ctc",
    modalities=("audio",),
    tasks=("transcribe",),
    description="speech recogniser: strided conv front end, bidirectional GRU, CTC over characters",
)
def speech_ctc(
    spec: DataSpec, channels: int = 32, hidden: int = 128, layers: int = 2, dropout: float = 0.1, stride: int = 3
) -> nn.Module:
    """CTC speech recogniser for ``1 x mels x frames`` log-mel spectrograms.

    Args:
        spec: the data the model is built for (an audio spec of the ``transcribe`` task).
        channels: channels of the two convolutions.
        hidden: GRU units per direction (and the width of the projection before it).
        layers: stacked bidirectional GRU layers.
        dropout: dropout between the layers.
        stride: time steps of the input per output step (1 to 4); the model emits
            ``ceil(frames / stride)`` steps, which must exceed the characters of the longest transcript.
    """
    for name, value in (("channels", channels), ("hidden", hidden), ("layers", layers), ("stride", stride)):
        check_positive(name, value)
    check_probability("dropout", dropout)
    if len(spec.input_shape) != 3 or spec.input_shape[0] != 1:
        raise ConfigError(
            f"speech_ctc needs 1 x mels x frames spectrograms; the data has input_shape {list(spec.input_shape)}"
        )
    if stride > 4:
        raise ConfigError(f"stride must be 1 to 4. Received: stride={stride}")
    model = SpeechCTC(spec, channels, hidden, layers, dropout, stride)
    longest = int(spec.extra.get("max_transcript", 0))
    if longest and model.output_frames < longest:
        raise ConfigError(
            f"speech_ctc with stride={stride} emits {model.output_frames} steps, fewer than the {longest} characters "
            "of the longest transcript; lower stride"
        )
    return model
