"""Every configuration of topcal, one module each, as dataclasses with defaults, checks and a JSON round trip.

- :mod:`topcal.config.run`: generator, detector (with the energy-flow scales) and output (``topcal generate``);
- :mod:`topcal.config.process`: the per-jet data set (``topcal process``);
- :mod:`topcal.config.train`: the Bayesian network and its training (``topcal train``);
- :mod:`topcal.config.tagger`: the LoLa top tagger (``topcal tagger``);
- :mod:`topcal.config.card`: TOML cards (:func:`load_card`);
- :mod:`topcal.config.schema`: the type and value checks they share.

Every name is importable from ``topcal.config`` itself.
"""

from topcal.config.card import load_card
from topcal.config.process import (
    DEFAULT_MAX_CONSTITUENTS,
    GROOMERS,
    ISR_MAX_CONSTITUENTS,
    TOP_LABELS,
    ProcessConfig,
    design_v1_process_config,
    paper_process_config,
)
from topcal.config.run import (
    ALL_COLLECTIONS,
    COMPRESSIONS,
    PROCESSES,
    SLIM_COLLECTIONS,
    TRUTH_RECORDS,
    CalorimeterConfig,
    DetectorConfig,
    EfficiencyTable,
    EnergyFlowConfig,
    GeneratorConfig,
    OutputConfig,
    RunConfig,
    SolenoidConfig,
    TrackingConfig,
    TrackResolution,
    slim_output,
)
from topcal.config.schema import INF
from topcal.config.tagger import TaggerConfig
from topcal.config.train import (
    ARCHITECTURES,
    INPUT_KINDS,
    LIKELIHOODS,
    TARGETS,
    TrainConfig,
    paper_train_config,
)

__all__ = [
    "GROOMERS",
    "ALL_COLLECTIONS", "ARCHITECTURES", "COMPRESSIONS", "DEFAULT_MAX_CONSTITUENTS", "INF", "INPUT_KINDS",
    "ISR_MAX_CONSTITUENTS", "LIKELIHOODS", "PROCESSES", "SLIM_COLLECTIONS", "TARGETS", "TOP_LABELS",
    "TRUTH_RECORDS", "CalorimeterConfig", "DetectorConfig", "EfficiencyTable", "EnergyFlowConfig",
    "GeneratorConfig", "OutputConfig", "ProcessConfig", "RunConfig", "SolenoidConfig", "TaggerConfig",
    "TrackResolution", "TrackingConfig", "TrainConfig", "design_v1_process_config", "load_card",
    "paper_process_config", "paper_train_config", "slim_output",
]
