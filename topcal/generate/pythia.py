"""PYTHIA 8 (pythia8mc) event generation and the conversion of its event record to DELPHES GenParticles.

The pythia8mc binding offers the event record only particle by particle, so reading it is one Python
loop per event (a list comprehension of a few method calls per particle); everything after it is columnar.
This cost is part of "PYTHIA alone" in ``benchmarks/bench_generate.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np
import vector

from topcal.config import GeneratorConfig
from topcal.errors import ConfigError
from topcal.generate.detector import Particles

MM_PER_C_TO_SECONDS = 1.0e-3 / 299792458.0  # PYTHIA tProd [mm/c] -> DELPHES T [s]

# order of the per-particle tuple read from PYTHIA
_RECORD = ("id", "statusHepMC", "mother1", "mother2", "daughter1", "daughter2", "px", "py", "pz", "e", "m",
           "xProd", "yProd", "zProd", "tProd", "charge", "isFinal")


def make_pythia(cfg: GeneratorConfig, seed: int):
    """An initialised ``pythia8mc.Pythia`` for this configuration and random seed (1..900000000)."""
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)  # no banner
    for line in cfg.pythia_settings() + ["Random:setSeed = on", f"Random:seed = {int(seed)}"]:
        if not pythia.readString(line):
            raise ValueError(f"PYTHIA rejected the setting {line!r}")
    if not pythia.init():
        raise ConfigError("generator: PYTHIA initialisation failed; check the generator settings (process, "
                          "energy, pT window)")
    return pythia


@dataclass
class GeneratedChunk:
    """PYTHIA output of a chunk: per-particle record (flat, sorted by event) and per-event info."""

    n_events: int
    counts: np.ndarray  # particles per event
    record: np.ndarray  # (n_particles, len(_RECORD)) float64
    info: dict[str, np.ndarray]  # per-event Event fields

    def column(self, name: str) -> np.ndarray:
        return self.record[:, _RECORD.index(name)]


def run_pythia(cfg: GeneratorConfig, seed: int, n_events: int, first_number: int = 0) -> GeneratedChunk:
    """Generate ``n_events`` events and read their full event records (PYTHIA's entry 0, the
    whole-event system, is skipped as in DELPHES)."""
    pythia = make_pythia(cfg, seed)
    info_obj = pythia.infoPython()
    records, counts = [], np.zeros(n_events, dtype=np.int64)
    info = {k: np.zeros(n_events) for k in _EVENT_INFO}
    done = 0
    failures = 0
    while done < n_events:
        if not pythia.next():
            failures += 1
            if failures > 100 + n_events:
                raise RuntimeError("PYTHIA failed to generate events (too many failures in next())")
            continue
        event = pythia.event
        rec = [
            (p.id(), p.statusHepMC(), p.mother1(), p.mother2(), p.daughter1(), p.daughter2(), p.px(), p.py(),
             p.pz(), p.e(), p.m(), p.xProd(), p.yProd(), p.zProd(), p.tProd(), p.charge(), p.isFinal())
            for p in event
        ][1:]
        records.extend(rec)
        counts[done] = len(rec)
        for key, getter in _EVENT_INFO.items():
            info[key][done] = getter(info_obj)
        info["Number"][done] = first_number + done
        done += 1
    final_info = pythia.infoPython()  # a fresh handle: the cross-section estimate is not live on the old one
    info["CrossSection"][:] = final_info.sigmaGen() * 1e9  # mb -> pb
    info["CrossSectionError"][:] = final_info.sigmaErr() * 1e9
    record = np.asarray(records, dtype=np.float64).reshape(-1, len(_RECORD))
    return GeneratedChunk(n_events=n_events, counts=counts, record=record, info=info)


_EVENT_INFO = {
    "Number": lambda i: 0,
    "ProcessID": lambda i: i.code(),
    "MPI": lambda i: i.nMPI(),
    "Weight": lambda i: i.weight(),
    "CrossSection": lambda i: 0.0,
    "CrossSectionError": lambda i: 0.0,
    "Scale": lambda i: i.QRen(),
    "AlphaQED": lambda i: i.alphaEM(),
    "AlphaQCD": lambda i: i.alphaS(),
    "ID1": lambda i: i.id1(),
    "ID2": lambda i: i.id2(),
    "X1": lambda i: i.x1(),
    "X2": lambda i: i.x2(),
    "ScalePDF": lambda i: i.QFac(),
    "PDF1": lambda i: i.pdf1(),
    "PDF2": lambda i: i.pdf2(),
    "ReadTime": lambda i: 0.0,  # timings are left at 0 so that the same seed gives identical files
    "ProcTime": lambda i: 0.0,
}
_EVENT_INTS = ("Number", "ProcessID", "MPI", "ID1", "ID2")


def gen_particles(chunk: GeneratedChunk) -> ak.Array:
    """The DELPHES ``Particle`` collection (GenParticle fields, 0-based mother/daughter indices, -1 for
    none; T in seconds, X/Y/Z in mm; PT = 0 gives Eta = Rapidity = +-999.9 as in DELPHES)."""
    c = chunk.column
    p4 = vector.array({"px": c("px"), "py": c("py"), "pz": c("pz"), "E": c("e")})
    pt = p4.pt
    pz = c("pz")
    e = c("e")
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(pt > 0, p4.eta, np.sign(pz) * 999.9)
        rapidity = np.where(e > np.abs(pz), p4.rapidity, np.sign(pz) * 999.9)
    ints = {
        "PID": c("id"),
        "Status": c("statusHepMC"),
        "IsPU": np.zeros(len(pt)),
        "M1": c("mother1") - 1,
        "M2": c("mother2") - 1,
        "D1": c("daughter1") - 1,
        "D2": c("daughter2") - 1,
        "Charge": c("charge"),
    }
    fields = {k: ak.from_numpy(v.astype(np.int32)) for k, v in ints.items()}
    floats = {
        "Mass": c("m"),
        "E": e,
        "Px": c("px"),
        "Py": c("py"),
        "Pz": pz,
        "P": p4.mag,
        "PT": pt,
        "Eta": eta,
        "Phi": p4.phi,
        "Rapidity": rapidity,
        "T": c("tProd") * MM_PER_C_TO_SECONDS,
        "X": c("xProd"),
        "Y": c("yProd"),
        "Z": c("zProd"),
    }
    fields.update({k: ak.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in floats.items()})
    return ak.unflatten(ak.zip(fields, depth_limit=1), chunk.counts)


def compact_truth(particles: ak.Array) -> ak.Array:
    """Keep tops and Ws (all copies) and the daughters of their last copies; renumber M1/M2/D1/D2.

    Indices of dropped partners become -1. Columnar over the whole chunk.
    """
    from topcal.process.truth import is_last_copy

    apid = abs(particles.PID)
    heavy = (apid == 6) | (apid == 24)
    last_heavy = heavy & is_last_copy(particles)
    keep = heavy
    for m in ("M1", "M2"):
        mother = particles[m]
        keep = keep | ak.where(mother >= 0, last_heavy[ak.where(mother >= 0, mother, 0)], False)
    new_index = ak.where(keep, _cumcount(keep) - 1, -1)  # old index -> new index, -1 if dropped
    kept = particles[keep]
    for m in ("M1", "M2", "D1", "D2"):
        idx = kept[m]
        kept = ak.with_field(kept, ak.values_astype(ak.where(idx >= 0, new_index[ak.where(idx >= 0, idx, 0)], -1),
                                                    np.int32), m)
    return kept


def _cumcount(mask: ak.Array) -> ak.Array:
    """Running count of True within each event (1-based at the True entries)."""
    flat = ak.to_numpy(ak.flatten(mask)).astype(np.int64)
    counts = ak.to_numpy(ak.num(mask))
    csum = np.cumsum(flat)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    before = np.concatenate([[0], csum])[starts]
    return ak.unflatten(csum - np.repeat(before, counts), counts)


def event_info(chunk: GeneratedChunk) -> ak.Array:
    """The DELPHES ``Event`` collection (one entry per event)."""
    fields = {}
    for key, values in chunk.info.items():
        dtype = np.int64 if key == "Number" else np.int32 if key in _EVENT_INTS else np.float32
        fields[key] = ak.from_numpy(values.astype(dtype))
    return ak.unflatten(ak.zip(fields, depth_limit=1), np.ones(chunk.n_events, dtype=np.int64))


def final_state(chunk: GeneratedChunk) -> Particles:
    """The final-state particles of the chunk, flat, for the detector simulation."""
    final = chunk.column("isFinal") > 0
    event = np.repeat(np.arange(chunk.n_events), chunk.counts)
    offsets = np.concatenate([[0], np.cumsum(chunk.counts)[:-1]])
    gen_index = np.arange(len(event)) - np.repeat(offsets, chunk.counts)
    c = chunk.column
    return Particles(
        event=event[final],
        gen_index=gen_index[final].astype(np.int32),
        pid=c("id")[final].astype(np.int32),
        charge=c("charge")[final],
        px=c("px")[final],
        py=c("py")[final],
        pz=c("pz")[final],
        e=c("e")[final],
        mass=c("m")[final],
    )
