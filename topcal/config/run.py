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
import math
from dataclasses import dataclass, field

from topcal.config.schema import INF, _increasing, _positive, _Serialisable
from topcal.errors import ConfigError
from topcal.seeds import check_seed

# ---------------------------------------------------------------------------------------------------
# generator
# ---------------------------------------------------------------------------------------------------

PROCESSES = ("ttbar", "qcd")


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


def _onoff(flag: bool) -> str:
    return "on" if flag else "off"
