"""The network inputs, described in one place: what the networks see of a fat jet, and how it is scaled.

A fat jet reaches the networks as :class:`Jets`: its padded constituents (E, px, py, pz in GeV divided by
the dataset's ``input_scale_gev``, pT-ordered, zero rows for padding) and its kinematics (pT, eta, phi,
mass in GeV and radians; the total constituent count). :func:`encode` turns them into the arrays a network
takes, for one of two input kinds (``TrainConfig.inputs``):

``"jet-frame"`` (topcal's default), two arrays:

* ``constituents`` ``(n, N, len(CONSTITUENT_FEATURES))``: per constituent, in the jet frame:
  ``pt_fraction`` pT,i / pT,j; ``log_pt_fraction``; ``log_e_fraction`` log(E_i / E_j);
  ``delta_eta``, ``delta_phi``: the constituent's position relative to the jet axis after rotating the
  pT-weighted principal axis onto the eta direction and flipping both axes so that the pT-weighted third
  moments are >= 0; ``delta_r`` (unrotated); ``log_pt`` log(pT,i / GeV); ``log_e`` log(E_i / GeV).
  Padding rows stay zero (and the network never computes them).
* ``jet`` ``(n, len(JET_FEATURES))``: ``pt`` pT,j / TeV, ``mass`` m_j / TeV, ``mass_over_pt``, ``eta``,
  ``n_constituents``, ``ptfrac_1``.. cumulative pT fractions of the 1, 2, 3, 5 and 10 leading constituents,
  ``girth`` (sum of pT,i Delta R_i / pT,j), ``m12``, ``m13``, ``m23``, ``m123`` (masses in TeV of pairs and the
  triplet of the three exclusive-kT subjets, pairs sorted in falling mass), ``tau21`` and ``tau32``
  (N-subjettiness ratios with the exclusive-kT axes, beta = 1).

What each constituent is (for jets that carry ``origin``, ``charge`` and ``lepton``: datasets and samples
processed with them): per constituent :data:`CONSTITUENT_TYPE_FEATURES` ``is_track``, ``is_photon``,
``is_neutral_hadron``, ``is_tower`` (its origin, one-hot: a track's momentum is measured to a few per cent,
a photon's energy to about 10%/sqrt(E), a neutral hadron's to about 50%/sqrt(E)), ``charge`` (e) and
``is_electron``, ``is_muon`` (an identified lepton; the hadron species is not measured); per jet
:data:`JET_TYPE_FEATURES`: the pT fractions (of pT,j) carried by tracks, photons and neutral hadrons among the
stored constituents. They follow the kinematic features in both arrays. A model trained on jets without
them uses the kinematic features alone (:func:`feature_names`), and the features a model uses are stored in
``model.json``: such a model predicts any jets, while a model that reads the types refuses jets without them.

``"lab-4vectors"`` (the paper's): one array ``flat`` ``(n, 4 N)``, the constituents' (E, px, py, pz) / 1000
as the dataset stores them, flattened, unscaled.

The jet-frame arrays are standardised (:class:`Standardiser`) with the mean and width of each feature over
the training jets, stored in ``model.json``; padding rows are excluded from the constituent statistics.
Everything here is columnar numpy (fastjet for the subjets), the same for training and prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from topcal.errors import InputFileError

INPUT_KINDS = ("jet-frame", "lab-4vectors")
CONSTITUENT_FEATURES = ("pt_fraction", "log_pt_fraction", "log_e_fraction", "delta_eta", "delta_phi", "delta_r",
                        "log_pt", "log_e")
LEADING_FRACTIONS = (1, 2, 3, 5, 10)
JET_FEATURES = ("pt", "mass", "mass_over_pt", "eta", "n_constituents",
                *(f"ptfrac_{k}" for k in LEADING_FRACTIONS), "girth", "m12", "m13", "m23", "m123", "tau21", "tau32")
CONSTITUENT_TYPE_FEATURES = ("is_track", "is_photon", "is_neutral_hadron", "is_tower", "charge", "is_electron",
                             "is_muon")
JET_TYPE_FEATURES = ("charged_pt_fraction", "photon_pt_fraction", "neutral_hadron_pt_fraction")
TYPE_COLUMN = "constituent_origin"  # the dataset column without which jets carry no types
SUBJET_RADIUS = 1.2
TINY = 1e-12
ENCODE_CHUNK_JETS = 8192  # jets encoded at a time (see raw_inputs)
ALIGNMENT = 64  # bytes: the start of the arrays the training loop takes without a copy (aligned_empty)


@dataclass
class Jets:
    """Fat jets as the networks take them (see the module docstring); all arrays have ``n`` rows.

    ``constituents``: ``(n, N, 4)`` float32, (E, px, py, pz) / ``input_scale_gev``; ``pt``, ``mass`` in GeV,
    ``eta``, ``phi`` (radians), ``n_constituents`` (all constituents, not only the N stored).
    ``origin``, ``charge``, ``lepton``: optional ``(n, N)`` int8 arrays in the constituents' order and padding
    (what the detector says each constituent is, :data:`topcal.process.fatjets.CONSTITUENT_INFO`); None
    for jets from datasets written without them. The jet-frame inputs read them (module docstring).
    ``subjets``: optional ``(n, N)`` int8, the exclusive-kT subjet (0, 1, 2) of each stored constituent, -1
    for none: the jet-frame inputs then take the three subjets as the sums of these fixed members'
    four-momenta instead of clustering (a rescaled copy of a clustered jet,
    :mod:`topcal.predict.detector_systematics`); None: clustered with fastjet.
    """

    constituents: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    mass: np.ndarray
    n_constituents: np.ndarray
    input_scale_gev: float = 1000.0
    origin: np.ndarray | None = None
    charge: np.ndarray | None = None
    lepton: np.ndarray | None = None
    subjets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.pt)

    def _info(self, pick) -> dict:
        return {k: None if v is None else pick(v) for k, v in
                (("origin", self.origin), ("charge", self.charge), ("lepton", self.lepton),
                 ("subjets", self.subjets))}

    def take(self, idx) -> Jets:
        """The jets at ``idx`` (indices, a slice or a mask)."""
        return Jets(self.constituents[idx], self.pt[idx], self.eta[idx], self.phi[idx], self.mass[idx],
                    self.n_constituents[idx], self.input_scale_gev, **self._info(lambda v: v[idx]))

    def leading(self, n_constituents: int) -> Jets:
        """The same jets with only their ``n_constituents`` leading constituents stored."""
        return Jets(self.constituents[:, :n_constituents], self.pt, self.eta, self.phi, self.mass,
                    self.n_constituents, self.input_scale_gev, **self._info(lambda v: v[:, :n_constituents]))

    def scaled(self, factor: float) -> Jets:
        """Every constituent's four-momentum, and so the jet's pT and mass, multiplied by ``factor`` (input
        smearing, docs/design.md section 3)."""
        return Jets(self.constituents * np.float32(factor), self.pt * factor, self.eta, self.phi,
                    self.mass * factor, self.n_constituents, self.input_scale_gev, **self._info(lambda v: v))

    @property
    def n_max(self) -> int:
        return int(self.constituents.shape[1])

    @property
    def typed(self) -> bool:
        """Whether the jets say what each constituent is (``origin``, ``charge`` and ``lepton`` all given)."""
        return self.origin is not None and self.charge is not None and self.lepton is not None


def feature_names(typed: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The jet-frame input features (constituent, jet) with or without what each constituent is."""
    if typed:
        return CONSTITUENT_FEATURES + CONSTITUENT_TYPE_FEATURES, JET_FEATURES + JET_TYPE_FEATURES
    return CONSTITUENT_FEATURES, JET_FEATURES


def _require_types(jets: Jets) -> None:
    if not jets.typed:
        raise InputFileError(f"{TYPE_COLUMN}: the model reads what each constituent is (origin, charge, lepton "
                             f"id), but these jets come without it (processed by an older topcal?); process "
                             f"the sample again, or use a model trained without it")


def constituent_types(jets: Jets) -> np.ndarray:
    """``(n, N, len(CONSTITUENT_TYPE_FEATURES))`` float32: origin one-hot, charge (e), identified electron
    and muon; zero for padding (origin 0)."""
    from topcal.process.fatjets import LEPTON_PIDS, ORIGINS

    _require_types(jets)
    origin, lepton = jets.origin[..., None], np.abs(jets.lepton)[..., None]
    codes = np.array([ORIGINS[name] for name in ("EFlowTrack", "EFlowPhoton", "EFlowNeutralHadron", "Tower")])
    real = origin > 0
    return np.concatenate([origin == codes, np.where(real, jets.charge[..., None], 0),
                           real & (lepton == np.array(LEPTON_PIDS))], axis=-1).astype(np.float32)


def type_fractions(jets: Jets, kin: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """``(n, len(JET_TYPE_FEATURES))``: the pT fractions (sum of pT,i / pT,j) of the stored constituents that
    are tracks, photons and neutral hadrons."""
    from topcal.process.fatjets import ORIGINS

    _require_types(jets)
    kin = kin or constituent_kinematics(jets)
    pt = np.where(kin["mask"], kin["pt"], 0.0)
    return np.stack([np.sum(pt * (jets.origin == ORIGINS[name]), axis=1) / jets.pt
                     for name in ("EFlowTrack", "EFlowPhoton", "EFlowNeutralHadron")], axis=-1)


def aligned_empty(shape, dtype=np.float32) -> np.ndarray:
    """An uninitialised C-contiguous array whose data start on an ``ALIGNMENT``-byte boundary (numpy's own
    are 16-byte aligned), as TensorFlow's CPU tensors must: the training loop then gathers its batches from
    the array itself, not from a copy (:func:`topcal.train.loop.shared_tensor`)."""
    shape = tuple(int(n) for n in np.atleast_1d(shape))
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buffer = np.empty(nbytes + ALIGNMENT, np.uint8)
    start = -buffer.ctypes.data % ALIGNMENT
    return buffer[start:start + nbytes].view(dtype).reshape(shape)


def _wrap(dphi: np.ndarray) -> np.ndarray:
    return (dphi + np.pi) % (2 * np.pi) - np.pi


def constituent_kinematics(jets: Jets) -> dict[str, np.ndarray]:
    """Per constituent (``(n, N)``): ``pt``, ``e`` (GeV), ``eta``, ``phi``, and the ``mask`` of real rows."""
    c = jets.constituents.astype(np.float64) * jets.input_scale_gev
    e, px, py, pz = (c[..., k] for k in range(4))
    pt = np.hypot(px, py)
    mask = (e > 0) & (pt > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(mask, np.arcsinh(np.where(mask, pz / np.where(mask, pt, 1.0), 0.0)), 0.0)
    phi = np.where(mask, np.arctan2(py, px), 0.0)
    return {"pt": pt, "e": e, "eta": eta, "phi": phi, "mask": mask}


def jet_frame_constituents(jets: Jets, kin: dict[str, np.ndarray] | None = None, typed: bool = False) -> np.ndarray:
    """``(n, N, len(feature_names(typed)[0]))`` float32 jet-frame features (module docstring), zero for
    padding; with ``typed`` the constituent types follow the kinematic features."""
    kin = kin or constituent_kinematics(jets)
    mask = kin["mask"]
    pt_j = jets.pt[:, None]
    e_j = np.sqrt((jets.pt * np.cosh(jets.eta)) ** 2 + jets.mass**2)[:, None]
    z = np.where(mask, kin["pt"] / pt_j, 0.0)
    deta = np.where(mask, kin["eta"] - jets.eta[:, None], 0.0)
    dphi = np.where(mask, _wrap(kin["phi"] - jets.phi[:, None]), 0.0)
    # principal axis of the pT-weighted (deta, dphi) distribution onto the eta direction
    cxx, cyy, cxy = (np.sum(z * a * b, axis=1) for a, b in ((deta, deta), (dphi, dphi), (deta, dphi)))
    angle = 0.5 * np.arctan2(2 * cxy, cxx - cyy)
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    u = cos * deta + sin * dphi
    v = -sin * deta + cos * dphi
    u = u * np.where(np.sum(z * u**3, axis=1) < 0, -1.0, 1.0)[:, None]
    v = v * np.where(np.sum(z * v**3, axis=1) < 0, -1.0, 1.0)[:, None]
    with np.errstate(divide="ignore"):
        features = {
            "pt_fraction": z,
            "log_pt_fraction": np.log(np.where(mask, z, 1.0)),
            "log_e_fraction": np.log(np.where(mask, kin["e"] / e_j, 1.0)),
            "delta_eta": u,
            "delta_phi": v,
            "delta_r": np.hypot(deta, dphi),
            "log_pt": np.log(np.where(mask, kin["pt"], 1.0)),
            "log_e": np.log(np.where(mask, kin["e"], 1.0)),
        }
    out = np.where(mask[..., None], np.stack([features[name] for name in CONSTITUENT_FEATURES], axis=-1), 0.0)
    if typed:
        out = np.concatenate([out, np.where(mask[..., None], constituent_types(jets), 0.0)], axis=-1)
    return out.astype(np.float32)


def _clustered_subjets(c: np.ndarray, mask: np.ndarray, members: np.ndarray | None, ok: np.ndarray) \
        -> dict[str, np.ndarray]:
    """The three exclusive-kT subjets' (E, px, py, pz) ``(n, 3)`` of the real rows (``mask``) of ``c``
    (``(n, N, 4)`` in GeV) with fastjet; with ``members`` (all jets' ``(n_all, N)``, -1), each real
    constituent's subjet written into its rows ``ok``."""
    import warnings

    import awkward as ak
    import fastjet

    from topcal.console import fastjet_banner_once

    flat = {name: c[..., k][mask] for k, name in enumerate(("E", "px", "py", "pz"))}
    particles = ak.unflatten(ak.zip(flat), mask.sum(axis=1))
    with warnings.catch_warnings(), fastjet_banner_once():  # fastjet warns for every algorithm, kT included
        warnings.filterwarnings("ignore", message="dcut and exclusive jets")
        sequence = fastjet.ClusterSequence(particles, fastjet.JetDefinition(fastjet.kt_algorithm, SUBJET_RADIUS))
        sub = sequence.exclusive_jets(n_jets=3)
        if members is not None:
            index = sequence.exclusive_jets_constituent_index(njets=3)  # (jet, subjet, member) -> real row
    if members is not None:
        sizes = ak.to_numpy(ak.flatten(ak.num(index, axis=2)))  # members per (jet, subjet)
        jet = np.repeat(np.repeat(np.arange(len(c)), 3), sizes)
        subjet = np.repeat(np.tile(np.arange(3, dtype=np.int8), len(c)), sizes)
        starts = np.concatenate([[0], np.cumsum(mask.sum(axis=1))[:-1]])
        columns = np.nonzero(mask)[1][starts[jet] + ak.to_numpy(ak.flatten(index, axis=None))]
        mine = np.full(mask.shape, -1, np.int8)
        mine[jet, columns] = subjet
        members[ok] = mine
    return {name: ak.to_numpy(sub[name]).reshape(-1, 3) for name in ("E", "px", "py", "pz")}


def _subjets(jets: Jets, kin: dict[str, np.ndarray], keep_members: bool = False) -> dict[str, np.ndarray]:
    """Exclusive-kT subjets (3 per jet, R = ``SUBJET_RADIUS``) of the stored constituents with fastjet, or,
    for jets with fixed ``subjets`` members, the sums of their members' four-momenta: pair and triplet
    masses (TeV) and the N-subjettiness tau1, tau2, tau3 (beta = 1). Jets with fewer than three
    constituents get zeros. ``keep_members``: also ``members``, the clustering's subjet of each stored
    constituent (the ``subjets`` field of :class:`Jets`)."""
    n = len(jets)
    out = {name: np.zeros(n) for name in ("m12", "m13", "m23", "m123", "tau1", "tau2", "tau3")}
    if keep_members:
        out["members"] = np.full(kin["mask"].shape, -1, np.int8)
    counts = kin["mask"].sum(axis=1)
    ok = counts >= 3
    if not ok.any():
        return out
    c = jets.constituents[ok].astype(np.float64) * jets.input_scale_gev
    mask = kin["mask"][ok]
    if jets.subjets is not None:  # fixed members: each subjet the sum of its members
        members = jets.subjets[ok]
        p = {name: np.stack([np.sum(c[..., k] * (members == s), axis=1) for s in range(3)], axis=1)
             for k, name in enumerate(("E", "px", "py", "pz"))}
    else:
        p = _clustered_subjets(c, mask, out.get("members"), ok)

    def mass(idx):
        e, x, y, zz = (sum(p[name][:, i] for i in idx) for name in ("E", "px", "py", "pz"))
        return np.sqrt(np.maximum(e * e - x * x - y * y - zz * zz, 0.0)) / 1000.0

    pairs = np.sort(np.stack([mass((0, 1)), mass((0, 2)), mass((1, 2))], axis=1), axis=1)[:, ::-1]
    out["m12"][ok], out["m13"][ok], out["m23"][ok] = pairs[:, 0], pairs[:, 1], pairs[:, 2]
    out["m123"][ok] = mass((0, 1, 2))
    # N-subjettiness: distances of every constituent to the subjet axes
    sub_pt = np.hypot(p["px"], p["py"])
    sub_eta = np.arcsinh(p["pz"] / np.maximum(sub_pt, TINY))
    sub_phi = np.arctan2(p["py"], p["px"])
    eta, phi, pt = kin["eta"][ok], kin["phi"][ok], np.where(mask, kin["pt"][ok], 0.0)
    dr = np.hypot(eta[:, :, None] - sub_eta[:, None, :], _wrap(phi[:, :, None] - sub_phi[:, None, :]))
    norm = np.maximum(pt.sum(axis=1), TINY) * SUBJET_RADIUS
    # tau_N with the N hardest exclusive axes: the kT exclusive jets come in no pT order, so order them
    order = np.argsort(-sub_pt, axis=1)
    dr = np.take_along_axis(dr, order[:, None, :], axis=2)
    for k in (1, 2, 3):
        out[f"tau{k}"][ok] = np.sum(pt * dr[:, :, :k].min(axis=2), axis=1) / norm
    return out


def jet_features(jets: Jets, kin: dict[str, np.ndarray] | None = None, typed: bool | None = None,
                 sub: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """``(n, len(feature_names(typed)[1]))`` float32 jet-level features (module docstring); ``typed``: with the
    pT fractions of the constituent types (None: when the jets carry them); ``sub``: the jets' subjet
    quantities (:func:`_subjets`) when already computed."""
    typed = jets.typed if typed is None else typed
    kin = kin or constituent_kinematics(jets)
    z = np.where(kin["mask"], kin["pt"], 0.0) / jets.pt[:, None]
    cumulative = np.cumsum(z, axis=1)
    deta = kin["eta"] - jets.eta[:, None]
    dphi = _wrap(kin["phi"] - jets.phi[:, None])
    sub = sub or _subjets(jets, kin)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau21 = np.where(sub["tau1"] > 0, sub["tau2"] / np.where(sub["tau1"] > 0, sub["tau1"], 1.0), 0.0)
        tau32 = np.where(sub["tau2"] > 0, sub["tau3"] / np.where(sub["tau2"] > 0, sub["tau2"], 1.0), 0.0)
    features = {
        "pt": jets.pt / 1000.0,
        "mass": jets.mass / 1000.0,
        "mass_over_pt": jets.mass / jets.pt,
        "eta": jets.eta,
        "n_constituents": np.asarray(jets.n_constituents, dtype=np.float64),
        **{f"ptfrac_{k}": cumulative[:, min(k, jets.n_max) - 1] for k in LEADING_FRACTIONS},
        "girth": np.sum(z * np.hypot(deta, dphi) * kin["mask"], axis=1),
        "m12": sub["m12"], "m13": sub["m13"], "m23": sub["m23"], "m123": sub["m123"],
        "tau21": tau21, "tau32": tau32,
    }
    out = np.stack([features[name] for name in JET_FEATURES], axis=-1)
    if typed:
        out = np.concatenate([out, type_fractions(jets, kin)], axis=-1)
    return out.astype(np.float32)


def raw_inputs(jets: Jets, kind: str, n_constituents: int | None = None, typed: bool | None = None,
               keep_subjets: bool = False) -> dict[str, np.ndarray]:
    """The unstandardised network arrays for ``kind`` (module docstring), from the leading
    ``n_constituents`` constituents (all stored ones when None); jet-frame arrays with what each constituent
    is when ``typed`` (None: when the jets carry it). The jet-frame arrays are computed
    ``ENCODE_CHUNK_JETS`` jets at a time into the output: their float64 intermediates take about 40 kB a
    jet (at 64 constituents), so that encoding 200k jets at once peaked at 8.6 GB (a 1M-jet training of the
    default network would have needed about 40 GB). The arrays are new and aligned (:func:`aligned_empty`),
    or, for ``"lab-4vectors"`` of all stored constituents, a view of ``jets.constituents``. ``keep_subjets``
    (jet-frame inputs): also ``subjets``, ``(n, n_constituents)`` int8, the exclusive-kT subjet (0, 1, 2) of
    each constituent used, -1 for none (the :class:`Jets` field that fixes them for a rescaled copy)."""
    if kind not in INPUT_KINDS:
        raise ValueError(f"inputs: {kind!r} is not one of {INPUT_KINDS}")
    if n_constituents is not None and n_constituents < jets.n_max:
        jets = jets.leading(n_constituents)
    if kind == "lab-4vectors":
        c = jets.constituents
        if c.flags.c_contiguous and c.dtype == np.float32:
            return {"flat": c.reshape(len(jets), -1)}  # a view: no copy
        flat = aligned_empty((len(jets), c.shape[1] * c.shape[2]))
        flat.reshape(c.shape)[...] = c
        return {"flat": flat}
    typed = jets.typed if typed is None else typed
    if typed:
        _require_types(jets)
    out: dict[str, np.ndarray] = {}
    for start in range(0, max(len(jets), 1), ENCODE_CHUNK_JETS):  # a jet's features are its own: chunks change nothing
        part = _jet_frame_inputs(jets.take(slice(start, start + ENCODE_CHUNK_JETS)), typed, keep_subjets)
        for name, array in part.items():
            if name not in out:
                out[name] = aligned_empty((len(jets), *array.shape[1:]), array.dtype)
            out[name][start:start + len(array)] = array
    return out


def _jet_frame_inputs(jets: Jets, typed: bool, keep_subjets: bool = False) -> dict[str, np.ndarray]:
    kin = constituent_kinematics(jets)
    sub = _subjets(jets, kin, keep_subjets)
    out = {"constituents": jet_frame_constituents(jets, kin, typed), "jet": jet_features(jets, kin, typed, sub),
           "mask": kin["mask"].astype(np.float32)}
    if keep_subjets:
        out["subjets"] = sub["members"]
    return out


@dataclass
class Standardiser:
    """Per-feature mean and width of the jet-frame arrays, from the training jets; stored in ``model.json``.
    Both :meth:`fit` and :meth:`apply` go through the jets ``ENCODE_CHUNK_JETS`` at a time, so that they
    need no full-size float64 or float32 copy of the arrays."""

    constituent_mean: list[float]
    constituent_scale: list[float]
    jet_mean: list[float]
    jet_scale: list[float]
    typed: bool = False  # the features include what each constituent is (feature_names)

    @classmethod
    def fit(cls, arrays: dict[str, np.ndarray]) -> Standardiser | None:
        """Mean and standard deviation (float64, two passes) of every feature over the real constituents
        and over the jets; a width below ``TINY`` becomes 1."""
        if "constituents" not in arrays:
            return None
        c_mean, c_width = _moments(arrays["constituents"], arrays["mask"])
        j_mean, j_width = _moments(arrays["jet"])
        typed = arrays["constituents"].shape[-1] == len(feature_names(True)[0])
        return cls(c_mean.tolist(), c_width.tolist(), j_mean.tolist(), j_width.tolist(), typed)

    def apply(self, arrays: dict[str, np.ndarray], in_place: bool = False) -> dict[str, np.ndarray]:
        """Standardised arrays (padding rows stay zero): copies, or with ``in_place`` the given arrays
        overwritten (for arrays that nothing else holds: no second copy of them); arrays of other input
        kinds pass unchanged."""
        if "constituents" not in arrays:
            return arrays
        out = arrays if in_place else {"constituents": arrays["constituents"].astype(np.float32),
                                       "jet": arrays["jet"].astype(np.float32), "mask": arrays["mask"]}
        cons, jet, mask = out["constituents"], out["jet"], out["mask"]
        c_mean, c_scale = np.float32(self.constituent_mean), np.float32(self.constituent_scale)
        j_mean, j_scale = np.float32(self.jet_mean), np.float32(self.jet_scale)
        for a in range(0, len(cons), ENCODE_CHUNK_JETS):
            c, j = cons[a:a + ENCODE_CHUNK_JETS], jet[a:a + ENCODE_CHUNK_JETS]
            np.subtract(c, c_mean, out=c)
            np.divide(c, c_scale, out=c)
            np.multiply(c, mask[a:a + ENCODE_CHUNK_JETS, :, None], out=c)
            np.subtract(j, j_mean, out=j)
            np.divide(j, j_scale, out=j)
        return out

    def to_dict(self) -> dict:
        constituent_names, jet_names = feature_names(self.typed)
        return {"constituent_features": list(constituent_names), "constituent_mean": self.constituent_mean,
                "constituent_scale": self.constituent_scale, "jet_features": list(jet_names),
                "jet_mean": self.jet_mean, "jet_scale": self.jet_scale}

    @classmethod
    def from_dict(cls, data: dict | None) -> Standardiser | None:
        if not data:
            return None
        names = (data.get("constituent_features"), data.get("jet_features"))
        for typed in (True, False):
            if names == tuple(list(n) for n in feature_names(typed)):
                return cls(data["constituent_mean"], data["constituent_scale"], data["jet_mean"], data["jet_scale"],
                           typed)
        raise ValueError("the model's input features differ from this topcal version's")


def _moments(array: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (last axis) mean and width (standard deviation; 1 where below ``TINY``) over the rows of
    ``array`` (those where ``mask > 0``, when given), in float64, ``ENCODE_CHUNK_JETS`` jets at a time
    and in two passes (a sum, then the sum of squared deviations)."""

    def blocks():
        for a in range(0, len(array), ENCODE_CHUNK_JETS):
            block = array[a:a + ENCODE_CHUNK_JETS]
            yield (block if mask is None else block[mask[a:a + ENCODE_CHUNK_JETS] > 0]).astype(np.float64)

    count, total = 0, 0.0
    for b in blocks():
        count, total = count + len(b), total + b.sum(axis=0)
    mean = total / count
    squares = sum(((b - mean) ** 2).sum(axis=0) for b in blocks())
    std = np.sqrt(squares / count)
    return mean, np.where(std > TINY, std, 1.0)


def encode(jets: Jets, kind: str, n_constituents: int | None, standardiser: Standardiser | None,
           keep_subjets: bool = False) -> dict[str, np.ndarray]:
    """The standardised network arrays of ``jets`` (what training and prediction both feed the network);
    ``keep_subjets``: with the jet-frame ``subjets`` members of :func:`raw_inputs`, not standardised."""
    arrays = raw_inputs(jets, kind, n_constituents, standardiser.typed if standardiser is not None else None,
                        keep_subjets)
    return standardiser.apply(arrays, in_place=True) if standardiser is not None else arrays
