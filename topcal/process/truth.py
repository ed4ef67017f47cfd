"""Truth tops and jet-top matching from the DELPHES ``Particle`` collection.

A fat jet is matched to the last copy of the top quark before its decay (``|PID| = 6`` whose first daughter
is not a top) when that top lies within Delta R < R of the jet axis; optionally its b quark and the two
W-decay quarks must lie inside too. The label pT,t(truth) (``ProcessConfig.top_label``) is the pT of
that last copy (``"last-copy"``), of the same top as the hard process produced it (``"hard-process"``,
the first copy), or of the top after the recoil from initial-state radiation and before its own
final-state radiation (``"before-fsr"``: the last copy with its own emissions added back,
:func:`with_own_fsr`). Without ISR the last two agree (up to recoils of a few GeV); with ISR the first
copy misses the recoil that every later copy carries (tens of GeV). Columnar over whole chunks.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import vector

vector.register_awkward()


def is_last_copy(particles: ak.Array) -> ak.Array:
    """True for particles that decay into something else: they have a first daughter of a different |PID|."""
    apid = abs(particles.PID)
    d1 = particles.D1
    return (d1 >= 0) & (apid[ak.where(d1 >= 0, d1, 0)] != apid)


def last_copies(particles: ak.Array, abs_pid: int) -> ak.Array:
    """Particles with ``|PID| == abs_pid`` whose first daughter has a different |PID| (the last copy)."""
    return particles[(abs(particles.PID) == abs_pid) & is_last_copy(particles)]


def _daughter(particles: ak.Array, parents: ak.Array, abs_pid: int) -> ak.Array:
    """For each parent, whichever of its daughters D1, D2 has ``|PID| == abs_pid`` (D1 if neither has)."""
    d1, d2 = parents.D1, parents.D2
    first = particles[ak.where(d1 >= 0, d1, 0)]
    second = particles[ak.where(d2 >= 0, d2, 0)]
    return ak.where(abs(first.PID) == abs_pid, first, ak.where(abs(second.PID) == abs_pid, second, first))


def _walk(particles: ak.Array, start: ak.Array, link: str, abs_pid: int, steps: int = 20) -> ak.Array:
    """From each particle in ``start``, follow ``link`` (``"D1"`` down, ``"M1"`` up) while the next particle
    still has ``|PID| == abs_pid``; a shower changes a heavy particle's copy only a few times."""
    current = start
    for _ in range(steps):
        idx = current[link]
        nxt = particles[ak.where(idx >= 0, idx, 0)]
        same = (abs(nxt.PID) == abs_pid) & (idx >= 0)
        if not ak.any(same):
            break
        current = ak.where(same, nxt, current)
    return current


def _p4(p: ak.Array) -> ak.Array:
    return ak.zip({"pt": p.PT, "eta": p.Eta, "phi": p.Phi, "mass": p.Mass}, with_name="Momentum4D")


TRUTH_FIELDS = ("PID", "Status", "M1", "D1", "D2", "PT", "Eta", "Phi", "Mass")

FSR_STATUS = 51  # PYTHIA 8: "outgoing produced by a final-state branching"


def with_own_fsr(particles: ak.Array, last: ak.Array, abs_pid: int, steps: int = 40) -> ak.Array:
    """The four-momentum (GeV, Momentum4D) of each last copy with its own final-state radiation added back.

    Walks from the last copy up the chain of copies (``M1``); wherever a copy was produced by a final-state
    branching of the previous one (PYTHIA status 51), the momentum the previous copy had and this one lost
    (the emitted gluon, and the small recoil given to the dipole partner) is added. Recoil shifts from
    initial-state radiation (status 44) and from other particles' emissions (52) are kept: the result is
    the top after initial-state recoil, before its own final-state radiation. Without status 51 steps it is
    the last copy."""
    p4 = _p4(last)
    total = {"px": p4.px, "py": p4.py, "pz": p4.pz, "E": p4.E}
    current = last
    for _ in range(steps):
        idx = current.M1
        mother = particles[ak.where(idx >= 0, idx, 0)]
        up = (idx >= 0) & (abs(mother.PID) == abs_pid)
        if not ak.any(up):
            break
        emitted = up & (current.Status == FSR_STATUS)
        before, after = _p4(mother), _p4(current)
        total = {k: ak.where(emitted, v + getattr(before, k) - getattr(after, k), v) for k, v in total.items()}
        current = ak.where(up, mother, current)
    return ak.zip(total, with_name="Momentum4D")


def only_fields(collection: ak.Array, fields: tuple[str, ...]) -> ak.Array:
    """The collection with just ``fields``: whole-record operations (``ak.where``) then read nothing else,
    so files whose collections also carry unreadable leaves (older DELPHES's ``Particle.Constituents``)
    or extra ones work."""
    return ak.zip({f: collection[f] for f in fields})


def truth_tops(particles: ak.Array) -> ak.Array:
    """Last-copy tops with their first (hard-process) copy, the top before its own final-state radiation
    (:func:`with_own_fsr`), their b and W (last copies) and the W's two daughter quarks, as Momentum4D
    records ``top``, ``hard_top``, ``prefsr_top``, ``b``, ``w``, ``q1``, ``q2``."""
    particles = only_fields(particles, TRUTH_FIELDS)
    tops = last_copies(particles, 6)
    hard = _walk(particles, tops, "M1", 6)
    before_fsr = with_own_fsr(particles, tops, 6)
    b = _daughter(particles, tops, 5)
    w = _walk(particles, _daughter(particles, tops, 24), "D1", 24)
    q1 = particles[ak.where(w.D1 >= 0, w.D1, 0)]
    q2 = particles[ak.where(w.D2 >= 0, w.D2, 0)]
    return ak.zip(
        {"top": _p4(tops), "hard_top": _p4(hard), "prefsr_top": before_fsr, "b": _p4(b), "w": _p4(w),
         "q1": _p4(q1), "q2": _p4(q2)},
        depth_limit=2,
    )


def label_object(top_label: str) -> str:
    """The ``truth_tops`` field whose pT is the label for ``ProcessConfig.top_label``."""
    return {"last-copy": "top", "hard-process": "hard_top", "before-fsr": "prefsr_top"}[top_label]


def matched_label_pt(tops: ak.Array, top_index: ak.Array, top_label: str) -> ak.Array:
    """pT,t(truth) in GeV of each jet's matched top (``top_label``), NaN for unmatched jets;
    ``n_events * var(jets)`` like ``top_index``."""
    label = ak.pad_none(tops[label_object(top_label)].pt, 1, axis=1)
    values = ak.fill_none(label[ak.where(top_index >= 0, top_index, 0)], np.nan)
    return ak.where(top_index >= 0, values, np.nan)


def match_tops(jets: ak.Array, tops: ak.Array, radius: float, require_decay_products: bool = False):
    """For each jet, the index of the closest truth top within Delta R < radius (or -1).

    With ``require_decay_products`` the top's b and both W-decay quarks must also be within ``radius``.
    Returns ``(index, matched)``, both ``n_events * var(jets)``.
    """
    pairs = ak.cartesian({"jet": jets, "t": tops}, axis=1, nested=True)
    dr = pairs.jet.deltaR(pairs.t.top)
    inside = dr < radius
    if require_decay_products:
        for part in ("b", "q1", "q2"):
            inside = inside & (pairs.jet.deltaR(pairs.t[part]) < radius)
    dr = ak.where(inside, dr, np.inf)
    best = ak.argmin(dr, axis=2)
    best_dr = ak.fill_none(ak.min(dr, axis=2), np.inf)
    matched = best_dr < radius
    index = ak.where(matched, ak.fill_none(best, -1), -1)
    return index, matched
