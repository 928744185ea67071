"""``fastspeech``: text to log-mel spectrogram without attention (task ``synthesize``).

The shape of FastSpeech (Ren et al., 2019), with convolutions in place of its transformer blocks so
that it trains in minutes on a CPU:

- an embedding and a stack of residual 1-D convolutions read the symbols (``^``, the characters of
  the text, ``$``);
- a duration predictor (two convolutions and a linear layer) gives each symbol's ``log(1 + frames)``;
- the *length regulator* repeats each symbol's encoding for its frames: the true durations during
  training (from the recogniser's CTC alignment, see ``glassnet.train.synthesis``), the predicted
  ones when a duration is given as ``-1``; each frame also learns where it is inside its symbol
  (its relative position and the symbol's length), which a convolutional decoder cannot count;
- a stack of dilated residual convolutions turns the frames into ``n_mels`` log-mel bands.

Inputs are ``N x 2 x L`` integers: symbol ids (0 pads) and durations in frames. The output packs both
predictions into one tensor, ``N x (n_mels + 1) x W`` with ``W`` the longest training clip's frames
(or more, for a longer utterance or text), the same for every batch: channels
``:n_mels`` are the spectrogram (frames past an utterance's end hold the log floor), channel
``n_mels`` holds the predicted ``log(1 + frames)`` of each symbol in its first ``L`` steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from glassnet.data.spec import DataSpec
from glassnet.errors import ConfigError
from glassnet.models.layers import Dropout, check_positive, check_probability
from glassnet.models.registry import register_model

LOG_FLOOR = math.log(1e-6)  # the log-mel of silence (``glassnet.data.audio.LOG_FLOOR``)


class ChannelNorm(nn.LayerNorm):
    """Layer norm over the channels of ``N x C x T`` activations (each frame on its own)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class ConvBlock(nn.Module):
    """``x + dropout(gelu(conv(norm(x))))``, with padded steps kept at zero."""

    def __init__(self, width: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.norm = ChannelNorm(width)
        self.conv = nn.Conv1d(width, width, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (x + self.dropout(F.gelu(self.conv(self.norm(x))))) * mask


class FastSpeech(nn.Module):
    """Symbols -> durations -> frames -> log-mel bands."""

    def __init__(
        self,
        spec: DataSpec,
        width: int,
        encoder_layers: int,
        decoder_layers: int,
        kernel: int,
        dropout: float,
    ) -> None:
        super().__init__()
        symbols = len(spec.extra["symbols"])
        self.n_mels = int(spec.extra["n_mels"])
        self.max_frames = int(spec.extra.get("max_frames", 0)) or None
        self.embed = nn.Embedding(symbols, width, padding_idx=0)
        self.encoder = nn.ModuleList(ConvBlock(width, kernel, 1, dropout) for _ in range(encoder_layers))
        self.duration = nn.Sequential(
            nn.Conv1d(width, width, 3, padding=1), nn.GELU(), ChannelNorm(width), Dropout(dropout),
            nn.Conv1d(width, width, 3, padding=1), nn.GELU(), ChannelNorm(width), Dropout(dropout),
            nn.Conv1d(width, 1, 1),
        )  # fmt: skip
        self.where = nn.Conv1d(3, width, 1)  # relative position in the symbol, its length, its reciprocal
        dilations = [2 ** (k % 3) for k in range(decoder_layers)]  # 1, 2, 4, 1, 2, 4, ...
        self.decoder = nn.ModuleList(ConvBlock(width, kernel, d, dropout) for d in dilations)
        self.norm = ChannelNorm(width)
        self.out = nn.Conv1d(width, self.n_mels, 1)
        nn.init.constant_(self.out.bias, float(spec.extra.get("mel_mean", 0.0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids, given = x[:, 0].long().contiguous(), x[:, 1].long()
        mask = (ids != 0).unsqueeze(1).float()  # N x 1 x L
        h = self.embed(ids).transpose(1, 2) * mask  # N x C x L
        for block in self.encoder:
            h = block(h, mask)
        log_durations = self.duration(h).squeeze(1) * mask.squeeze(1)  # N x L
        durations = torch.where(given >= 0, given, self.frames_of(log_durations)) * (ids != 0)
        frames, frame_mask = self.regulate(h, durations)
        for block in self.decoder:
            frames = block(frames, frame_mask)
        mel = self.out(self.norm(frames))
        mel = torch.where(frame_mask.bool(), mel, torch.full_like(mel, LOG_FLOOR))
        width = max(mel.shape[2], ids.shape[1], self.max_frames or 0)  # one width for every batch (they concatenate)
        out = mel.new_full((mel.shape[0], self.n_mels + 1, width), LOG_FLOOR)
        out[:, : self.n_mels, : mel.shape[2]] = mel
        out[:, self.n_mels, : ids.shape[1]] = log_durations.to(out.dtype)
        return out

    def frames_of(self, log_durations: torch.Tensor) -> torch.Tensor:
        """Predicted durations in whole frames."""
        return (log_durations.detach().float().exp() - 1).round().clamp(min=0).long()

    def regulate(self, h: torch.Tensor, durations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each symbol's encoding repeated for its frames, with where each frame lies in its symbol.

        Returns:
            ``N x C x T`` frames (zero past each utterance's end) and their ``N x 1 x T`` mask.
        """
        durations = durations.clamp(min=0)
        if self.max_frames is not None:  # a runaway prediction cannot ask for unbounded memory
            durations = durations * (durations.sum(1, keepdim=True) <= 4 * self.max_frames)
        ends = durations.cumsum(1)  # N x L
        total = int(ends[:, -1].max().item()) if ends.numel() else 0
        steps = torch.arange(max(total, 1), device=h.device).repeat(len(h), 1)  # N x T
        owner = torch.searchsorted(ends, steps, right=True).clamp(max=h.shape[2] - 1)  # the symbol of each frame
        valid = steps < ends[:, -1:]
        length = durations.gather(1, owner).float().clamp(min=1)
        start = (ends - durations).gather(1, owner).float()
        where = torch.stack([(steps - start + 0.5) / length, length / 20, 1 / length], dim=1)
        frames = h.gather(2, owner.unsqueeze(1).expand(-1, h.shape[1], -1)) + self.where(where.to(h.dtype))
        mask = valid.unsqueeze(1).to(h.dtype)
        return frames * mask, mask


@register_model(
    "fastspeech",
    modalities=("audio",),
    tasks=("synthesize",),
    description="text to speech: convolutional FastSpeech with a duration predictor (durations from CTC alignments)",
)
def fastspeech(
    spec: DataSpec,
    width: int = 192,
    encoder_layers: int = 4,
    decoder_layers: int = 6,
    kernel: int = 5,
    dropout: float = 0.1,
) -> nn.Module:
    """Convolutional FastSpeech for a ``synthesize`` spec (symbols in, ``n_mels`` log-mel bands out).

    Args:
        spec: the data the model is built for (a ``synthesize`` spec: ``extra["symbols"]``, ``extra["n_mels"]``).
        width: channels of every convolution.
        encoder_layers: residual convolutions over the symbols.
        decoder_layers: dilated residual convolutions over the frames (dilations 1, 2, 4 in turn).
        kernel: kernel size of the residual convolutions (odd).
        dropout: dropout after each convolution.
    """
    for name, value in (("width", width), ("encoder_layers", encoder_layers), ("decoder_layers", decoder_layers)):
        check_positive(name, value)
    check_probability("dropout", dropout)
    if kernel < 1 or kernel % 2 == 0:
        raise ConfigError(f"kernel must be a positive odd number. Received: kernel={kernel}")
    if spec.task != "synthesize" or "symbols" not in spec.extra or "n_mels" not in spec.extra:
        raise ConfigError(
            f"fastspeech turns text into speech and needs a synthesis dataset (task synthesize); this data's task "
            f"is {spec.task!r}. Train it on speech with transcripts, e.g. --data one-voice"
        )
    return FastSpeech(spec, width, encoder_layers, decoder_layers, kernel, dropout)
