"""The networks: Bayesian (TFP ``DenseFlipout``) and deterministic (ensemble member), same architecture.

Input: ``(n_constituents, 4)`` per jet, flattened. Hidden layers from ``TrainConfig.hidden`` with
``TrainConfig.activation``; the last layer gives the raw likelihood parameters (:mod:`likelihood`).
"""

from __future__ import annotations

import topcal.train  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
from topcal.config import TrainConfig
from topcal.train.likelihood import n_outputs, nll_loss


def _prior(sigma: float):
    """Gaussian prior N(0, sigma) for every weight, in the signature TFP's layers expect."""
    import tensorflow as tf
    import tensorflow_probability as tfp

    tfd = tfp.distributions

    def prior_fn(dtype, shape, name, trainable, add_variable_fn):
        dist = tfd.Normal(loc=tf.zeros(shape, dtype), scale=tf.constant(sigma, dtype))
        return tfd.Independent(dist, reinterpreted_batch_ndims=len(shape))

    return prior_fn


def build_bnn(cfg: TrainConfig, n_constituents: int, n_train: int):
    """Bayesian network: DenseFlipout layers, prior N(0, prior_sigma), KL divided by ``n_train``."""
    import tensorflow_probability as tfp
    import tf_keras as keras

    tfd = tfp.distributions
    kl = lambda q, p, _: tfd.kl_divergence(q, p) / float(n_train)  # noqa: E731
    layers = [keras.layers.InputLayer(input_shape=(n_constituents, 4)), keras.layers.Flatten()]
    widths = list(cfg.hidden) + [n_outputs(cfg.components)]
    for i, width in enumerate(widths):
        last = i == len(widths) - 1
        layers.append(tfp.layers.DenseFlipout(
            width, activation=None if last else cfg.activation, kernel_prior_fn=_prior(cfg.prior_sigma),
            kernel_divergence_fn=kl, seed=cfg.seed * 1000 + i,
        ))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate),
                  loss=nll_loss(cfg.components, cfg.sigma_floor))
    return model


def build_deterministic(cfg: TrainConfig, n_constituents: int, n_train: int):
    """Deterministic member of the frequentist ensemble: L2 = 1 / (2 prior_sigma N), dropout on inner layers."""
    import tf_keras as keras

    l2 = keras.regularizers.L2(1.0 / (2.0 * cfg.prior_sigma * n_train))
    layers = [keras.layers.InputLayer(input_shape=(n_constituents, 4)), keras.layers.Flatten()]
    for i, width in enumerate(cfg.hidden):
        layers.append(keras.layers.Dense(width, activation=cfg.activation, kernel_regularizer=l2))
        if 0 < i:  # inner layers: every hidden layer after the first
            layers.append(keras.layers.Dropout(cfg.ensemble_dropout))
    layers.append(keras.layers.Dense(n_outputs(cfg.components), kernel_regularizer=l2))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate),
                  loss=nll_loss(cfg.components, cfg.sigma_floor))
    return model
