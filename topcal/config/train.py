"""The Bayesian network's configuration (``topcal train``): network, inputs, target, likelihood, optimiser
and data (``docs/design.md`` section 3), and the paper's network as a preset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from topcal.config.schema import _positive, _Serialisable, _training_fields
from topcal.errors import ConfigError
from topcal.seeds import check_seed

LIKELIHOODS = ("gauss", "gmm2", "gmm3")


ARCHITECTURES = ("deepset", "dense")
PHI_POSTERIORS = ("bayesian", "point")
CALIBRATION_SOURCES = ("apart", "validation")
INPUT_KINDS = ("jet-frame", "lab-4vectors")
TARGETS = ("response", "pt")


@dataclass
class TrainConfig(_Serialisable):
    """The network, its inputs and target, its likelihood, the optimiser and the data used (``topcal train``).

    The defaults are topcal's network, the best configuration measured (docs/results.md,
    ``benchmarks/bench_physics.py``): a Bayesian deep set (``architecture = "deepset"``: a Flipout map
    ``phi_hidden`` applied to every constituent, summed, joined with the jet-level features, a Flipout head
    ``hidden``) on jet-frame inputs (``inputs = "jet-frame"``, :mod:`topcal.train.inputs`; the leading
    ``n_constituents`` constituents) with the response pT,t(truth) / pT,j as target (``target = "response"``: the
    mean and every sigma scale back to GeV with pT,j). :func:`paper_train_config` gives the paper's network: dense
    100-100-50-50 on the flattened lab-frame (E, px, py, pz) / 1000 (``"dense"``, ``"lab-4vectors"``), target pT,t
    (``"pt"``), prior 0.1, learning rate 1e-4, batch 100.

    The target is standardised with the training sample's mean and width. ``prior_sigma`` is the width of the
    Gaussian prior N(0, prior_sigma) of every Flipout kernel weight; the KL term is multiplied by ``kl_weight`` and
    divided by the number of training jets. ``kl_weight = 1`` is the evidence lower bound: measured on a fresh
    sample, its KL term pins the deep set's weights near the prior at 2k training jets (sqrt(MSE) no better than the
    linear fit of pT,j). topcal's default 0.05 is a tempered posterior: the network then fits as well as with no KL
    at all, and every posterior width is about sqrt(0.05) = 0.22 of the evidence-lower-bound width, so sigma_pred is
    smaller than the untempered posterior's (it still shrinks as 1/sqrt(N) with the training size N); the total
    error stays calibrated on held-out jets. ``likelihood`` is ``gauss`` (mean, SoftPlus width) or ``gmmK`` (K
    Gaussians); the default, three Gaussians, describes the long tails of the response that a single Gaussian
    cannot, so that the 68% intervals cover 68% of the jets. The posterior widths are softplus(``width_speed`` x
    rho): with Adam, whose steps do not depend on a gradient's size, the widths then learn ``width_speed`` times
    faster than the weights (1: TFP's own parametrisation). Adam with ``learning_rate``, gradients clipped to a
    global norm ``clip_norm``; the learning rate is halved after ``lr_patience`` epochs without a better validation
    negative log-likelihood, and training stops after ``patience`` such epochs (the best weights are kept).
    ``smear`` > 0 trains on pT,t(truth) smeared per jet by a Gaussian of width ``smear`` x pT,t(truth), drawn once
    per jet from ``seed``. ``ensemble`` > 0 trains that many deterministic networks instead (NLL loss, L2 = 1 / (2
    prior_sigma N), dropout ``ensemble_dropout`` on the inner layers), each on its own subsample of ``train_size``
    jets. The last ``test_fraction`` of the dataset is never used in training (``topcal evaluate`` uses it);
    ``validation_fraction`` of the training jets drive early stopping. ``recalibrate`` fits one factor on the
    calibration jets (``calibration_jets``, below) that stretches each jet's predictive distribution about its mean (so
    every sigma and the intervals) until their 68% intervals hold 68% of the labels (``model.json`` records it; reports
    give the raw figures beside the recalibrated ones). The factor is a function of pT,j: one per each of
    ``recalibrate_bins`` pT,j bins of equal numbers of calibration jets (at least 400 each, else fewer bins), at the
    bins' median pT,j, linear in between and constant beyond (:func:`topcal.train.recalibration.calibration_in_bins`; 1:
    one factor for every jet).

    ``phi_posterior`` says what the deep set's per-constituent map Phi is: ``"bayesian"`` (the default), Flipout
    layers like the head; ``"point"``, ordinary dense layers whose weights are a point estimate (the maximum of
    the tempered posterior: L2 = ``kl_weight`` / (2 prior_sigma^2 N) on its kernels), with only the head after the
    pooling Bayesian. Prediction then evaluates Phi once per jet and repeats only the head for the T weight draws
    (:func:`topcal.train.network.sample_outputs`). The ensemble and the dense network ignore it.

    ``calibration_jets`` says which labelled jets the width recalibration is fitted on: ``"apart"`` (the
    default), up to 10,000 trainable jets that no network trains or validates on (those outside every
    network's ``train_size`` subsample, drawn with ``seed``), when the dataset has at least 2,000 of them,
    otherwise as ``"validation"``; ``"validation"``, the validation jets of network 0, topped up to 2,000 with its
    training jets when there are fewer (a dataset of 2,000 jets in all: 400 validation and 1,600 training
    jets). :func:`topcal.train.fit.calibration_rows` gives the rows.
    """

    architecture: str = "deepset"
    inputs: str = "jet-frame"
    target: str = "response"
    n_constituents: int | None = 64
    phi_hidden: list[int] = field(default_factory=lambda: [64, 64, 64])
    phi_posterior: str = "bayesian"
    hidden: list[int] = field(default_factory=lambda: [100, 100, 50])
    activation: str = "relu"
    prior_sigma: float = 1.0
    kl_weight: float = 0.05
    likelihood: str = "gmm3"
    sigma_floor: float = 1e-3  # in units of the standardised target
    learning_rate: float = 1e-3
    clip_norm: float = 1.0
    batch_size: int = 128
    epochs: int = 200
    patience: int = 12
    lr_patience: int | None = 5
    validation_fraction: float = 0.2
    test_fraction: float = 0.2
    train_size: int | None = None
    smear: float = 0.0
    ensemble: int = 0
    ensemble_dropout: float = 0.1
    recalibrate: bool = True
    recalibrate_bins: int = 5
    calibration_jets: str = "apart"
    width_speed: float = 10.0
    seed: int = 1

    @property
    def components(self) -> int:
        return 1 if self.likelihood == "gauss" else int(self.likelihood[3:])

    def validate(self) -> None:
        for name, allowed in (("architecture", ARCHITECTURES), ("inputs", INPUT_KINDS), ("target", TARGETS),
                              ("likelihood", LIKELIHOODS), ("phi_posterior", PHI_POSTERIORS),
                              ("calibration_jets", CALIBRATION_SOURCES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name}: {getattr(self, name)!r} is not one of {allowed}")
        if self.architecture == "deepset" and self.inputs != "jet-frame":
            raise ConfigError(f"inputs: the deepset architecture needs 'jet-frame' inputs, not {self.inputs!r}")
        _training_fields(self, "", ("batch_size", "epochs", "patience"))
        if self.lr_patience is not None and self.lr_patience < 1:
            raise ConfigError(f"lr_patience: {self.lr_patience} must be >= 1 (or unset: never lowered)")
        if self.architecture == "deepset" and (not self.phi_hidden or any(int(n) < 1 for n in self.phi_hidden)):
            raise ConfigError(f"phi_hidden: {self.phi_hidden} must be a non-empty list of positive layer widths")
        if self.n_constituents is not None and self.n_constituents < 1:
            raise ConfigError(f"n_constituents: {self.n_constituents} must be >= 1 (or unset: all stored)")
        if self.activation not in ("relu", "tanh", "elu", "selu", "gelu", "softplus"):
            raise ConfigError(f"activation: {self.activation!r} is not a supported activation")
        if self.recalibrate_bins < 1:
            raise ConfigError(f"recalibrate_bins: {self.recalibrate_bins} must be >= 1 (1: one factor for every jet)")
        for name in ("prior_sigma", "sigma_floor", "kl_weight", "clip_norm", "width_speed"):
            _positive(name, getattr(self, name))
        if self.train_size is not None and self.train_size < 10:
            raise ConfigError(f"train_size: {self.train_size} must be >= 10 jets")
        if not 0 <= self.smear < 1:
            raise ConfigError(f"smear: {self.smear} must be in [0, 1) (a fraction of pT,t(truth))")
        if self.ensemble < 0 or self.ensemble == 1:
            raise ConfigError(f"ensemble: {self.ensemble} must be 0 (Bayesian network) or >= 2 members")
        if not 0 <= self.ensemble_dropout < 1:
            raise ConfigError(f"ensemble_dropout: {self.ensemble_dropout} must be in [0, 1)")
        check_seed(self.seed)


def paper_train_config(**overrides) -> TrainConfig:
    """The paper's network (docs/design.md section 3): dense 100-100-50-50 Flipout layers on the flattened
    lab-frame constituents (E, px, py, pz) / 1000, target pT,t(truth), prior N(0, 0.1), Adam 1e-4, batch 100,
    early stopping on the validation loss (patience 10)."""
    paper = {"architecture": "dense", "inputs": "lab-4vectors", "target": "pt", "n_constituents": None,
             "kl_weight": 1.0, "hidden": [100, 100, 50, 50], "prior_sigma": 0.1, "learning_rate": 1e-4,
             "batch_size": 100, "patience": 10, "lr_patience": None, "likelihood": "gauss", "recalibrate": False,
             "width_speed": 1.0}
    return TrainConfig(**{**paper, **overrides})
