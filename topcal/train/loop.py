"""The training loop: one compiled TensorFlow call per epoch, batches gathered from numpy arrays.

Keras's ``model.fit`` returns to Python after every step (or every ``steps_per_execution`` steps, whose
unrolled graph took seconds to trace) and runs its callbacks there. Here one ``tf.function`` runs a whole
epoch as a ``tf.while_loop``: per step it gathers the batch's rows from the numpy arrays
(``tf.numpy_function``, so the inputs stay in memory once, never copied into TensorFlow), computes the
negative log-likelihood (mean over the batch) plus the network's own losses (the KL term of the Bayesian
layers, or the L2 penalty of an ensemble member), and applies the gradients with the model's optimiser
(Adam with gradient clipping, :func:`topcal.train.network.build_network`). The epoch's order is a
permutation that the caller draws from its seed, so a resumed training shuffles as an uninterrupted one.

The figures returned per epoch are the means over the epoch's jets of the total loss and of the NLL; the
validation NLL is the mean over the validation jets, with ``training=False`` (dropout off; a Bayesian
network still draws its weights, as at prediction).
"""

from __future__ import annotations

import contextlib

import numpy as np

import topcal.train.backend  # noqa: F401  (TensorFlow set up before use)
from topcal.console import silenced

# Jets per validation step. 1000 is as fast as 2000 here and holds 5 MiB of TensorFlow's working memory at
# the first validation instead of 64 MiB (a 1M-jet training of the paper's network, benchmarks/bench_train.py).
VALIDATION_BATCH = 1000


class EpochLoop:
    """Compiled training and validation passes of ``model`` over rows of ``x_all`` / ``y_all``.

    ``x_all`` maps each network input's name to its float32 array (rows: jets), ``y_all`` holds the
    standardised targets; ``batch_size`` jets per gradient step (the last step of an epoch takes the rest).
    """

    def __init__(self, model, x_all: dict[str, np.ndarray], y_all: np.ndarray, batch_size: int):
        import tensorflow as tf

        self.model, self.batch_size = model, int(batch_size)
        names = sorted(x_all)
        shapes = {name: x_all[name].shape[1:] for name in names}

        self._arrays = {"x": x_all, "y": y_all}  # emptied by close(): TensorFlow keeps gather() registered

        def gather(i):
            x, y = self._arrays["x"], self._arrays["y"]
            return (*(x[name][i] for name in names), y[i])

        @tf.autograph.experimental.do_not_convert  # plain TensorFlow ops: nothing for AutoGraph to convert
        def rows(idx):
            *xs, y = tf.numpy_function(gather, [idx], [tf.float32] * (len(names) + 1), stateful=False)
            for name, x in zip(names, xs):
                x.set_shape((None, *shapes[name]))
            y.set_shape((None,))
            return dict(zip(names, xs)), y

        loss_fn, optimizer = model.loss, model.optimizer

        def batch_nll(x, y, training):
            out = model(x, training=training)
            return tf.reduce_mean(loss_fn(y, out))

        def chunks(order, size):
            n = tf.shape(order, out_type=tf.int64)[0]
            return n, (n + size - 1) // size

        def step_rows(order, step, size):
            return rows(order[step * size:(step + 1) * size])

        def train_step(step, order, total, total_nll):
            x, y = step_rows(order, step, self.batch_size)
            with tf.GradientTape() as tape:
                nll = batch_nll(x, y, True)
                loss = nll + tf.add_n(model.losses) if model.losses else nll
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            weight = tf.cast(tf.shape(y)[0], tf.float32)
            return step + 1, order, total + loss * weight, total_nll + nll * weight

        def validation_step(step, order, total):
            x, y = step_rows(order, step, VALIDATION_BATCH)
            return step + 1, order, total + batch_nll(x, y, False) * tf.cast(tf.shape(y)[0], tf.float32)

        # Plain graph functions (no AutoGraph: tracing the network through it took seconds), traced once:
        # the optimiser's slot variables exist before the first trace, so TensorFlow need not trace again.
        optimizer.build(model.trainable_variables)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64)], autograph=False)
        def train_epoch(order):
            n, steps = chunks(order, self.batch_size)
            _, _, total, total_nll = tf.while_loop(lambda step, *_: step < steps, train_step,
                                                   (tf.constant(0, tf.int64), order, 0.0, 0.0))
            n = tf.cast(n, tf.float32)
            return total / n, total_nll / n

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64)], autograph=False)
        def validation_nll(order):
            n, steps = chunks(order, VALIDATION_BATCH)
            _, _, total = tf.while_loop(lambda step, *_: step < steps, validation_step,
                                        (tf.constant(0, tf.int64), order, 0.0))
            return total / tf.cast(n, tf.float32)

        self._train, self._validate = train_epoch, validation_nll
        self._ran: set[str] = set()

    def close(self) -> None:
        """Drop the references to the input arrays (TensorFlow's registry of numpy functions would keep them,
        and so the whole training sample, alive as long as the process); the loop cannot run after this."""
        self._arrays.clear()

    def train_epoch(self, order: np.ndarray) -> tuple[float, float]:
        """One epoch over the rows ``order`` in that order: (mean total loss, mean NLL)."""
        with self._quiet_first("train"):
            loss, nll = self._train(np.asarray(order, np.int64))
        return float(loss), float(nll)

    def validation_nll(self, rows: np.ndarray) -> float:
        """Mean NLL of the standardised targets on ``rows``."""
        with self._quiet_first("validation"):
            return float(self._validate(np.asarray(rows, np.int64)))

    @contextlib.contextmanager
    def _quiet_first(self, name: str):
        """TensorFlow's graph optimiser, at a function's first run, prints cost-model warnings ("Error in
        PredictCost() for the op: Softmax") from C++, past its log level: silenced then (``topcal -v``
        shows them)."""
        if name in self._ran:
            yield
            return
        self._ran.add(name)
        with silenced(stdout=False):
            yield
