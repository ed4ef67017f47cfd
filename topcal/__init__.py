"""topcal: per-jet calibrated top-quark pT with Bayesian neural networks, from PYTHIA to ROOT friend trees.

Pipeline stages, one subpackage each: :mod:`topcal.generate` (PYTHIA 8 + detector simulation),
:mod:`topcal.io` (DELPHES-format ROOT reading and writing), and the coffea processors in ``processors/``.
"""

__version__ = "0.1.0"
