"""topcal: per-jet calibrated top-quark pT with Bayesian neural networks, from PYTHIA to ROOT friend trees.

Pipeline stages, one subpackage each: :mod:`topcal.generate` (PYTHIA 8 + detector simulation),
:mod:`topcal.io` (DELPHES-format ROOT reading and writing), :mod:`topcal.process` (fat jets, truth, the
per-jet dataset), :mod:`topcal.train` (the Bayesian networks), :mod:`topcal.predict` (friend trees and
:class:`topcal.Calibrator` for users' own coffea processors), :mod:`topcal.plot`, :mod:`topcal.reproduce`;
the coffea processors are in ``processors/``.
"""

__version__ = "0.2.0"
__all__ = ["Calibrator", "__version__"]


def __getattr__(name: str):
    """``topcal.Calibrator`` without importing TensorFlow at ``import topcal``."""
    if name == "Calibrator":
        from topcal.predict.calibrator import Calibrator

        return Calibrator
    raise AttributeError(f"module 'topcal' has no attribute {name!r}")
