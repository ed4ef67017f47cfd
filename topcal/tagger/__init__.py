"""The LoLa top tagger: which top jets look most top-like (paper table 1, figure 4)."""

import topcal.train  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
