"""The TensorFlow backend, set up once: imported by the modules that run TensorFlow (``fit``, ``model``,
``network``, the tagger), never by the numpy-only ones (``inputs``, ``data``, ``metrics``, ``model_dir``),
so reading a dataset or a model's ``model.json`` does not load TensorFlow.

TFP 0.25 layers are Keras-2 layers, so ``TF_USE_LEGACY_KERAS=1`` is set here, before TensorFlow is imported;
TensorFlow's C++ start-up messages are silenced unless ``topcal -v`` (:mod:`topcal.console`).
"""

import os
import warnings

from topcal.console import silenced, verbose

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose() else "3")  # no CUDA-plugin noise on CPU machines

with silenced():  # XLA's "Unable to register cuDNN factory" lines come from C++ at import, past TF's log level
    import tensorflow  # noqa: F401,E402
    import absl.logging  # noqa: E402

    absl.logging.set_verbosity(absl.logging.INFO if verbose() else absl.logging.ERROR)

# Known, harmless deprecation noise from TFP 0.25's Keras-2 layers, filtered so that real warnings show.
warnings.filterwarnings("ignore", message=r"`layer.add_variable` is deprecated", category=UserWarning)
warnings.filterwarnings("ignore", message=r"The initializer RandomNormal is unseeded", category=UserWarning)


def deterministic() -> None:
    """TensorFlow op determinism: with the seeds topcal sets, the same seed gives the same training and the
    same predictions, run after run (a few ops become slower; none that topcal's networks use much)."""
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
