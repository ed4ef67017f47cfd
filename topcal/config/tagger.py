"""The LoLa top tagger's configuration (``topcal tagger``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from topcal.config.schema import _Serialisable, _training_fields
from topcal.errors import ConfigError
from topcal.seeds import check_seed


@dataclass
class TaggerConfig(_Serialisable):
    """The LoLa top tagger (``topcal tagger``): top jets against background jets, for "most top-like" subsets.

    The leading ``n_constituents`` constituents (GeV / 1000) enter a combination layer (CoLa) that appends
    ``n_combinations`` trainable linear combinations of them, then a Lorentz layer (LoLa) that gives each
    (combined) four-vector its mass squared, pT, energy, two trainable energy sums and two trainable sums of
    Minkowski distances to the others; dense layers ``hidden`` (ReLU) end in one sigmoid output.
    Binary cross-entropy, Adam ``learning_rate``, early stopping on ``validation_fraction`` of the jets.
    Top jets come only from the trainable part of their dataset (its last ``test_fraction`` is for evaluation);
    both classes are cut to the same number of jets, at most ``max_jets_per_class``.
    """

    n_constituents: int = 40
    n_combinations: int = 15
    hidden: list[int] = field(default_factory=lambda: [100, 50])
    learning_rate: float = 1e-3
    batch_size: int = 128
    epochs: int = 30
    patience: int = 5
    validation_fraction: float = 0.2
    test_fraction: float = 0.2
    max_jets_per_class: int | None = None
    seed: int = 1

    def validate(self) -> None:
        _training_fields(self, "tagger.", ("n_constituents", "batch_size", "epochs", "patience"))
        check_seed(self.seed, "tagger.seed")
        if self.n_combinations < 0:
            raise ConfigError(f"tagger.n_combinations: {self.n_combinations} must be >= 0")
