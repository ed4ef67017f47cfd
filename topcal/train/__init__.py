"""Training and inference of the Bayesian regression networks (TensorFlow Probability, tf_keras).

The modules that run TensorFlow import :mod:`topcal.train.backend` first (environment, quiet start-up,
determinism); the others (``inputs``, ``data``, ``metrics``, ``model_dir``, ``likelihood``'s numpy half)
are plain numpy and load no TensorFlow.
"""
