"""Training and inference of the Bayesian regression network (TensorFlow Probability, tf_keras).

TFP 0.25 layers are Keras-2 layers, so ``TF_USE_LEGACY_KERAS=1`` is set here, before TensorFlow is imported.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # no CUDA-plugin noise on CPU-only machines
