"""The training loop: one compiled TensorFlow call per epoch, batches gathered from the input arrays in it.

One ``tf.function`` runs a whole epoch, its validation included, as a ``tf.while_loop`` of one step at a
time, without returning to Python between steps: per step it gathers the batch's rows (``tf.gather`` on
tensors that share the numpy arrays' memory, :func:`shared_tensor`, so the inputs stay in memory once),
computes the negative log-likelihood (mean over the batch)
plus the network's own losses (the KL term of the Bayesian layers, or the L2 penalty of an ensemble
member), and applies the gradients with the model's optimiser
(Adam with gradient clipping, :func:`topcal.train.network.build_network`); the validation steps after the
training steps compute the NLL only. The epoch's order is a permutation that the caller draws from its
seed, so a resumed training shuffles as an uninterrupted one (its Flipout draws differ:
:mod:`topcal.train.fit`). Steps run one at a time (TensorFlow's
default overlaps 10): a step's Flipout draws come from stateful random ops, and overlapping steps could
take them in either order, so that one seed gave different trainings.

The figures returned per epoch are the means over the epoch's jets of the total loss and of the NLL; the
validation NLL is the mean over the validation jets, with ``training=False`` (dropout off; a Bayesian
network still draws its weights, as at prediction).
"""

from __future__ import annotations

import contextlib

import numpy as np

import topcal.train.backend  # noqa: F401  (TensorFlow set up before use)
from topcal.console import silenced
from topcal.train.inputs import ALIGNMENT, aligned_empty

# Jets per validation step: as fast as larger steps, with a small working memory for TensorFlow
# (benchmarks/bench_train.py).
VALIDATION_BATCH = 1000


def shared_tensor(array: np.ndarray):
    """A float32 TensorFlow tensor on the memory of ``array`` (through DLPack: no copy; the tensor keeps the
    array alive) when the array is float32, C-contiguous and aligned to ``ALIGNMENT`` bytes, as TensorFlow's
    CPU tensors must be (the arrays that :func:`topcal.train.data.load_rows` and
    :func:`topcal.train.inputs.raw_inputs` make are: :func:`topcal.train.inputs.aligned_empty`); otherwise
    on an aligned copy (numpy's own allocations are 16-byte aligned; TensorFlow's ``convert_to_tensor``
    always copies)."""
    import tensorflow as tf

    if array.dtype != np.float32 or not array.flags.c_contiguous or array.ctypes.data % ALIGNMENT:
        copy = aligned_empty(array.shape)
        copy[...] = array
        array = copy
    return tf.experimental.dlpack.from_dlpack(array.__dlpack__())


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
        if len(y_all) >= 2**31:
            raise ValueError(f"{len(y_all)} jets: the training loop takes at most 2^31 - 1")

        # the inputs as tensors on the arrays' own memory (no copy: shared_tensor), and the targets; dropped by
        # close(). They enter the compiled epoch as arguments, so the function itself holds no reference.
        self._tensors = ({name: shared_tensor(x_all[name]) for name in names}, tf.constant(y_all, tf.float32))

        loss_fn, optimizer = model.loss, model.optimizer

        bs, vb = tf.constant(self.batch_size, tf.int64), tf.constant(VALIDATION_BATCH, tf.int64)

        def step(i, x_all, y_all, order, n_train, n_all, train_steps, totals):
            """Step ``i`` of an epoch: a gradient step on training rows while ``i < train_steps``, then
            validation steps (no gradient) on the rows after ``n_train``. One body serves both, so the
            network is traced once for training and validation (a second trace cost 0.45 s a training)."""
            training = i < train_steps
            lo = tf.where(training, i * bs, n_train + (i - train_steps) * vb)
            end = tf.where(training, n_train, n_all)
            hi = tf.minimum(lo + tf.where(training, bs, vb), end)
            rows = order[lo:hi]
            x, y = {name: tf.gather(x_all[name], rows) for name in names}, tf.gather(y_all, rows)
            with tf.GradientTape() as tape:
                out = model(x, training=training)  # dropout (ensemble members) only in training steps
                nll = tf.reduce_mean(loss_fn(y, out))
                loss = nll + tf.add_n(model.losses) if model.losses else nll

            def apply():
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
                return loss

            trained_loss = tf.cond(training, apply, lambda: tf.zeros_like(loss))
            weight = tf.cast(hi - lo, tf.float32)
            train_w = tf.where(training, weight, 0.0)
            totals = (totals[0] + trained_loss * weight, totals[1] + nll * train_w,
                      totals[2] + nll * (weight - train_w))
            return i + 1, x_all, y_all, order, n_train, n_all, train_steps, totals

        # Plain graph functions (no AutoGraph: tracing the network through it took seconds), traced once:
        # the optimiser's slot variables exist before the first trace, so TensorFlow need not trace again.
        optimizer._create_all_weights(model.trainable_variables)  # Keras 2's Adam: its counter and slots

        spec = tf.TensorSpec
        signature = [{name: spec((None, *shapes[name]), tf.float32) for name in names}, spec((None,), tf.float32),
                     spec((None,), tf.int32), spec([], tf.int64)]

        @tf.function(input_signature=signature, autograph=False)
        def epoch(x_all, y_all, order, n_train):
            n_val = tf.shape(order, out_type=tf.int64)[0] - n_train
            train_steps = (n_train + bs - 1) // bs
            steps = train_steps + (n_val + vb - 1) // vb
            *_, totals = tf.while_loop(lambda i, *_: i < steps, step,
                                       (tf.constant(0, tf.int64), x_all, y_all, order, n_train, n_train + n_val,
                                        train_steps, (0.0, 0.0, 0.0)), parallel_iterations=1)
            n_train, n_val = tf.cast(tf.maximum(n_train, 1), tf.float32), tf.cast(tf.maximum(n_val, 1), tf.float32)
            return totals[0] / n_train, totals[1] / n_train, totals[2] / n_val

        self._epoch = epoch
        self._ran = False

    def close(self) -> None:
        """Drop the tensors on the input arrays (they keep the arrays, the whole training sample, alive); the
        loop cannot run after this."""
        self._tensors = None

    def epoch(self, order: np.ndarray, val_rows: np.ndarray) -> tuple[float, float, float]:
        """One epoch over the training rows ``order`` in that order, then the validation rows ``val_rows``:
        (mean total loss, mean NLL, mean validation NLL of the standardised targets), in one compiled call."""
        first, self._ran = not self._ran, True
        # at a function's first run TensorFlow has printed cost-model warnings ("Error in PredictCost() for
        # the op: Softmax") from C++, past its log level: silenced then (topcal -v shows them)
        x_all, y_all = self._tensors
        rows = np.concatenate([order, val_rows]).astype(np.int32, copy=False)  # (rows < 2^31: checked at init)
        with silenced(stdout=False) if first else contextlib.nullcontext():
            loss, nll, val_nll = self._epoch(x_all, y_all, rows, np.int64(len(order)))
        return float(loss), float(nll), float(val_nll)

    def train_epoch(self, order: np.ndarray) -> tuple[float, float]:
        """One epoch over the rows ``order``, no validation: (mean total loss, mean NLL)."""
        return self.epoch(order, np.zeros(0, np.int64))[:2]

    def validation_nll(self, rows: np.ndarray) -> float:
        """Mean NLL of the standardised targets on ``rows`` (no gradient step)."""
        return self.epoch(np.zeros(0, np.int64), rows)[2]
