"""The LoLa top tagger: which top jets look most top-like (paper table 1, figure 4)."""

import topcal.train.backend  # noqa: F401  (TensorFlow set up before use)
