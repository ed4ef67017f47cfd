"""The Lorentz-layer network (LoLa, Butter, Kasieczka, Plehn, Russell, SciPost Phys. 5, 028 (2018)).

Input ``(n, N, 4)``: the leading N constituents, (E, px, py, pz) in GeV / 1000, zero-padded.

* CoLa appends M trainable linear combinations of the N four-vectors: ``k~ = k C`` with ``C = (1_N, C_M)``.
* LoLa maps each of the N + M four-vectors k~_j to physics features: its mass squared and pT, its energy,
  two trainable sums ``sum_m w_jm E_m`` and two trainable sums ``sum_m w_jm d2_jm`` of the Minkowski
  distances ``d2_jm = (k~_j - k~_m)^2``.
* The features are flattened and batch-normalised; ReLU dense layers end in a sigmoid: P(top).
"""

from __future__ import annotations

import topcal.tagger  # noqa: F401
from topcal.config import TaggerConfig

METRIC = (1.0, -1.0, -1.0, -1.0)  # (E, px, py, pz)


def _layers():
    import tensorflow as tf
    import tf_keras as keras

    class CoLa(keras.layers.Layer):
        """Append ``n_combinations`` trainable linear combinations of the constituents."""

        def __init__(self, n_combinations: int, **kwargs):
            super().__init__(**kwargs)
            self.n_combinations = n_combinations

        def build(self, input_shape):
            self.combination = self.add_weight(name="combination", shape=(int(input_shape[1]), self.n_combinations),
                                               initializer="glorot_uniform", trainable=True)

        def call(self, k):  # k: (batch, N, 4)
            extra = tf.einsum("bnc,nm->bmc", k, self.combination)
            return tf.concat([k, extra], axis=1)

        def get_config(self):
            return {**super().get_config(), "n_combinations": self.n_combinations}

    class LoLa(keras.layers.Layer):
        """Per four-vector: m^2, pT, E, two weighted energy sums and two weighted Minkowski-distance sums."""

        def build(self, input_shape):
            n = int(input_shape[1])
            self.w_energy = self.add_weight(name="w_energy", shape=(2, n, n), initializer="glorot_uniform")
            self.w_distance = self.add_weight(name="w_distance", shape=(2, n, n), initializer="glorot_uniform")

        def call(self, k):  # k: (batch, K, 4)
            metric = tf.constant(METRIC, dtype=k.dtype)
            m2 = tf.reduce_sum(k * k * metric, axis=-1)
            pt = tf.sqrt(k[..., 1] ** 2 + k[..., 2] ** 2 + 1e-12)
            energy = k[..., 0]
            diff = k[:, :, None, :] - k[:, None, :, :]
            d2 = tf.reduce_sum(diff * diff * metric, axis=-1)  # (batch, K, K)
            e_sums = tf.einsum("wjm,bm->bjw", self.w_energy, energy)
            d_sums = tf.einsum("wjm,bjm->bjw", self.w_distance, d2)
            return tf.concat([tf.stack([m2, pt, energy], axis=-1), e_sums, d_sums], axis=-1)

    return CoLa, LoLa


def build_lola(cfg: TaggerConfig, compile: bool = True):
    """The tagger for ``cfg`` (input ``(cfg.n_constituents, 4)``, output P(top)), compiled for training
    unless ``compile`` is false (scoring only)."""
    import tf_keras as keras

    cola, lola = _layers()
    layers = [keras.layers.InputLayer(input_shape=(cfg.n_constituents, 4))]
    if cfg.n_combinations:
        layers.append(cola(cfg.n_combinations))
    layers += [lola(), keras.layers.Flatten(), keras.layers.BatchNormalization()]
    layers += [keras.layers.Dense(width, activation="relu") for width in cfg.hidden]
    layers.append(keras.layers.Dense(1, activation="sigmoid"))
    model = keras.Sequential(layers)
    if compile:
        model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss="binary_crossentropy",
                      metrics=[keras.metrics.AUC(name="auc")])
    return model
