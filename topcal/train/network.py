"""The networks, Bayesian (Flipout) and deterministic (ensemble member), for both architectures.

This module is the only one that imports TensorFlow Probability's layers and tf_keras' layer API: a change
of backend touches this file (and :mod:`topcal.train.likelihood` for the loss).

``TrainConfig.architecture``:

* ``"deepset"`` (topcal's default), a Bayesian Particle Flow Network: the same map Phi (layers
  ``phi_hidden``, ReLU) applied to every real constituent's jet-frame features (the rows where ``mask``
  is set; padding slots are never computed), summed per jet (the sum scaled by ``1 / POOL_SCALE``), joined
  with the jet-level features,
  then the head (layers ``hidden``) and the likelihood outputs. Inputs ``constituents``, ``jet``, ``mask``
  (:mod:`topcal.train.inputs`).
* ``"dense"`` (the paper's): dense layers ``hidden`` on the flattened input ``flat``.

With ``TrainConfig.phi_posterior = "point"`` the deep set's Phi is ordinary dense layers (named
``phi_point_<i>``; a point estimate, L2 = ``kl_weight`` / (2 prior_sigma^2 N), the tempered prior's log density)
and only the head is Bayesian: :func:`sample_outputs` then computes Phi and the pooled sum once per jet and
repeats only the head for the weight draws.

Bayesian layers are Flipout layers (:class:`JetFlipout`, TFP's ``DenseFlipout`` with one sign pattern per
jet) with a Gaussian prior N(0, ``prior_sigma``) on every kernel weight, a mean-field Gaussian posterior, a
deterministic bias, and the KL term ``kl_weight x KL / N_train`` added to the loss. Deterministic members
use plain dense layers with L2 = 1 / (2 prior_sigma N) and dropout ``ensemble_dropout`` on inner layers.
"""

from __future__ import annotations

import itertools
import math
import weakref

import topcal.train.backend  # noqa: F401  (TensorFlow set up before use)
from topcal.config import TrainConfig
from topcal.train.likelihood import n_outputs, nll_loss

POOL_SCALE = 10.0
POINT_PHI = "phi_point_"  # the names of a point-estimate Phi's layers: phi_point_0, phi_point_1, ...
POSTERIOR_SCALE_INIT = -3.0  # initial posterior width softplus(-3) = 0.049 (TFP's default)


def normal_kl(loc, scale, prior_sigma: float):
    """KL(N(loc, scale) || N(0, prior_sigma)) summed over all weights: sum of log(prior_sigma / scale) +
    (scale^2 + loc^2) / (2 prior_sigma^2) - 1/2 (dimensionless; ``loc`` and ``scale`` tensors of one shape)."""
    import tensorflow as tf

    return tf.reduce_sum(math.log(prior_sigma) - tf.math.log(scale)
                         + (tf.square(scale) + tf.square(loc)) / (2.0 * prior_sigma**2) - 0.5)


def _posterior(seed: int, speed: float):
    """Mean-field Gaussian posterior of a kernel: means from N(0, 0.1) (TFP's default), widths
    softplus(speed x rho) starting at softplus(POSTERIOR_SCALE_INIT) = 0.049 (TFP's default), seeded per
    layer. The factor ``speed`` (``TrainConfig.width_speed``) makes Adam, whose steps do not depend on the
    size of a gradient, move the widths ``speed`` times faster than the means, so they reach their optimum
    within a training; with 1 this is TFP's own ``default_mean_field_normal_fn``."""
    import tensorflow as tf
    import tensorflow_probability as tfp
    import tf_keras as keras

    tfd = tfp.distributions

    def posterior_fn(dtype, shape, name, trainable, add_variable_fn):
        loc = add_variable_fn(name=name + "_loc", shape=shape, dtype=dtype, trainable=trainable,
                              initializer=keras.initializers.RandomNormal(stddev=0.1, seed=seed))
        rho = add_variable_fn(name=name + "_untransformed_scale", shape=shape, dtype=dtype, trainable=trainable,
                              initializer=keras.initializers.RandomNormal(
                                  mean=POSTERIOR_SCALE_INIT / speed, stddev=0.1 / speed, seed=seed + 500))
        # deferred: the width is recomputed from rho at every use, so gradients reach rho
        scale = tfp.util.DeferredTensor(rho, lambda r: 1e-5 + tf.nn.softplus(speed * r))
        return tfd.Independent(tfd.Normal(loc=loc, scale=scale), reinterpreted_batch_ndims=len(shape))

    return posterior_fn


def _point_bias():
    """A deterministic bias (TFP's default for Flipout layers), starting at zero."""
    import tensorflow_probability as tfp
    import tf_keras as keras

    return tfp.layers.default_mean_field_normal_fn(is_singular=True, loc_initializer=keras.initializers.Zeros())


def _flipout_class():
    import tensorflow as tf
    import tensorflow_probability as tfp

    class JetFlipout(tfp.layers.DenseFlipout):
        """``DenseFlipout`` whose random signs are drawn once per jet. Its input is ``(jets, features)``
        (``DenseFlipout``'s estimator), or for the deep set's per-constituent map the list ``[rows, jet_of_row,
        n_jets]``: the real constituents' rows ``(rows, features)``, the jet of each row and the number of
        jets, and every constituent of a jet sees the same weight sample (TFP's own layer would draw a new one
        per constituent and so understate the spread of the jet's prediction). The weight perturbation
        ``scale x eps`` and the two sign patterns are drawn by TensorFlow's stateful random ops, each with its
        own op seed (TFP's ``SeedStream`` of the layer's seed): draws with one seed would repeat each other's
        random numbers.

        The prior is N(0, ``prior_sigma``) on every kernel weight, and the layer adds ``kl_factor`` x the KL
        divergence of the kernel's posterior from it to the model's losses, in closed form, computed on the
        same posterior widths as the draw, without TFP's sampling machinery (``Normal.sample``, ``rademacher``,
        a sampled ``Deterministic`` bias, ``kl_divergence`` of the distributions); ``benchmarks/bench_train.py``
        compares it with ``DenseFlipout``'s own call."""

        def __init__(self, units, prior_sigma: float, kl_factor: float, **kwargs):
            super().__init__(units, kernel_prior_fn=None, kernel_divergence_fn=None, **kwargs)
            self.prior_sigma, self.kl_factor = float(prior_sigma), float(kl_factor)
            self.input_spec = None  # DenseFlipout's spec checks one input tensor (also set again by build)

        def build(self, input_shape):
            if isinstance(input_shape, (list, tuple)) and isinstance(input_shape[0], (list, tuple, tf.TensorShape)):
                input_shape = input_shape[0]  # [rows, jet_of_row, n_jets]: the rows' features
            super().build(input_shape)
            self.input_spec = None

        def _should_use_autograph(self):
            """No: the call has no Python control flow on tensors, and Keras converting it through AutoGraph
            took 0.2 s of every network build (tf-keras 2.18 asks this of a layer defined outside Keras)."""
            return False

        def call(self, inputs):
            if isinstance(inputs, (list, tuple)):
                inputs, jet_of_row, n_jets = inputs
            else:
                jet_of_row, n_jets = None, tf.shape(inputs)[0]
            inputs = tf.convert_to_tensor(inputs, self.dtype)
            posterior = self.kernel_posterior.distribution
            loc = posterior.loc
            scale = tf.convert_to_tensor(posterior.scale)  # softplus of the width variable, once per call
            seeds = tfp.util.SeedStream(self.seed, salt="JetFlipout")
            delta = scale * tf.random.normal(tf.shape(loc), dtype=inputs.dtype, seed=seeds())
            sign_in = _rademacher(tf.stack([n_jets, tf.shape(inputs)[-1]]), inputs.dtype, seeds())
            sign_out = _rademacher(tf.stack([n_jets, self.units]), inputs.dtype, seeds())
            if jet_of_row is not None:  # each row takes its jet's signs
                sign_in, sign_out = tf.gather(sign_in, jet_of_row), tf.gather(sign_out, jet_of_row)
            outputs = tf.matmul(inputs, loc) + tf.matmul(inputs * sign_in, delta) * sign_out
            outputs = tf.nn.bias_add(outputs, self.bias_posterior.distribution.loc)  # the deterministic bias
            if self.activation is not None:
                outputs = self.activation(outputs)
            self.add_loss(self.kl_factor * normal_kl(loc, scale, self.prior_sigma))
            return outputs

    def _rademacher(shape, dtype, seed):
        return tf.cast(2 * tf.random.uniform(shape, 0, 2, dtype=tf.int32, seed=seed) - 1, dtype)

    return JetFlipout


def build_network(cfg: TrainConfig, shapes: dict[str, tuple], n_train: int, bayesian: bool = True):
    """The compiled network for ``cfg`` (architecture, likelihood, optimiser); ``shapes`` of the inputs."""
    import tf_keras as keras

    counter = iter(range(1000))
    if bayesian:
        flipout = _flipout_class()

        def dense(width, activation=None):
            seed = cfg.seed * 1000 + next(counter)
            return flipout(width, cfg.prior_sigma, cfg.kl_weight / float(n_train), activation=activation,
                           kernel_posterior_fn=_posterior(seed, cfg.width_speed), bias_posterior_fn=_point_bias(),
                           seed=seed)

        def dropout(x):
            return x
    else:
        l2 = keras.regularizers.L2(1.0 / (2.0 * cfg.prior_sigma * n_train))

        def dense(width, activation=None):
            return keras.layers.Dense(width, activation=activation, kernel_regularizer=l2)

        def dropout(x):
            return keras.layers.Dropout(cfg.ensemble_dropout)(x)

    point_phi = bayesian and cfg.phi_posterior == "point"
    inputs = {name: keras.Input(shape=shape, name=name) for name, shape in sorted(shapes.items())}
    if cfg.architecture == "deepset":
        # the map Phi on the real constituents only (padded slots are never computed: 15% of the 64 in the
        # embedded sample's top jets), each row with its jet's number; then the sum per jet
        rows, jet_of_row, n_jets = keras.layers.Lambda(_real_constituents, name="real_constituents")(
            [inputs["constituents"], inputs["mask"]])
        h = rows
        # the tempered prior N(0, prior_sigma) as the point estimate's penalty (its maximum a posteriori)
        phi_l2 = keras.regularizers.L2(cfg.kl_weight / (2.0 * cfg.prior_sigma**2 * n_train))
        for i, width in enumerate(cfg.phi_hidden):
            if point_phi:
                h = keras.layers.Dense(width, activation=cfg.activation, kernel_regularizer=phi_l2,
                                       name=f"{POINT_PHI}{i}")(h)
            else:  # a Flipout layer also takes each row's jet, for the jet's signs
                h = dense(width, cfg.activation)([h, jet_of_row, n_jets] if bayesian else h)
        pooled = keras.layers.Lambda(lambda t: _sum_per_jet(*t), name="sum_pool")([h, jet_of_row, n_jets])
        z = keras.layers.Concatenate()([pooled, inputs["jet"]])
    else:
        z = inputs["flat"]
    for i, width in enumerate(cfg.hidden):
        z = dense(width, cfg.activation)(z)
        if i > 0:  # inner layers: every hidden layer after the first
            z = dropout(z)
    out = dense(n_outputs(cfg.components))(z)
    model = keras.Model(inputs=inputs, outputs=out)
    loss = nll_loss(cfg.components, cfg.sigma_floor)
    # Adam as Keras 2 implemented it (one fused update op per variable; the same update rule as
    # keras.optimizers.Adam): the paper network's first epoch, which traces the step, took 0.4 s less
    optimizer = keras.optimizers.legacy.Adam(cfg.learning_rate, global_clipnorm=cfg.clip_norm)
    model.compile(optimizer=optimizer, loss=loss, metrics=[_named(loss, "nll")])
    return model


def _real_constituents(inputs):
    """``[constituents (jets, N, F), mask (jets, N)]`` -> ``[rows (real constituents, F), jet of each row,
    number of jets]``: the rows where the mask is set, in jet order."""
    import tensorflow as tf

    constituents, mask = inputs
    real = mask > 0
    return [tf.boolean_mask(constituents, real), tf.cast(tf.where(real)[:, 0], tf.int32), tf.shape(mask)[0]]


def _sum_per_jet(h, jet_of_row, n_jets):
    """The per-constituent outputs ``h`` summed over each jet's rows, scaled by ``1 / POOL_SCALE``."""
    import tensorflow as tf

    return tf.math.unsorted_segment_sum(h, jet_of_row, n_jets) / POOL_SCALE


def _named(fn, name: str):
    fn.__name__ = name
    return fn


_SAMPLERS = weakref.WeakKeyDictionary()  # model -> its compiled sampling pass


def bayesian_layers(model) -> list:
    """The Flipout layers of a Bayesian network built by :func:`build_network`, input to output."""
    import tensorflow_probability as tfp

    return [layer for layer in model.layers if isinstance(layer, tfp.layers.DenseFlipout)]


def point_phi_layers(model) -> list:
    """The dense layers of a point-estimate Phi (``TrainConfig.phi_posterior = "point"``), input to output;
    empty for every other network."""
    return [layer for layer in model.layers if layer.name.startswith(POINT_PHI)]


def posterior_draws(model, samples: int, rng) -> tuple[tuple, tuple]:
    """``samples`` full weight sets ``W_t = loc + scale * eps_t`` of every Flipout layer of ``model``
    (``eps`` from the numpy generator ``rng``), as ``(kernels, biases)``: each kernel ``(samples, in, out)``,
    each bias the layer's deterministic bias. The same ``rng`` state gives the same draws."""
    import numpy as np
    import tensorflow as tf

    kernels, biases = [], []
    for layer in bayesian_layers(model):
        q = layer.kernel_posterior.distribution
        loc, scale = tf.convert_to_tensor(q.loc).numpy(), tf.convert_to_tensor(q.scale).numpy()
        eps = rng.standard_normal((samples, *loc.shape)).astype(np.float32)
        kernels.append(tf.constant(loc[None] + scale[None] * eps))
        biases.append(tf.convert_to_tensor(layer.bias_posterior.distribution.mean()))
    return tuple(kernels), tuple(biases)


def sample_outputs(model, cfg: TrainConfig, arrays: dict, samples: int, rng, chunk_jets: int | None = None,
                   budget: int = 4_000_000, draws: tuple | None = None):
    """Raw outputs ``(samples, n_jets, n_outputs)`` of ``samples`` weight draws of a Bayesian network.

    Exact and batched: draw ``samples`` full weight sets from every layer's posterior
    (:func:`posterior_draws` with ``rng``, or the given ``draws``), then evaluate all of them in one
    compiled call per chunk of jets, a loop over the draws inside it. Every jet sees T independent draws
    from the posterior, as in T separate Flipout passes, but each draw is one 2-d product per layer (Flipout
    needs two), on the activations of one draw at a time, and the padded constituent slots are never
    computed (the per-constituent map runs on the real constituents only). With a point-estimate Phi
    (:func:`point_phi_layers`) Phi and the pooled sum are computed once per chunk, before the loop, which
    repeats only the head. The draws are the same for every jet, so a jet's outputs do not depend on the
    jets evaluated with it. ``chunk_jets``: jets per call; by default as many as keep one draw's widest
    activations within ``budget`` floats (16 MB; larger products run faster).
    """
    import numpy as np
    import tensorflow as tf

    deepset = cfg.architecture == "deepset"
    layers = bayesian_layers(model)
    fixed = point_phi_layers(model)
    phi = tuple((tf.convert_to_tensor(layer.kernel), tf.convert_to_tensor(layer.bias)) for layer in fixed)
    kernels, biases = draws if draws is not None else posterior_draws(model, samples, rng)
    n_jets, n_out = len(next(iter(arrays.values()))), int(kernels[-1].shape[-1])
    if chunk_jets is None:
        rows = int(arrays["constituents"].shape[1]) if deepset else 1
        widest = max([int(w.shape[-1]) for w in kernels] + [int(w.shape[-1]) for w, _ in phi])
        chunk_jets = max(1, budget // (widest * rows))
    names = ("constituents", "mask", "jet") if deepset else ("flat",)
    if model not in _SAMPLERS:  # one compiled pass per model, traced once: any T, any number of jets
        spec = tf.TensorSpec
        signature = (tuple(spec((None, *arrays[k].shape[1:]), tf.float32) for k in names),
                     tuple((spec(w.shape, tf.float32), spec(b.shape, tf.float32)) for w, b in phi),
                     tuple(spec((None, *w.shape[1:]), tf.float32) for w in kernels),
                     tuple(spec(b.shape, tf.float32) for b in biases))
        n_phi = len(cfg.phi_hidden) if deepset and not fixed else 0
        _SAMPLERS[model] = _sampled_pass(tuple(layer.activation for layer in layers), n_phi,
                                         tuple(layer.activation for layer in fixed), n_out, signature)
    run = _SAMPLERS[model]
    outputs = [run(tuple(tf.constant(arrays[k][start:start + chunk_jets], tf.float32) for k in names), phi, kernels,
                   biases).numpy()
               for start in range(0, n_jets, chunk_jets)]
    if not outputs:
        return np.zeros((samples, 0, n_out), np.float32)
    return np.concatenate(outputs, axis=1)


def _sampled_pass(activations: tuple, n_phi: int, phi_activations: tuple, n_out: int, signature: tuple):
    """A compiled pass of one chunk through every weight draw -> ``(T, jets, outputs)``: a loop over the
    draws, each a chain of 2-d products; a plain graph function (no AutoGraph, whose conversion of this
    code cost a second at the first call), traced once for ``signature`` (any number of jets and draws).
    ``n_phi``: the deep set's Bayesian per-constituent layers, evaluated in every draw (0: a dense network,
    or a point-estimate Phi); ``phi_activations``: those of a point-estimate Phi, whose weights come as
    ``phi`` and which is evaluated once, before the loop."""
    import tensorflow as tf

    @tf.function(input_signature=signature, autograph=False)
    def run(inputs, phi, kernels, biases):
        if n_phi or phi:  # the per-constituent map on the real constituents only, summed per jet
            constituents, mask, jet = inputs
            rows, jet_of_row, n_jets = _real_constituents([constituents, mask])  # as in training

        def embed(weights):
            h = rows
            for w, b, activation in weights:
                h = activation(tf.matmul(h, w) + b)
            return tf.concat([_sum_per_jet(h, jet_of_row, n_jets), jet], axis=-1)

        fixed = embed((w, b, a) for (w, b), a in zip(phi, phi_activations)) if phi else None

        def draw(t, out):
            layers = iter(zip(kernels, biases, activations))
            if n_phi:
                z = embed((w[t], b, activation) for w, b, activation in itertools.islice(layers, n_phi))
            else:
                z = fixed if phi else inputs[0]
            for w, b, activation in layers:
                z = activation(tf.matmul(z, w[t]) + b)
            return t + 1, out.write(t, z)

        samples = tf.shape(kernels[0])[0]
        out = tf.TensorArray(tf.float32, size=samples, element_shape=tf.TensorShape([None, n_out]))
        _, out = tf.while_loop(lambda t, _: t < samples, draw, (tf.constant(0), out), parallel_iterations=1)
        return out.stack()

    return run
