"""The attribution methods glassnet offers, each a thin, checked call of Captum's implementation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodInfo:
    """What the report and the error messages say about a method.

    Attributes:
        name: the name ``explain(method=...)`` and ``--method`` take.
        label: a human name.
        gradient: whether it uses the model's gradients (the randomisation test applies to those).
        text: whether it can explain token inputs (through the embedding layer or by masking tokens).
        description: one sentence for readers who do not know the method.
    """

    name: str
    label: str
    gradient: bool
    text: bool
    description: str


METHODS: dict[str, MethodInfo] = {
    m.name: m
    for m in (
        MethodInfo(
            "saliency",
            "Saliency",
            True,
            True,
            "How strongly the score of the class reacts to a tiny change of each input value (gradient magnitude).",
        ),
        MethodInfo(
            "input_x_gradient",
            "Input x gradient",
            True,
            True,
            "Each input value times the gradient: a first-order estimate of how much it adds to the score.",
        ),
        MethodInfo(
            "integrated_gradients",
            "Integrated gradients",
            True,
            True,
            "How much each input value adds to the score on the way from a blank input to the real one; "
            "the parts add up to the score difference.",
        ),
        MethodInfo(
            "smoothgrad",
            "SmoothGrad",
            True,
            False,
            "Saliency averaged over noisy copies of the input, which removes much of its speckle.",
        ),
        MethodInfo(
            "gradient_shap",
            "GradientSHAP",
            True,
            False,
            "Integrated gradients averaged over random reference inputs: an estimate of Shapley values.",
        ),
        MethodInfo(
            "deeplift",
            "DeepLift",
            True,
            False,
            "How much each input value adds to the score compared with a reference input, propagated layer by layer.",
        ),
        MethodInfo(
            "grad_cam",
            "Grad-CAM",
            True,
            False,
            "Which regions the last convolution layer found important for the class, scaled up to the input.",
        ),
        MethodInfo(
            "occlusion",
            "Occlusion",
            False,
            True,
            "How much the score drops when a small window of the input is blanked out, slid over the input.",
        ),
        MethodInfo(
            "feature_ablation",
            "Feature ablation",
            False,
            True,
            "How much the score changes when one feature (or region, or word) is replaced by a reference value.",
        ),
        MethodInfo(
            "feature_permutation",
            "Permutation importance",
            False,
            False,
            "How much the score changes when one feature's values are shuffled between examples.",
        ),
        MethodInfo(
            "lime",
            "LIME",
            False,
            True,
            "A simple linear model fitted to the network's answers on many randomly masked copies of the input.",
        ),
        MethodInfo(
            "kernel_shap",
            "KernelSHAP",
            False,
            True,
            "Shapley values (each feature's fair share of the score) estimated from randomly masked copies.",
        ),
    )
}

# "ig" and the like are accepted on the command line and in Python
ALIASES = {
    "ig": "integrated_gradients",
    "gradcam": "grad_cam",
    "ixg": "input_x_gradient",
    "gradientshap": "gradient_shap",
    "shap": "kernel_shap",
    "kernelshap": "kernel_shap",
    "noise_tunnel": "smoothgrad",
    "permutation": "feature_permutation",
    "ablation": "feature_ablation",
}


def method_names() -> list[str]:
    return list(METHODS)
