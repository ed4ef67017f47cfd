"""Network inputs and labels from a per-jet dataset, read part by part into one preallocated array.

The dataset's last ``test_fraction`` of jets is the test set (``topcal evaluate``); training draws its jets,
and its validation jets, from the rest. Label smearing draws one Gaussian number per jet from the seed and
the jet's row in the dataset, so a jet keeps its smeared label across runs and training sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from topcal.errors import InputFileError
from topcal.io.dataset import CONSTITUENTS, Dataset
from topcal.train.inputs import Jets, aligned_empty

LABEL = "pt_truth"
JET_COLUMNS = ("pt", "eta", "phi", "mass", "n_constituents")
INFO_COLUMNS = {"origin": "constituent_origin", "charge": "constituent_charge", "lepton": "constituent_lepton"}
SMEAR_STREAM = 0x5EA2


@dataclass
class JetArrays:
    """Jets as the networks take them (:class:`topcal.train.inputs.Jets`), their label ``pt_truth`` (GeV)
    and their ``rows`` in the dataset."""

    jets: Jets
    pt_truth: np.ndarray
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def x(self) -> np.ndarray:
        """The padded constituents, (n, N, 4) float32, (E, px, py, pz) / the dataset's input scale."""
        return self.jets.constituents

    @property
    def pt_jet(self) -> np.ndarray:
        return self.jets.pt

    def subset(self, idx: np.ndarray) -> JetArrays:
        return JetArrays(self.jets.take(idx), self.pt_truth[idx], self.rows[idx])


def split_rows(n_jets: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers of the trainable part (first) and the test part (last ``test_fraction``)."""
    n_test = int(round(n_jets * test_fraction))
    return np.arange(n_jets - n_test), np.arange(n_jets - n_test, n_jets)


def load_rows(ds: Dataset, rows: np.ndarray, extra: tuple[str, ...] = (), x_out=None,
              need_label: bool = True) -> tuple[JetArrays, dict]:
    """Read the given dataset rows (sorted) into one preallocated array, streaming the parts.

    Returns the arrays and a dict of the ``extra`` columns. ``x_out``, if given, receives the constituents
    instead of a new numpy array (anything with ``x_out[a:b] = block``; ``JetArrays.x`` is then ``x_out``).
    Non-finite inputs or labels are errors that say which column and how many jets (labels only when
    ``need_label``: background jets, for the top tagger, have none).
    """
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    if len(rows) == 0:
        raise InputFileError(f"{ds.path}: no jets to read (dataset has {ds.n_jets})")
    n_max = ds.config.max_constituents
    x = aligned_empty((len(rows), n_max, 4)) if x_out is None else x_out  # aligned: no copy in training
    present = set(ds.columns)
    wanted = [c for c in dict.fromkeys((LABEL, *JET_COLUMNS, *extra)) if c in present or c in (LABEL, "pt")]
    columns = {name: np.empty(len(rows)) for name in wanted}
    # what each constituent is (Jets.origin, charge, lepton), when the dataset has all three columns
    info = {field: np.empty((len(rows), n_max), np.int8) for field, name in INFO_COLUMNS.items()} \
        if present.issuperset(INFO_COLUMNS.values()) else {}
    bad_inputs = 0
    filled, offset = 0, 0
    for batch in ds.iter_batches([CONSTITUENTS, *columns, *(INFO_COLUMNS[field] for field in info)]):
        n = len(batch[LABEL])
        lo, hi = np.searchsorted(rows, [offset, offset + n])
        local = rows[lo:hi] - offset
        if x_out is None:
            block = x[filled:filled + len(local)]
            np.take(batch[CONSTITUENTS], local, axis=0, out=block)  # straight into place, no copy in between
        else:
            block = batch[CONSTITUENTS][local]
            x[filled:filled + len(local)] = block
        if len(local):
            bad_inputs += int((~np.isfinite(block).reshape(len(local), -1).all(axis=1)).sum())
        for name in columns:
            columns[name][filled:filled + len(local)] = batch[name][local]
        for field, array in info.items():
            array[filled:filled + len(local)] = batch[INFO_COLUMNS[field]][local]
        filled += len(local)
        offset += n
        if filled == len(rows):
            break
    bad_labels = int((~np.isfinite(columns[LABEL])).sum()) if need_label else 0
    for name, bad in (("constituents", bad_inputs), (LABEL, bad_labels)):
        if bad:
            raise InputFileError(f"{ds.path}: column '{name}' has non-finite values in {bad} jets")
    missing = np.full(len(rows), np.nan)  # datasets written by hand may lack kinematics the networks need
    jets = Jets(x, *(columns.get(name, missing) for name in JET_COLUMNS), input_scale_gev=ds.config.input_scale_gev,
                **info)
    arrays = JetArrays(jets, columns[LABEL], rows)
    return arrays, {name: columns[name] for name in extra}


def smeared_labels(pt_truth: np.ndarray, rows: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """pT,t(truth) x (1 + fraction x g), with g ~ N(0, 1) fixed per dataset row by the seed."""
    if fraction == 0:
        return pt_truth
    g = np.random.default_rng([seed, SMEAR_STREAM]).standard_normal(int(rows.max()) + 1)[rows]
    return pt_truth * (1.0 + fraction * g)
