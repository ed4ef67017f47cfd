"""How big each ``topcal reproduce`` run is: events, training sizes, repetitions, epochs.

``small`` finishes on a 2-core laptop in well under 30 minutes; ``medium`` in about two hours; ``paper``
uses the paper's sizes (``topcal reproduce --scale paper --dry-run`` prints the tasks and the wall time
projected from step times measured on the machine; run it on a dask cluster). ``tiny`` only checks the wiring (tests).
At the small scales the paper's network uses a wider prior and a faster optimiser than the paper's (prior 0.1,
Adam 1e-4 at 1M jets): with a few thousand jets the KL term, divided by the training size, would dominate.
topcal's default network (``default<N>`` models) keeps its own defaults at every scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from topcal.errors import ConfigError


@dataclass(frozen=True)
class Scale:
    events: int                      # ttbar events without ISR to generate
    train_sizes: tuple[int, ...]     # training jets per network for the training-size study (figure 5)
    repetitions: int                 # independent trainings per point (the paper quotes the spread of five)
    epochs: int
    patience: int
    smear_fractions: tuple[float, ...] = (0.04, 0.06, 0.08, 0.10)
    likelihoods: tuple[str, ...] = ("gauss", "gmm2", "gmm3")
    samples: int = 30                # weight samples T per jet in the evaluations
    ensemble_members: int = 5        # deterministic networks per frequentist ensemble (figure 7; paper: 40)
    prior_sigma: float = 1.0
    learning_rate: float = 3e-3
    hidden: tuple[int, ...] = field(default=(100, 100, 50, 50))
    workers: int = 2
    isr_events: int = 0              # ttbar events with ISR (table 1, figure 4); 0 leaves the ISR study out
    qcd_events: int = 0              # QCD dijet events per ISR setting, background for the LoLa tagger
    tagger_epochs: int = 20
    default_epochs: int = 200        # topcal's default network (early stopping ends it sooner)
    default_network: dict = field(default_factory=dict)  # TrainConfig overrides of the default network


SCALES = {
    "tiny": Scale(events=600, train_sizes=(150, 300), repetitions=2, epochs=1, patience=1,
                  smear_fractions=(0.05,), likelihoods=("gauss", "gmm2"), samples=4, hidden=(16,),
                  ensemble_members=2, isr_events=600, qcd_events=600, tagger_epochs=1, default_epochs=1,
                  default_network={"phi_hidden": [8], "hidden": [8]}),
    "small": Scale(events=16_000, train_sizes=(2000, 5000, 10_000), repetitions=2, epochs=40, patience=8,
                   isr_events=8000, qcd_events=8000, tagger_epochs=15),
    "medium": Scale(events=100_000, train_sizes=(2000, 5000, 10_000, 20_000, 40_000), repetitions=3, epochs=60,
                    patience=10, isr_events=30_000, qcd_events=25_000),
    # the paper: 2.2M jets without ISR (0.55 trainable jets per event), eleven training sizes 2k..1M, five
    # trainings per point, an ensemble of 40
    "paper": Scale(events=4_000_000, train_sizes=(2000, 5000, 10_000, 20_000, 50_000, 100_000, 200_000, 300_000,
                                                  500_000, 700_000, 1_000_000), repetitions=5, epochs=200,
                   patience=10, samples=50, prior_sigma=0.1, learning_rate=1e-4, workers=16,
                   ensemble_members=40, isr_events=1_500_000, qcd_events=1_000_000, tagger_epochs=30),
}


def get_scale(name: str) -> Scale:
    if name not in SCALES:
        raise ConfigError(f"scale: {name!r} is not one of {tuple(SCALES)}")
    return SCALES[name]
