"""All numbers of the generator and the detector simulation, in one place.

Units: energies, momenta and masses in GeV; lengths in metres (solenoid) or millimetres (decay length);
magnetic field in tesla; angles as pseudorapidity (eta) and radians (phi).

The defaults are the DELPHES 3 ATLAS card as summarised in ``docs/design.md`` section 1. Every value can be
overridden from a TOML card (``topcal generate --config card.toml``)::

    [generator]
    isr = true

    [detector.solenoid]
    bz_tesla = 2.0

    [detector.ecal]
    stochastic = [0.101, 0.285]

    [detector.energy_flow]       # a systematic sample: tracks measured 1% high
    track_pt_scale = 1.01

and the full, resolved configuration is written into every output file (``topcal_config``), so a file
always says what made it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from topcal.errors import ConfigError
from topcal.seeds import check_seed

INF = math.inf


class _Serialisable:
    """JSON round trip for the configuration dataclasses (written into every output they produce)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=_json_default)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        return _build(cls, data, "")


# ---------------------------------------------------------------------------------------------------
# generator
# ---------------------------------------------------------------------------------------------------

PROCESSES = ("ttbar", "qcd")
TOP_LABELS = ("last-copy", "hard-process")
DEFAULT_MAX_CONSTITUENTS = 100  # constituents per jet in the network input
ISR_MAX_CONSTITUENTS = 200  # the same, for inputs made with initial-state radiation


@dataclass
class GeneratorConfig:
    """PYTHIA 8 settings for pp -> t tbar (or QCD dijets) at the LHC.

    The hard-process pT window (``pthat_min_gev``..``pthat_max_gev``) together with PYTHIA's phase-space
    bias ``(pTHat / bias_reference_gev) ** bias_power`` makes the top-quark pT spectrum roughly flat in
    400..1000 GeV; each event's compensating weight is stored in ``Event.Weight``.
    """

    process: str = "ttbar"
    ecm_gev: float = 14000.0
    isr: bool = False
    fsr: bool = True
    mpi: bool = False
    hadronic_tops: bool = True
    pthat_min_gev: float = 350.0
    pthat_max_gev: float = 1100.0
    bias_power: float = 6.0
    bias_reference_gev: float = 400.0
    tau0_max_mm: float = 10.0  # particles with c*tau0 above this are stable (K0S, Lambda reach the detector)
    extra_settings: list[str] = field(default_factory=list)  # raw PYTHIA strings, appended last

    def validate(self) -> None:
        if self.process not in PROCESSES:
            raise ConfigError(f"generator.process: unknown process {self.process!r}, expected one of {PROCESSES}")
        _positive("generator.ecm_gev", self.ecm_gev)
        _positive("generator.pthat_min_gev", self.pthat_min_gev)
        if not self.pthat_max_gev > self.pthat_min_gev:
            raise ConfigError(
                f"generator.pthat_max_gev: {self.pthat_max_gev} must be above pthat_min_gev {self.pthat_min_gev}"
            )
        if not self.pthat_min_gev < self.ecm_gev / 2:
            raise ConfigError(f"generator.pthat_min_gev: {self.pthat_min_gev} must be below half the collision "
                              f"energy ({self.ecm_gev / 2:g} GeV): no hard process reaches it")
        _positive("generator.bias_reference_gev", self.bias_reference_gev)
        if self.bias_power < 0:
            raise ConfigError(f"generator.bias_power: {self.bias_power} must be >= 0")
        _positive("generator.tau0_max_mm", self.tau0_max_mm)

    def pythia_settings(self) -> list[str]:
        """The PYTHIA ``readString`` lines for this configuration (the seed is set per chunk)."""
        s = [f"Beams:eCM = {self.ecm_gev}"]
        if self.process == "ttbar":
            s += ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on"]
            if self.hadronic_tops:
                s += ["24:onMode = off", "24:onIfAny = 1 2 3 4 5"]
        else:
            s += ["HardQCD:all = on"]
        s += [
            f"PartonLevel:MPI = {_onoff(self.mpi)}",
            f"PartonLevel:ISR = {_onoff(self.isr)}",
            f"PartonLevel:FSR = {_onoff(self.fsr)}",
            f"PhaseSpace:pTHatMin = {self.pthat_min_gev}",
            f"PhaseSpace:pTHatMax = {self.pthat_max_gev}",
        ]
        if self.bias_power > 0:
            s += [
                "PhaseSpace:bias2Selection = on",
                f"PhaseSpace:bias2SelectionPow = {self.bias_power}",
                f"PhaseSpace:bias2SelectionRef = {self.bias_reference_gev}",
            ]
        s += [
            "ParticleDecays:limitTau0 = on",
            f"ParticleDecays:tau0Max = {self.tau0_max_mm}",
            "Next:numberCount = 0",
            "Next:numberShowEvent = 0",
            "Next:numberShowProcess = 0",
            "Next:numberShowInfo = 0",
            "Print:quiet = on",
        ]
        return s + list(self.extra_settings)


# ---------------------------------------------------------------------------------------------------
# detector
# ---------------------------------------------------------------------------------------------------


@dataclass
class SolenoidConfig:
    """Magnetic field and the cylinder (radius, half-length) on which the calorimeters sit."""

    bz_tesla: float = 2.0
    radius_m: float = 1.15
    half_length_m: float = 3.51

    def validate(self) -> None:
        _positive("detector.solenoid.radius_m", self.radius_m)
        _positive("detector.solenoid.half_length_m", self.half_length_m)


@dataclass
class EfficiencyTable:
    """Tracking efficiency in bins of |eta| (rows) and pt in GeV (columns); zero outside the table.

    ``values[i][j]`` applies for ``abs_eta_edges[i] < |eta| <= abs_eta_edges[i+1]`` and
    ``pt_edges[j] < pt <= pt_edges[j+1]``.
    """

    abs_eta_edges: list[float]
    pt_edges: list[float]
    values: list[list[float]]

    def validate(self, name: str) -> None:
        _increasing(f"{name}.abs_eta_edges", self.abs_eta_edges)
        _increasing(f"{name}.pt_edges", self.pt_edges)
        if len(self.values) != len(self.abs_eta_edges) - 1 or any(
            len(row) != len(self.pt_edges) - 1 for row in self.values
        ):
            raise ConfigError(f"{name}.values: shape must be (len(abs_eta_edges)-1, len(pt_edges)-1)")
        for row in self.values:
            for v in row:
                if not 0.0 <= v <= 1.0:
                    raise ConfigError(f"{name}.values: efficiency {v} outside 0..1")


@dataclass
class TrackResolution:
    """Relative track pt resolution ``sigma(pt)/pt = sqrt(constant^2 + (pt * slope)^2)`` (pt in GeV),
    in bins of |eta|; tracks outside the last edge are not reconstructed."""

    abs_eta_edges: list[float]
    constant: list[float]
    slope_per_gev: list[float]

    def validate(self, name: str) -> None:
        _increasing(f"{name}.abs_eta_edges", self.abs_eta_edges)
        for key in ("constant", "slope_per_gev"):
            values = getattr(self, key)
            if len(values) != len(self.abs_eta_edges) - 1:
                raise ConfigError(f"{name}.{key}: needs one value per |eta| bin ({len(self.abs_eta_edges) - 1})")
            for v in values:
                if not (v >= 0 and math.isfinite(v)):
                    raise ConfigError(f"{name}.{key}: resolution {v} must be finite and >= 0")


@dataclass
class CalorimeterConfig:
    """One calorimeter: tower grid, energy resolution and thresholds.

    Grid: ``eta_edges`` (signed eta) with ``n_phi[i]`` equal phi bins in eta bin ``i``.
    Resolution: ``sigma(E)^2 = (constant*E)^2 + stochastic^2 * E + noise^2`` (E in GeV), in bins of |eta|
    given by ``resolution_abs_eta_edges``. A tower is kept when ``E > energy_min_gev`` and
    ``E / sigma(E) > significance_min``; the same thresholds apply to the neutral energy-flow remainder.
    """

    eta_edges: list[float]
    n_phi: list[int]
    resolution_abs_eta_edges: list[float]
    constant: list[float]
    stochastic: list[float]
    noise_gev: list[float]
    energy_min_gev: float
    significance_min: float

    def validate(self, name: str) -> None:
        _increasing(f"{name}.eta_edges", self.eta_edges)
        if len(self.n_phi) != len(self.eta_edges) - 1 or any(int(n) < 1 for n in self.n_phi):
            raise ConfigError(f"{name}.n_phi: needs one positive phi-bin count per eta bin")
        _increasing(f"{name}.resolution_abs_eta_edges", self.resolution_abs_eta_edges)
        for key in ("constant", "stochastic", "noise_gev"):
            values = getattr(self, key)
            if len(values) != len(self.resolution_abs_eta_edges) - 1:
                raise ConfigError(f"{name}.{key}: needs one value per resolution |eta| bin")
            for v in values:
                if not (v >= 0 and math.isfinite(v)):
                    raise ConfigError(f"{name}.{key}: resolution {v} must be finite and >= 0")
        if self.energy_min_gev < 0:
            raise ConfigError(f"{name}.energy_min_gev: {self.energy_min_gev} must be >= 0")
        if self.significance_min < 0:
            raise ConfigError(f"{name}.significance_min: {self.significance_min} must be >= 0")


def _uniform_edges(lo: float, hi: float, width: float) -> list[float]:
    """Edges from lo to hi in an integer number of bins of about ``width``."""
    n = max(1, round((hi - lo) / width))
    return [round(lo + (hi - lo) * i / n, 6) for i in range(n + 1)]


def _ecal_grid() -> tuple[list[float], list[int]]:
    central = _uniform_edges(-3.0, 3.0, 0.0174)  # 0.0174 x 1 degree
    forward = _uniform_edges(3.0, 5.0, 0.175)  # 0.175 x 20 degrees
    edges = [-e for e in reversed(forward)] + central[1:-1] + forward
    n_fwd = len(forward) - 1
    return edges, [18] * n_fwd + [360] * (len(central) - 1) + [18] * n_fwd


def _hcal_grid() -> tuple[list[float], list[int]]:
    central = _uniform_edges(-2.5, 2.5, 0.1)
    forward = _uniform_edges(3.3, 4.9, 0.2)  # 20 degrees
    # 10-degree bins up to |eta| 2.5, then 2.5..2.6 and 2.6..3.3 (the ATLAS card's edges), then forward
    mid = [2.6, 3.3]
    edges = [-e for e in reversed(forward[1:])] + [-e for e in reversed(mid)] + central + mid + forward[1:]
    n_fwd = len(forward) - 1
    n_mid = len(mid)
    return edges, [18] * n_fwd + [36] * n_mid + [36] * (len(central) - 1) + [36] * n_mid + [18] * n_fwd


def _default_ecal() -> CalorimeterConfig:
    edges, n_phi = _ecal_grid()
    return CalorimeterConfig(
        eta_edges=edges,
        n_phi=n_phi,
        resolution_abs_eta_edges=[0.0, 3.2, 4.9],
        constant=[0.0017, 0.035],
        stochastic=[0.101, 0.285],
        noise_gev=[0.0, 0.0],
        energy_min_gev=0.5,
        significance_min=2.0,
    )


def _default_hcal() -> CalorimeterConfig:
    edges, n_phi = _hcal_grid()
    return CalorimeterConfig(
        eta_edges=edges,
        n_phi=n_phi,
        resolution_abs_eta_edges=[0.0, 1.7, 3.2, 4.9],
        constant=[0.0302, 0.050, 0.0942],
        stochastic=[0.5205, 0.706, 1.00],
        noise_gev=[1.59, 0.0, 0.0],
        energy_min_gev=1.0,
        significance_min=2.0,
    )


def _default_fractions() -> dict[str, list[float]]:
    """(ECAL, HCAL) energy fractions by |PDG id|; anything not listed is a hadron: (0, 1)."""
    em = {11: (1.0, 0.0), 22: (1.0, 0.0), 111: (1.0, 0.0)}
    long_lived = {310: (0.3, 0.7), 3122: (0.3, 0.7)}
    invisible = {13: (0.0, 0.0), 12: (0.0, 0.0), 14: (0.0, 0.0), 16: (0.0, 0.0), 1000022: (0.0, 0.0)}
    return {str(k): list(v) for k, v in {**em, **long_lived, **invisible}.items()}


@dataclass
class TrackingConfig:
    """Tracking efficiency and momentum resolution for charged hadrons, electrons and muons."""

    hadron_efficiency: EfficiencyTable = field(
        default_factory=lambda: EfficiencyTable([0.0, 1.5, 2.5], [0.1, 1.0, INF], [[0.70, 0.95], [0.60, 0.85]])
    )
    electron_efficiency: EfficiencyTable = field(
        default_factory=lambda: EfficiencyTable(
            [0.0, 1.5, 2.5], [0.1, 1.0, 100.0, INF], [[0.73, 0.95, 0.99], [0.50, 0.83, 0.90]]
        )
    )
    muon_efficiency: EfficiencyTable = field(
        default_factory=lambda: EfficiencyTable([0.0, 1.5, 2.5], [0.1, 1.0, INF], [[0.75, 0.99], [0.70, 0.98]])
    )
    hadron_resolution: TrackResolution = field(
        default_factory=lambda: TrackResolution([0.0, 0.5, 1.5, 2.5], [0.06, 0.10, 0.25], [1.3e-3, 1.7e-3, 3.1e-3])
    )
    electron_resolution: TrackResolution = field(
        default_factory=lambda: TrackResolution([0.0, 0.5, 1.5, 2.5], [0.03, 0.05, 0.15], [1.3e-3, 1.7e-3, 3.1e-3])
    )
    muon_resolution: TrackResolution = field(
        default_factory=lambda: TrackResolution([0.0, 0.5, 1.5, 2.5], [0.01, 0.015, 0.025], [1.0e-4, 1.5e-4, 3.5e-4])
    )

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            getattr(self, f.name).validate(f"detector.tracking.{f.name}")


@dataclass
class EnergyFlowConfig:
    """Scales of the energy-flow reconstruction (1.0: calibrated), for systematic samples: the same events
    (same seed) with a miscalibrated reconstruction. ``track_pt_scale`` multiplies every EFlowTrack's PT
    (and P, ErrorPT); ``photon_energy_scale`` and ``neutral_hadron_energy_scale`` multiply the neutral
    remainder that becomes an EFlowPhoton (ECAL) or EFlowNeutralHadron (HCAL) before its thresholds, so
    objects near a threshold can appear or disappear. Track, Tower and the random numbers are unchanged."""

    track_pt_scale: float = 1.0
    photon_energy_scale: float = 1.0
    neutral_hadron_energy_scale: float = 1.0

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            _positive(f"detector.energy_flow.{f.name}", getattr(self, f.name))


@dataclass
class DetectorConfig:
    """The parametric detector: solenoid, tracking, ECAL, HCAL, calorimeter energy fractions and the
    energy-flow scales."""

    solenoid: SolenoidConfig = field(default_factory=SolenoidConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    ecal: CalorimeterConfig = field(default_factory=_default_ecal)
    hcal: CalorimeterConfig = field(default_factory=_default_hcal)
    energy_fractions: dict[str, list[float]] = field(default_factory=_default_fractions)
    smear_tower_centres: bool = True
    energy_flow: EnergyFlowConfig = field(default_factory=EnergyFlowConfig)

    def validate(self) -> None:
        self.energy_flow.validate()
        self.solenoid.validate()
        self.tracking.validate()
        self.ecal.validate("detector.ecal")
        self.hcal.validate("detector.hcal")
        for pid, frac in self.energy_fractions.items():
            if len(frac) != 2 or any(not 0.0 <= f <= 1.0 for f in frac) or sum(frac) > 1.0 + 1e-9:
                raise ConfigError(f"detector.energy_fractions[{pid}]: {frac} must be two fractions in 0..1")


ALL_COLLECTIONS = ("Event", "Particle", "Track", "Tower", "EFlowTrack", "EFlowPhoton", "EFlowNeutralHadron")
TRUTH_RECORDS = ("full", "compact")
COMPRESSIONS = ("zlib", "lzma", "lz4", "zstd")


@dataclass
class OutputConfig:
    """What goes into the ROOT file.

    ``truth = "full"`` writes PYTHIA's whole event record as ``Particle``; ``"compact"`` keeps only the
    tops and Ws (all copies) and the daughters of their last copies (b and W-decay quarks), with mother and
    daughter indices renumbered (-1 where the partner was dropped), like a DELPHES StatusPidFilter.
    ``collections`` chooses the collections written (``Event`` and ``Particle`` always are).
    """

    truth: str = "full"
    collections: list[str] = field(default_factory=lambda: list(ALL_COLLECTIONS))
    compression: str = "zlib"
    compression_level: int = 1

    def validate(self) -> None:
        if self.truth not in TRUTH_RECORDS:
            raise ConfigError(f"output.truth: {self.truth!r} is not one of {TRUTH_RECORDS}")
        unknown = set(self.collections) - set(ALL_COLLECTIONS)
        if unknown:
            raise ConfigError(f"output.collections: unknown {sorted(unknown)}, expected some of {ALL_COLLECTIONS}")
        if self.compression not in COMPRESSIONS:
            raise ConfigError(f"output.compression: {self.compression!r} is not one of {COMPRESSIONS}")
        if not 0 <= self.compression_level <= 9:
            raise ConfigError(f"output.compression_level: {self.compression_level} must be in 0..9")


SLIM_COLLECTIONS = ["Event", "Particle", "EFlowTrack", "EFlowPhoton", "EFlowNeutralHadron"]


def slim_output() -> OutputConfig:
    """``topcal generate --slim``: compact truth, only the collections topcal reads, ZSTD level 5.

    ZSTD 5 writes almost as small files as LZMA 9 and fast enough that the single writer keeps up with
    ``-j N`` workers (``benchmarks/bench_generate.py --slim``)."""
    return OutputConfig(truth="compact", collections=list(SLIM_COLLECTIONS), compression="zstd",
                        compression_level=5)


@dataclass
class RunConfig(_Serialisable):
    """Everything that determines a generated file: generator, detector, output, seed and chunking."""

    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    seed: int = 1
    chunk_events: int = 250  # events per reproducible chunk; output does not depend on the worker count

    def validate(self) -> None:
        self.generator.validate()
        self.detector.validate()
        self.output.validate()
        check_seed(self.seed)
        if self.chunk_events < 1:
            raise ConfigError(f"chunk_events: {self.chunk_events} must be >= 1")



# ---------------------------------------------------------------------------------------------------
# processing: DELPHES events -> per-jet dataset (docs/design.md section 2)
# ---------------------------------------------------------------------------------------------------


GROOMERS = ("none", "trimming")  # ProcessConfig.groom (topcal.process.fatjets.groomed)


@dataclass
class ProcessConfig(_Serialisable):
    """Fat jets, truth matching, selection, flattening and network input (``topcal process``).

    Momenta in GeV. Jets are anti-kT with radius ``jet_radius`` from the energy-flow objects (or calorimeter
    towers with ``use_towers``); jets above ``cluster_pt_min_gev`` are kept from the clustering and numbered
    by falling pT (``jet_index``), which is how predictions find their jet again. A jet enters the dataset
    when ``|eta| < jet_eta_max``, ``jet_pt_min_gev <= pT,j < jet_pt_max_gev`` and a truth top lies within
    Delta R < ``jet_radius``, with (``match_decay_products``, the default, as in the public top-tagging data
    set) its b quark and both W-decay quarks inside too, and its label pT,t(truth) in
    ``truth_pt_min_gev <= pT,t < truth_pt_max_gev`` (jets whose top lies outside are dropped, not kept).
    The defaults are the paper's data set (docs/design.md section 2): the label is the top as the hard process
    made it, before its own final-state radiation (``top_label = "hard-process"``; ``"last-copy"``, the top
    just before its decay, stays available), and electrons and muons stay in the jet inputs
    (``jet_leptons``: leptons from semi-leptonic b and c decays belong to the top; ``False`` drops them as
    DELPHES's EFlowFilter does).
    ``truth_match = False`` keeps every jet in the window, top or not (background such as QCD dijets for the
    top tagger): the truth columns of unmatched jets are NaN, and flattening in pT,t(truth) must be off.
    ``flatten`` keeps each jet with probability ``min(1, target / n_bin)`` from the histogram of pT,t(truth)
    in bins of ``flatten_bin_gev`` over the pT,j window (``target``: the least populated bin that is not thin,
    :mod:`topcal.process.flatten`);
    the draw is a hash of (``seed``, file name, entry, jet index), so it does not depend on chunking or
    executor. The stored network input is the leading ``max_constituents`` constituents by pT,
    (E, px, py, pz) / ``input_scale_gev``; ``None`` lets :func:`topcal.process.run.process` choose
    ``DEFAULT_MAX_CONSTITUENTS`` (100), or ``ISR_MAX_CONSTITUENTS`` (200) when any topcal-generated input was
    made with ISR; a value given in a card or a flag is kept. After grooming ``groom`` (``"none"``, or
    ``"trimming"``: kT subjets of radius ``trim_radius`` with less than ``trim_pt_fraction`` of pT,j dropped;
    for samples with initial-state radiation) only the constituents the network sees are groomed: the jet's
    axis, pT,j, mass, constituent count and truth match are those of the whole anti-kT jet.
    """

    jet_radius: float = 1.2
    use_towers: bool = False
    cluster_pt_min_gev: float = 100.0
    jet_eta_max: float = 2.0
    jet_pt_min_gev: float = 400.0
    jet_pt_max_gev: float = 1000.0
    match_decay_products: bool = True
    top_label: str = "hard-process"
    jet_leptons: bool = True
    truth_match: bool = True
    truth_pt_min_gev: float = 400.0
    truth_pt_max_gev: float = 1000.0
    max_constituents: int | None = None
    input_scale_gev: float = 1000.0
    flatten: bool = True
    flatten_bin_gev: float = 25.0
    seed: int = 1
    groom: str = "none"
    trim_radius: float = 0.2
    trim_pt_fraction: float = 0.05

    def validate(self) -> None:
        for name in ("jet_radius", "jet_eta_max", "jet_pt_max_gev", "flatten_bin_gev", "input_scale_gev"):
            _positive(name, getattr(self, name))
        if not 0 <= self.cluster_pt_min_gev <= self.jet_pt_min_gev:
            raise ConfigError(
                f"cluster_pt_min_gev: {self.cluster_pt_min_gev} must be in 0..jet_pt_min_gev ({self.jet_pt_min_gev})"
            )
        if not self.jet_pt_min_gev < self.jet_pt_max_gev:
            raise ConfigError(
                f"jet_pt_min_gev: {self.jet_pt_min_gev} must be below jet_pt_max_gev ({self.jet_pt_max_gev})"
            )
        if not self.truth_pt_min_gev < self.truth_pt_max_gev:
            raise ConfigError(f"truth_pt_min_gev: {self.truth_pt_min_gev} must be below truth_pt_max_gev "
                              f"({self.truth_pt_max_gev})")
        if self.flatten and not self.truth_match:
            raise ConfigError("flatten: flattening in pT,t(truth) needs truth_match; set flatten = false")
        if self.top_label not in TOP_LABELS:
            raise ConfigError(f"top_label: {self.top_label!r} is not one of {TOP_LABELS}")
        if self.max_constituents is not None and self.max_constituents < 1:
            raise ConfigError(f"max_constituents: {self.max_constituents} must be >= 1")
        check_seed(self.seed)
        if self.groom not in GROOMERS:
            raise ConfigError(f"groom: {self.groom!r} is not one of {GROOMERS}")
        if not 0 < self.trim_radius < self.jet_radius:
            raise ConfigError(f"trim_radius: {self.trim_radius} must be in 0..jet_radius ({self.jet_radius})")
        if not 0 <= self.trim_pt_fraction < 1:
            raise ConfigError(f"trim_pt_fraction: {self.trim_pt_fraction} must be in 0..1")


def paper_process_config(**overrides) -> ProcessConfig:
    """The paper's data set definition (its section 3, "essentially the public top tagging data set"), which
    is the default: hard-process label, leptons in the jet inputs, the b and both W-decay quarks inside the
    jet, pT,t(truth) in 400..1000 GeV. Measured on a fresh 30k-event sample (docs/design.md section 2): the spread
    of pT,t(truth) for pT,j 600..620 GeV is 64.5 GeV with the last copy, 56.2 GeV with the hard-process top,
    51.3 GeV when the decay quarks must be inside the jet (paper: 50.6 GeV sqrt(MSE))."""
    return ProcessConfig(**overrides)


def design_v1_process_config(**overrides) -> ProcessConfig:
    """The data set of topcal 0.1: last-copy label, EFlowFilter (no
    leptons in the jet inputs), the top alone matched, no pT,t(truth) window."""
    old = dict(top_label="last-copy", jet_leptons=False, match_decay_products=False, truth_pt_min_gev=0.0,
               truth_pt_max_gev=INF)
    return ProcessConfig(**{**old, **overrides})


# ---------------------------------------------------------------------------------------------------
# training: the Bayesian network (docs/design.md section 3)
# ---------------------------------------------------------------------------------------------------

LIKELIHOODS = ("gauss", "gmm2", "gmm3")


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


def _training_fields(cfg, prefix: str, counts: tuple[str, ...]) -> None:
    """Checks shared by the network configurations: counts >= 1, layer widths, learning rate, data fractions."""
    for name in counts:
        if getattr(cfg, name) < 1:
            raise ConfigError(f"{prefix}{name}: {getattr(cfg, name)} must be >= 1")
    if not cfg.hidden or any(int(n) < 1 for n in cfg.hidden):
        raise ConfigError(f"{prefix}hidden: {cfg.hidden} must be a non-empty list of positive layer widths")
    _positive(f"{prefix}learning_rate", cfg.learning_rate)
    for name in ("validation_fraction", "test_fraction"):
        if not 0 < getattr(cfg, name) < 1:
            raise ConfigError(f"{prefix}{name}: {getattr(cfg, name)} must be between 0 and 1")


ARCHITECTURES = ("deepset", "dense")
INPUT_KINDS = ("jet-frame", "lab-4vectors")
TARGETS = ("response", "pt")


@dataclass
class TrainConfig(_Serialisable):
    """The network, its inputs and target, its likelihood, the optimiser and the data used (``topcal train``).

    The defaults are topcal's network, the best configuration measured (docs/results.md,
    ``benchmarks/bench_physics.py``):
    a Bayesian deep set (``architecture = "deepset"``: a Flipout map ``phi_hidden`` applied to every
    constituent, summed, joined with the jet-level features, a Flipout head ``hidden``) on jet-frame inputs
    (``inputs = "jet-frame"``, :mod:`topcal.train.inputs`; the leading ``n_constituents`` constituents)
    with the response pT,t(truth) / pT,j as target (``target = "response"``: the mean and every sigma scale
    back to GeV with pT,j). :func:`paper_train_config` gives the paper's network: dense 100-100-50-50 on the
    flattened lab-frame (E, px, py, pz) / 1000 (``"dense"``, ``"lab-4vectors"``), target pT,t (``"pt"``),
    prior 0.1, learning rate 1e-4, batch 100.

    The target is standardised with the training sample's mean and width. ``prior_sigma`` is the width of
    the Gaussian prior N(0, prior_sigma) of every Flipout kernel weight; the KL term is multiplied by
    ``kl_weight`` and divided by the number of training jets. ``kl_weight = 1`` is the evidence lower bound:
    measured on a fresh sample, its KL term pins the deep set's weights near the prior at 2k training jets
    (sqrt(MSE) no better than the linear fit of pT,j). topcal's default 0.05 is a tempered posterior: the
    network then fits as well as with no KL at all, and every posterior width is about sqrt(0.05) = 0.22
    of the evidence-lower-bound width, so sigma_pred is smaller than the untempered posterior's (it still
    shrinks as 1/sqrt(N) with the training size N); the total error stays calibrated on held-out jets.
    ``likelihood`` is ``gauss`` (mean, SoftPlus
    width) or ``gmmK`` (K Gaussians); the default, three Gaussians, describes the long tails of the response
    that a single Gaussian cannot, so that the 68% intervals cover 68% of the jets. The posterior widths are
    softplus(``width_speed`` x rho): with Adam, whose steps do not depend on a gradient's size, the widths
    then learn ``width_speed`` times faster than the weights (1: TFP's own parametrisation). Adam with
    ``learning_rate``, gradients clipped to a global norm
    ``clip_norm``; the learning rate is halved after ``lr_patience`` epochs without a better validation
    negative log-likelihood, and training stops after ``patience`` such epochs (the best weights are kept).
    ``smear`` > 0 trains on pT,t(truth) smeared per jet by a Gaussian of width ``smear`` x pT,t(truth), drawn
    once per jet from ``seed``. ``ensemble`` > 0 trains that many deterministic networks instead (NLL loss,
    L2 = 1 / (2 prior_sigma N), dropout ``ensemble_dropout`` on the inner layers), each on its own subsample
    of ``train_size`` jets. The last ``test_fraction`` of the dataset is never used in training (``topcal
    evaluate`` uses it); ``validation_fraction`` of the training jets drive early stopping. ``recalibrate``
    fits one factor on the validation jets that stretches each jet's predictive distribution about its
    mean (so every sigma and the intervals) until their 68% intervals hold 68% of the labels
    (``model.json`` records it; reports give the raw figures beside the recalibrated ones).
    """

    architecture: str = "deepset"
    inputs: str = "jet-frame"
    target: str = "response"
    n_constituents: int | None = 64
    phi_hidden: list[int] = field(default_factory=lambda: [64, 64, 64])
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
    width_speed: float = 10.0
    seed: int = 1

    @property
    def components(self) -> int:
        return 1 if self.likelihood == "gauss" else int(self.likelihood[3:])

    def validate(self) -> None:
        for name, allowed in (("architecture", ARCHITECTURES), ("inputs", INPUT_KINDS), ("target", TARGETS),
                              ("likelihood", LIKELIHOODS)):
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
    paper = dict(architecture="dense", inputs="lab-4vectors", target="pt", n_constituents=None, kl_weight=1.0,
                 hidden=[100, 100, 50, 50], prior_sigma=0.1, learning_rate=1e-4, batch_size=100, patience=10,
                 lr_patience=None, likelihood="gauss", recalibrate=False, width_speed=1.0)
    return TrainConfig(**{**paper, **overrides})


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------


def load_card(path: str | Path | None, overrides: dict[str, Any] | None = None, cls=None, base=None):
    """A configuration (``cls``: :class:`RunConfig` by default, or :class:`ProcessConfig`,
    :class:`TrainConfig`) from the defaults (or ``base``, an instance of ``cls``), updated by a TOML card and
    then by ``overrides`` (a nested dict: only what the user really gave), validated. Unknown keys are errors
    that name the key."""
    cls = RunConfig if cls is None else cls
    data = (cls() if base is None else base).to_dict()
    if path is not None:
        path = Path(path)
        try:
            with path.open("rb") as fh:
                card = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{path}: configuration card not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not a text file (TOML cards are UTF-8)") from None
        except IsADirectoryError:
            raise ConfigError(f"{path}: is a directory, not a TOML card") from None
        _merge(data, card, "")
    if overrides:
        _merge(data, overrides, "")
    cfg = cls.from_dict(data)
    cfg.validate()
    return cfg


def _merge(base: dict, update: dict, prefix: str) -> None:
    for key, value in update.items():
        name = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"{name}: unknown configuration key")
        if isinstance(base[key], dict) and not isinstance(value, dict):
            raise ConfigError(f"{name}: {value!r} must be a table of settings")
        if isinstance(base[key], dict) and isinstance(value, dict) and key != "energy_fractions":
            _merge(base[key], value, name + ".")
        elif key == "energy_fractions" and isinstance(value, dict):
            base[key].update({str(k): v for k, v in value.items()})
        else:
            base[key] = value


def _build(cls, data: dict, prefix: str):
    """An instance of ``cls`` from ``data``; every value is checked against the field's type (a wrong type
    is a ConfigError naming the key and the value, never silently accepted or converted)."""
    kwargs = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    types = typing.get_type_hints(cls)
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"{prefix}{key}: unknown configuration key")
        hint = types[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}{key}: {value!r} must be a table of settings")
            value = _build(hint, value, f"{prefix}{key}.")
        else:
            value = _typed(f"{prefix}{key}", value, hint)
        kwargs[key] = value
    return cls(**kwargs)


def _typed(name: str, value, hint):
    """``value`` checked against the type ``hint`` (bool, int, float, str, lists, dicts, optionals)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        return _typed(name, value, options[0])
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: {value!r} must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}: {value!r} must be a whole number")
        return value
    if hint is float:
        if isinstance(value, str) and value.lower() in ("inf", "+inf", "infinity"):
            return INF
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}: {value!r} must be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: {value!r} must be a string")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{name}: {value!r} must be a list")
        return [_typed(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: {value!r} must be a table")
        return {str(k): _typed(f"{name}.{k}", v, args[1]) for k, v in value.items()}
    return value


def _json_default(obj):
    raise TypeError(f"not JSON serialisable: {obj!r}")


def _positive(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"{name}: {value} must be a positive number")


def _increasing(name: str, values: list[float]) -> None:
    if len(values) < 2 or any(not b > a for a, b in zip(values, values[1:])):
        raise ConfigError(f"{name}: {values} must be at least two increasing edges")


def _onoff(flag: bool) -> str:
    return "on" if flag else "off"
