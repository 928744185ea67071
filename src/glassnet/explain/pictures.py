"""Pictures of attributions, one kind per modality: heat-map overlays (images, spectrograms), signed bar
charts (tables), coloured time axes (series), highlighted tokens (text, as HTML), and the trust curves.

A modality names the kind of picture that draws its explanations (``Modality.picture``); the kinds are
registered here (``register_picture``), so the data layer never imports the drawing code, and a new
modality either names a kind that exists or registers its own.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.errors import UnknownNameError
from glassnet.explain.methods import METHODS
from glassnet.figures import pyplot, save_figure

if TYPE_CHECKING:
    from glassnet.data.spec import DataSpec
    from glassnet.explain.attribute import Attributions

POSITIVE, NEGATIVE = "#c0392b", "#2166ac"
CMAP = "RdBu_r"  # attribution maps: red for the class, blue against it, white for nothing
SERIES_SHOWN = 4  # spectrograms and series are wide: fewer of them fit a readable figure

Figure = Callable[[str], "str | os.PathLike[str]"]  # a figure's name -> the path of its PNG (``RunDir.figure``)
Drawer = Callable[["Attributions", "DataSpec", Sequence[str], Figure], list[str]]
WorstDrawer = Callable[["Attributions", Sequence[str], Figure], list[str]]


@dataclass(frozen=True)
class PictureKind:
    """How one kind of picture draws an explanation.

    Attributes:
        examples: ``(attributions, spec, titles, figure) -> names written``: the explained examples
            (one title per example shown) and any per-class views.
        highest_loss: ``(attributions, titles, figure) -> names written``: the test examples with the
            highest loss, or None when the kind has no such picture.
    """

    examples: Drawer
    highest_loss: WorstDrawer | None = None


_KINDS: dict[str, PictureKind] = {}


def register_picture(kind: str, examples: Drawer, highest_loss: WorstDrawer | None = None) -> None:
    """Register the drawers of a picture kind (the name a ``Modality.picture`` gives).

    Raises:
        ValueError: the kind is registered already.
    """
    if kind in _KINDS:
        raise ValueError(f"picture kind {kind!r} is registered twice")
    _KINDS[kind] = PictureKind(examples, highest_loss)


def draw_examples(
    kind: str | None, attributions: Attributions, spec: DataSpec, titles: Sequence[str], figure: Figure
) -> list[str]:
    """Draw the explained examples with the picture ``kind``; return the figure names written (none for None).

    Raises:
        UnknownNameError: ``kind`` is not a registered picture kind.
    """
    if kind is None:
        return []
    return _kind(kind).examples(attributions, spec, titles, figure)


def draw_highest_loss(kind: str | None, attributions: Attributions, titles: Sequence[str], figure: Figure) -> list[str]:
    """Draw the highest-loss examples where the picture ``kind`` has such a picture; return the names written.

    Raises:
        UnknownNameError: ``kind`` is not a registered picture kind.
    """
    if kind is None:
        return []
    drawer = _kind(kind).highest_loss
    return [] if drawer is None else drawer(attributions, titles, figure)


def _kind(kind: str) -> PictureKind:
    if kind not in _KINDS:
        raise UnknownNameError("picture kind", kind, _KINDS)
    return _KINDS[kind]


def _limit(values: np.ndarray) -> float:
    """A symmetric colour limit that a few extreme values do not wash out."""
    finite = np.abs(values[np.isfinite(values)])
    return float(np.percentile(finite, 99)) if finite.size and finite.max() > 0 else 1.0


def scaled(values: np.ndarray) -> np.ndarray:
    """``values`` divided by their colour limit (``_limit``): 1 is the example's strongest evidence for the class,
    -1 its strongest against; the few values beyond are clipped, so one colour bar reads for every example."""
    return np.clip(values / _limit(values), -1.0, 1.0)


def attribution_colorbar(fig: Any, axes: Any, image: Any) -> Any:
    """The colour bar that says what the colours of the attribution maps mean (maps drawn with ``scaled``)."""
    bar = fig.colorbar(image, ax=axes, shrink=0.8, pad=0.02, aspect=25, ticks=[-1, 0, 1])
    bar.ax.set_yticklabels(["-1 against", "0", "+1 for"], fontsize=7)
    bar.set_label("attribution towards the class\n(1 = the strongest value of each map)", fontsize=7)
    return bar


def _heat(ax: Any, values: np.ndarray, **kwargs: Any) -> Any:
    """An attribution map drawn as pixels (no smoothing), on the shared colour scale of ``scaled``."""
    return ax.imshow(scaled(values), cmap=CMAP, vmin=-1, vmax=1, interpolation="nearest", **kwargs)


def _show_input(ax: Any, image: np.ndarray) -> None:
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray", interpolation="nearest")
    else:
        ax.imshow(np.clip(image[:3].transpose(1, 2, 0), 0, 1), interpolation="nearest")


def image_overlays(
    images: np.ndarray,
    heat: np.ndarray,
    titles: Sequence[str],
    path: str | os.PathLike[str],
    columns: int = 4,
) -> None:
    """Each input beside its attribution map, pixel for pixel (red: supports the class, blue: against it), with
    one colour bar for all of them."""
    plt = pyplot()
    n = len(images)
    columns = max(1, min(columns, n))
    rows = max(1, int(np.ceil(n / columns)))
    fig, axes = plt.subplots(rows, columns * 2, figsize=(columns * 2 * 1.5 + 1.2, rows * 1.75), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    shown = None
    for k in range(n):
        r, c = divmod(k, columns)
        left, right = axes[r, 2 * c], axes[r, 2 * c + 1]
        _show_input(left, images[k])
        left.set_title(titles[k], fontsize=7)
        shown = _heat(right, heat[k])
        right.set_title("attribution", fontsize=7)
    if shown is not None:
        attribution_colorbar(fig, axes.ravel().tolist(), shown)
    save_figure(fig, path)


def heat_grid(heat: np.ndarray, titles: Sequence[str], path: str | os.PathLike[str], columns: int = 6) -> None:
    """Attribution maps alone (per-class means), drawn as pixels, with one colour bar."""
    plt = pyplot()
    n = len(heat)
    columns = max(1, min(columns, n))
    rows = max(1, int(np.ceil(n / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.5 + 1.2, rows * 1.7), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    shown = None
    for k in range(n):
        ax = axes.flat[k]
        shown = _heat(ax, heat[k])
        ax.set_title(titles[k], fontsize=7)
    if shown is not None:
        attribution_colorbar(fig, axes.ravel().tolist(), shown)
    save_figure(fig, path)


def spectrogram_overlays(
    spectrograms: np.ndarray, heat: np.ndarray, titles: Sequence[str], path: str | os.PathLike[str]
) -> None:
    """Spectrograms (mel bands up, frames across) beside their attribution, cell for cell, with one colour bar."""
    plt = pyplot()
    n = len(spectrograms)
    fig, axes = plt.subplots(n, 2, figsize=(8.8, 1.9 * n), squeeze=False)
    shown = None
    for k in range(n):
        axes[k, 0].imshow(spectrograms[k][0], origin="lower", aspect="auto", cmap="magma", interpolation="nearest")
        axes[k, 0].set(title=titles[k], ylabel="mel band")
        shown = _heat(axes[k, 1], heat[k], origin="lower", aspect="auto")
        axes[k, 1].set(title="attribution")
    for ax in axes[-1]:
        ax.set_xlabel("frame")
    attribution_colorbar(fig, axes.ravel().tolist(), shown)
    save_figure(fig, path)


def series_overlays(
    series: np.ndarray,
    per_step: np.ndarray,
    titles: Sequence[str],
    path: str | os.PathLike[str],
    channel_names: Sequence[str] = (),
) -> None:
    """Time series (``T x C``) over a background coloured by each time step's attribution (one band per step,
    no smoothing), with one colour bar."""
    plt = pyplot()
    n = len(series)
    fig, axes = plt.subplots(n, 1, figsize=(8.8, 1.8 * n), squeeze=False)
    shown = None
    for k in range(n):
        ax = axes[k, 0]
        steps = series[k].shape[0]
        shown = _heat(
            ax,
            per_step[k][None, :],
            aspect="auto",
            alpha=0.45,
            extent=(-0.5, steps - 0.5, float(series[k].min()), float(series[k].max()) + 1e-9),
        )
        for c in range(series[k].shape[1]):
            label = channel_names[c] if c < len(channel_names) else None
            ax.plot(np.arange(steps), series[k][:, c], linewidth=1, label=label)
        ax.set_title(titles[k], fontsize=8)
        if channel_names and k == 0:
            ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time step")
    attribution_colorbar(fig, axes.ravel().tolist(), shown)
    save_figure(fig, path)


def feature_bars(
    names: Sequence[str], values: np.ndarray, title: str, path: str | os.PathLike[str], top: int = 15
) -> None:
    """Signed horizontal bars of the features with the largest magnitude (red pushes towards the class)."""
    plt = pyplot()
    order = np.argsort(-np.abs(values))[:top][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.32 * len(order) + 1))
    ax.barh(
        [names[i] for i in order],
        values[order],
        color=[POSITIVE if values[i] > 0 else NEGATIVE for i in order],
    )
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set(title=title, xlabel="attribution (towards the explained class)")
    ax.tick_params(axis="y", labelsize=8)
    save_figure(fig, path)


def curves(faithfulness: dict[str, Any], title: str, path: str | os.PathLike[str]) -> None:
    """Deletion and insertion curves of the method against random orderings."""
    plt = pyplot()
    x = faithfulness["fractions"]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    for ax, key, label in ((axes[0], "deletion", "Deletion (lower is better)"), (axes[1], "insertion", "Insertion")):
        ax.plot(x, faithfulness[key], marker=".", label=f"{title} (area {faithfulness[key + '_auc']:.3f})")
        ax.plot(
            x,
            faithfulness["random_" + key],
            linestyle="--",
            color="grey",
            label=f"random order (area {faithfulness['random_' + key + '_auc']:.3f})",
        )
        ax.set(title=label + ("" if key == "deletion" else " (higher is better)"), xlabel="fraction of input changed")
        ax.set_ylabel("score of the explained class")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)


def token_html(tokens: Sequence[str], scores: Sequence[float], limit: float | None = None) -> str:
    """Tokens as HTML spans shaded by attribution: red supports the class, blue speaks against it."""
    values = np.asarray(scores, dtype=float)
    limit = limit or _limit(values) or 1.0
    spans = []
    for token, score in zip(tokens, values, strict=True):
        strength = float(min(1.0, abs(score) / limit))
        rgb = (192, 57, 43) if score > 0 else (33, 102, 172)
        spans.append(
            f'<span title="{score:+.4f}" style="background:rgba({rgb[0]},{rgb[1]},{rgb[2]},{strength:.2f});'
            f'padding:1px 2px;border-radius:3px">{html.escape(token)}</span>'
        )
    return " ".join(spans)


# --- the picture kinds of the built-in modalities ------------------------------------------------


def _image_examples(attributions: Attributions, spec: DataSpec, titles: Sequence[str], figure: Figure) -> list[str]:
    """Overlays of the first examples, and each predicted class's mean map (classification)."""
    x = attributions.inputs.numpy()
    if x.ndim != 4:
        return []
    shown = len(titles)
    heat = attributions.per_unit().numpy()
    image_overlays(x[:shown], heat[:shown], titles, figure("explain_examples"))
    written = ["explain_examples"]
    if spec.task == "classify":
        names = list(spec.class_names) or [str(i) for i in range(spec.num_outputs)]
        classes = [c for c in range(spec.num_outputs) if bool((attributions.target == c).any())]
        means = np.stack([heat[(attributions.target == c).numpy()].mean(axis=0) for c in classes])
        heat_grid(means, [f"predicted {names[c]}" for c in classes], figure("explain_classes"))
        written.append("explain_classes")
    return written


def _image_highest_loss(attributions: Attributions, titles: Sequence[str], figure: Figure) -> list[str]:
    """Overlays of the highest-loss examples, three to a row."""
    if attributions.values.dim() != 4:
        return []
    image_overlays(
        attributions.inputs.numpy(), attributions.per_unit().numpy(), titles, figure("explain_highest_loss"), columns=3
    )
    return ["explain_highest_loss"]


def _spectrogram_examples(
    attributions: Attributions, spec: DataSpec, titles: Sequence[str], figure: Figure
) -> list[str]:
    """Overlays of the first spectrograms."""
    x = attributions.inputs.numpy()
    if x.ndim != 4:
        return []
    shown = min(SERIES_SHOWN, len(titles))
    heat = attributions.per_unit().numpy()
    spectrogram_overlays(x[:shown], heat[:shown], titles, figure("explain_examples"))
    return ["explain_examples"]


def _series_examples(attributions: Attributions, spec: DataSpec, titles: Sequence[str], figure: Figure) -> list[str]:
    """The first series over their attribution per time step (channels summed)."""
    x = attributions.inputs.numpy()
    if x.ndim != 3:
        return []
    shown = min(SERIES_SHOWN, len(titles))
    per_step = attributions.values.sum(dim=2).numpy()
    series_overlays(x[:shown], per_step[:shown], titles, figure("explain_examples"), spec.feature_names)
    return ["explain_examples"]


def _feature_examples(attributions: Attributions, spec: DataSpec, titles: Sequence[str], figure: Figure) -> list[str]:
    """The mean attribution per feature over the explained examples, as signed bars."""
    names = list(spec.feature_names) or [f"x{i}" for i in range(attributions.values[0].numel())]
    mean = attributions.values.flatten(1).mean(dim=0).numpy()
    label = METHODS[attributions.method].label
    feature_bars(names, mean, f"{label}: mean attribution per feature", figure("explain_features"))
    return ["explain_features"]


register_picture("image", _image_examples, _image_highest_loss)
register_picture("spectrogram", _spectrogram_examples)
register_picture("series", _series_examples)
register_picture("features", _feature_examples)
