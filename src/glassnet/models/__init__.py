"""Models layer: the registry and the model families."""

from glassnet.models import autoencoder as _autoencoder  # noqa: F401  ("autoencoder", "conv_autoencoder", "vae")
from glassnet.models import bert as _bert  # noqa: F401  (registers "bert")
from glassnet.models import centernet as _centernet  # noqa: F401  (registers "centernet")
from glassnet.models import cnn as _cnn  # noqa: F401  (registers "cnn")
from glassnet.models import cnn1d as _cnn1d  # noqa: F401  (registers "cnn1d")
from glassnet.models import diffusion as _diffusion  # noqa: F401  (registers "ddpm")
from glassnet.models import gan as _gan  # noqa: F401  (registers "dcgan", "cgan")
from glassnet.models import mlp as _mlp  # noqa: F401  (registers "mlp")
from glassnet.models import mobilenet as _mobilenet  # noqa: F401  (registers "mobilenet_v2")
from glassnet.models import policies as _policies  # noqa: F401  ("actor_critic", "q_network", "sac_agent")
from glassnet.models import recurrent as _recurrent  # noqa: F401  (registers "rnn", "lstm", "gru")
from glassnet.models import resnet as _resnet  # noqa: F401  (registers "resnet")
from glassnet.models import seq2seq as _seq2seq  # noqa: F401  (registers "seq2seq")
from glassnet.models import speech as _speech  # noqa: F401  (registers "speech_ctc")
from glassnet.models import transformer as _transformer  # noqa: F401  ("transformer", "char_transformer")
from glassnet.models import tts as _tts  # noqa: F401  (registers "fastspeech")
from glassnet.models import unet as _unet  # noqa: F401  (registers "unet")
from glassnet.models.describe import describe
from glassnet.models.registry import ModelInfo, create_model, list_models, model_info, register_model
from glassnet.models.serialization import load_model, save_model
from glassnet.models.summary import count_parameters, example_input, measure_memory, summarize

__all__ = [
    "ModelInfo",
    "count_parameters",
    "describe",
    "example_input",
    "measure_memory",
    "create_model",
    "list_models",
    "load_model",
    "model_info",
    "register_model",
    "save_model",
    "summarize",
]
