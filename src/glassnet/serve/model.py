"""The model behind the server: one backend (PyTorch, ONNX Runtime fp32 or int8), its answers as the
records ``glassnet predict`` prints, and one-example explanations with a picture."""

from __future__ import annotations

import base64
import copy
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glassnet.data.modality import check_input_range, get_modality
from glassnet.errors import ConfigError, DataError
from glassnet.models.outputs import prediction
from glassnet.train.run import Run
from glassnet.train.tasks import get_task
from glassnet.train.trainer import Predictions

BACKENDS = ("torch", "onnx", "int8")
ONNX_FILES = {"onnx": "compressed/model.onnx", "int8": "compressed/model.int8.onnx"}
EXPLAIN_METHOD = "integrated_gradients"
MAX_SPOKEN = 1000  # characters a text-to-speech request may hold (longer texts: several requests)


class ServedModel:
    """A trained run ready to answer: ``forward`` turns a batch into one JSON-ready record per example.

    Args:
        run: the run (``Run`` or directory).
        backend: ``torch`` (the run's weights), ``onnx`` (``compressed/model.onnx``) or ``int8``
            (``compressed/model.int8.onnx``, ONNX Runtime static int8), both from ``glassnet compress``.

    Raises:
        ConfigError: an unknown backend, or its ONNX file is missing (the message says how to make it).
    """

    def __init__(self, run: Run | str | Path, backend: str = "torch") -> None:
        from glassnet.train.finite import require_finite_weights

        self.run = Run.open(run)
        self.spec = self.run.spec
        # a text-to-speech run answers POST /synthesize with a WAV file instead of /predict
        self.synthesis = self.spec.task == "synthesize"
        if self.synthesis and backend != "torch":
            raise ConfigError(
                "a text-to-speech run is served with --backend torch (its length regulator has no ONNX export)"
            )
        self.model = self.run.model.eval()
        require_finite_weights(self.model, self.run.weights)
        if backend not in BACKENDS:
            raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.control = self.spec.task == "control"
        # what a request's numbers become: values, or token ids (read per request, so worked out once)
        continuous = self.control or get_modality(self.spec.modality).continuous
        self.input_dtype = torch.float32 if continuous else torch.int64
        self.task = None if self.control else get_task(self.spec.task)
        self.class_names = list(self.spec.class_names) or (
            [str(i) for i in range(self.spec.num_outputs)] if self.spec.task == "classify" else []
        )
        self._call = self._backend_call(backend)
        # explanations hook into a model's layers (text: its embedding), which would change the answers
        # of forward passes running meanwhile: they get a copy of their own, one at a time
        self._explained: torch.nn.Module | None = None
        self._explaining = threading.Lock()
        self.name = getattr(self.model, "glassnet_arch", {}).get("name", type(self.model).__name__)

    def _backend_call(self, backend: str) -> Callable[[torch.Tensor], Any]:
        if backend == "torch":
            model = self.model
            if self.control:
                return lambda x: model.act(x, deterministic=True)
            return lambda x: prediction(model(x))
        if self.control:
            raise ConfigError("an agent is served with --backend torch (its ONNX policy is checked by compress)")
        from glassnet.compress.export import OnnxModel

        path = self.run.path / ONNX_FILES[backend]
        if not path.is_file():
            how = "--export onnx" if backend == "onnx" else "--quantize ort-static"
            raise ConfigError(
                f"--backend {backend} serves '{path}', which does not exist; "
                f"make it with `glassnet compress {self.run.path} {how}`"
            )
        return OnnxModel(path)

    def forward(self, inputs: torch.Tensor) -> list[dict[str, Any]]:
        """One record per example (what ``glassnet predict`` prints), with every class's probability."""
        with torch.inference_mode():
            outputs = self._call(inputs)
        if self.control:
            return [{"action": _plain(action)} for action in outputs]
        decoded = self.task.decode(outputs)
        records = self.task.records(self.spec, inputs, Predictions(outputs=outputs, **decoded), None)
        probabilities = decoded.get("probabilities")
        if probabilities is not None and self.spec.task == "classify":
            for record, row in zip(records, probabilities.tolist(), strict=True):
                record["probabilities"] = {name: round(p, 4) for name, p in zip(self.class_names, row, strict=True)}
        # an input far outside the training data says so in its own record (a batch mixes requests)
        check = check_input_range(self.spec, inputs)
        for index, record in enumerate(records):
            said = check.sentence(index)
            if said is not None:
                record["in_range"] = False
                record["warning"] = said
        return records

    def warm_up(self) -> None:
        """One pass over a zero example, so that the first request does not pay for lazy set-up."""
        if self.synthesis:
            self.speak(self.spec.extra["symbols"][-1])
            return
        self.forward(torch.zeros((1, *self.spec.input_shape), dtype=self.input_dtype))

    def speak(self, text: str, speed: float = 1.0) -> bytes:
        """A text-to-speech run's WAV file (16-bit PCM) of ``text``.

        Raises:
            ConfigError: the text is empty, too long, or holds characters the voice never said.
        """
        from glassnet.train.synthesis import synthesize_text, wav_bytes

        if len(text) > MAX_SPOKEN:
            raise ConfigError(
                f"the text has {len(text):,} characters; this server speaks at most {MAX_SPOKEN:,} at once"
            )
        with torch.inference_mode():
            wave = synthesize_text(self.run, text, speed=speed)
        return wav_bytes(wave, int(self.spec.extra["sample_rate"]))

    def explain(self, inputs: torch.Tensor, method: str = EXPLAIN_METHOD) -> dict[str, Any]:
        """Attribute one example's prediction to its inputs; the values and a PNG picture of them.

        Raises:
            DataError: not exactly one example, or a run that explanations do not apply to.
        """
        from glassnet.explain.attribute import explain
        from glassnet.explain.dense import evidence_view
        from glassnet.explain.names import DENSE_TASKS
        from glassnet.explain.run import TASKS, default_baseline

        if len(inputs) != 1:
            raise DataError(f"/explain takes one example; received {len(inputs)}")
        dense = self.spec.task in DENSE_TASKS  # masks or boxes: explained as evidence for the class found most
        if self.spec.task not in TASKS and not dense:
            raise DataError(
                f"/explain applies to classifiers, regressors, segmentation and detection; this run's task is "
                f"{self.spec.task!r}"
            )
        record = self.forward(inputs)[0]
        with self._explaining:
            if self._explained is None:
                copied = copy.deepcopy(self.model).eval()
                self._explained = evidence_view(copied, self.spec)[0] if dense else copied
            spec = evidence_view(self._explained, self.spec)[1] if dense else self.spec
            explained = None
            if dense:
                with torch.no_grad():
                    explained = int(self._explained(inputs).argmax(dim=1)[0])
            attributions = explain(
                self._explained,
                inputs,
                method,
                baselines=default_baseline(spec, inputs),
                modality=self.spec.modality,
                **({"target": torch.tensor([explained])} if dense else {}),
            )
        if not torch.isfinite(attributions.values).all():
            raise DataError("the attributions of this input are not finite: it lies far outside the training range")
        values = attributions.values[0]
        answer = {**record, "method": method, "attributions": np.round(values.numpy(), 6).tolist()}
        if dense:
            answer["explained_class"] = spec.class_names[explained]
            answer["explained_score"] = self._explained.task.evidence
        if self.spec.modality == "text":
            answer["tokens"] = self._tokens(inputs[0])
        title = f"evidence for {answer['explained_class']}" if dense else None
        answer["overlay_png"] = self._picture(attributions, record, answer.get("tokens"), spec, title)
        return answer

    def _tokens(self, ids: torch.Tensor) -> list[str]:
        vocab = self.spec.extra.get("vocab") or []
        return [vocab[i] if 0 <= i < len(vocab) else "?" for i in ids.tolist()]

    def _picture(
        self,
        attributions: Any,
        record: dict[str, Any],
        tokens: Sequence[str] | None,
        spec: Any = None,
        title: str | None = None,
    ) -> str | None:
        """The explanation drawn as the report draws it (bars over tokens for text), base64 PNG."""
        from glassnet.explain import pictures

        spec = spec or self.spec
        if title is None:
            title = f"{record.get('prediction')}" + (f" ({record['confidence']:.0%})" if "confidence" in record else "")
        with tempfile.TemporaryDirectory(prefix="glassnet-explain-") as folder:
            figure = lambda name: Path(folder) / f"{name}.png"  # noqa: E731
            if tokens is not None:
                keep = [i for i, ids in enumerate(attributions.inputs[0].tolist()) if ids != 0]
                scores = attributions.values[0].reshape(len(tokens), -1).sum(dim=1).numpy()
                names = [f"{tokens[i]} @{i}" for i in keep]
                pictures.feature_bars(names, scores[keep], f"{title}: words behind it", figure("explain"))
                written = ["explain"] if keep else []
            else:
                kind = get_modality(self.spec.modality).picture
                written = pictures.draw_examples(kind, attributions, spec, [title], figure)
            if not written:
                return None
            return base64.b64encode(figure(written[0]).read_bytes()).decode("ascii")


def _plain(value: torch.Tensor) -> Any:
    """A tensor as JSON: a number or a (nested) list."""
    return value.item() if value.dim() == 0 else value.tolist()
