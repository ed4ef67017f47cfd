"""The TensorFlow backend, set up once: imported by the modules that run TensorFlow (``fit``, ``model``,
``network``, the tagger), never by the numpy-only ones (``inputs``, ``data``, ``metrics``, ``model_dir``),
so reading a dataset or a model's ``model.json`` does not load TensorFlow.

TFP 0.25 layers are Keras-2 layers, so ``TF_USE_LEGACY_KERAS=1`` is set here, before TensorFlow is imported;
TensorFlow's C++ start-up messages are silenced unless ``topcal -v`` (:mod:`topcal.console`).

Threads: TensorFlow sizes its thread pools once per process, at its first operation. Here, before that,
they are set to :func:`task_threads`: ``TOPCAL_THREADS`` when set (topcal's own dask workers get their
share of the cores this way, :mod:`topcal.workers`), the worker's thread count inside a dask worker of an
external cluster, and TensorFlow's own choice (every core) otherwise.
"""

import os
import sys
import warnings

from topcal.console import silenced, verbose

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose() else "3")  # no CUDA-plugin noise on CPU machines

with silenced():  # XLA's "Unable to register cuDNN factory" lines come from C++ at import, past TF's log level
    import absl.logging
    import tensorflow

    absl.logging.set_verbosity(absl.logging.INFO if verbose() else absl.logging.ERROR)



def task_threads() -> int | None:
    """Threads TensorFlow should use in this process (see the module docstring); None: TensorFlow's choice."""
    if os.environ.get("TOPCAL_THREADS"):
        try:
            return max(1, int(os.environ["TOPCAL_THREADS"]))
        except ValueError:
            raise ValueError(f"TOPCAL_THREADS={os.environ['TOPCAL_THREADS']!r} is not a number of threads") from None
    if "distributed" not in sys.modules:  # a dask worker has imported it; importing it here costs 20 MB
        return None
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):  # not inside a dask worker
        return None


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    try:
        tensorflow.config.threading.set_intra_op_parallelism_threads(threads)
        tensorflow.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    except RuntimeError:  # TensorFlow already ran an operation in this process: its pools are fixed
        pass


_set_threads(task_threads())

# Known, harmless deprecation noise from TFP 0.25's Keras-2 layers, filtered so that real warnings show.
warnings.filterwarnings("ignore", message=r"`layer.add_variable` is deprecated", category=UserWarning)
warnings.filterwarnings("ignore", message=r"The initializer RandomNormal is unseeded", category=UserWarning)


def deterministic() -> None:
    """TensorFlow op determinism: with the seeds topcal sets, the same seed gives the same training and the
    same predictions, run after run (a few ops become slower; none that topcal's networks use much)."""
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
