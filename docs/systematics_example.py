"""Up/down templates of the calibrated top pT for a fit, from a ``topcal predict`` friend file.

Each statistical eigen-variation ``FatJet_ptPred_stat<k>`` is a symmetric shift (GeV) that moves every jet
coherently: the "up" template fills ptPred + stat_k, the "down" template ptPred - stat_k, both with the same
jets and weights as the nominal one. The K pairs are independent nuisance parameters (e.g. pyhf
``histosys`` modifiers, one per k); together they carry sigma_pred with its correlation across jets.

    python docs/systematics_example.py out/demo/predictions/ttbar_noisr_2000ev_topcal.root
"""

from __future__ import annotations

import sys

import awkward as ak
import hist
import uproot


def templates(friend_file, bins: int = 20, lo: float = 300.0, hi: float = 1300.0) -> dict[str, hist.Hist]:
    """``{"nominal": h, "stat0Up": h, "stat0Down": h, ...}``: histograms of ptPred (GeV) of the jets inside
    the model's training window."""
    with uproot.open(friend_file) as f:
        tree = f["topcal"]
        names = [b[len("FatJet_"):] for b in tree.keys() if b.startswith("FatJet_ptPred_stat")]
        jets = tree.arrays(["FatJet_ptPred", "FatJet_inTrainingRange", *(f"FatJet_{n}" for n in names)])
    keep = jets.FatJet_inTrainingRange
    nominal = ak.flatten(jets.FatJet_ptPred[keep])

    def filled(values):
        h = hist.Hist(hist.axis.Regular(bins, lo, hi, name="ptPred", label=r"$p_{T,t}$ calibrated [GeV]"))
        return h.fill(ak.to_numpy(values))

    out = {"nominal": filled(nominal)}
    for name in names:  # ptPred_stat<k>
        shift = ak.flatten(jets[f"FatJet_{name}"][keep])
        k = name[len("ptPred_"):]
        out[f"{k}Up"] = filled(nominal + shift)
        out[f"{k}Down"] = filled(nominal - shift)
    return out


if __name__ == "__main__":
    for key, h in templates(sys.argv[1]).items():
        print(f"{key:>12}: " + " ".join(f"{v:.0f}" for v in h.values()))
