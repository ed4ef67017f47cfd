"""A complete user analysis: calibrate every R = 1.2 fat jet with topcal inside your own coffea processor,
fill a hist histogram of pT,pred and sigma_tot / pT,pred, and draw it with mplhep.

    python docs/calibrator_example.py MODEL_DIR events.root [more.root ...]

(The README shows a shorter version; the test suite runs this file.)
"""

import sys

import awkward as ak
import hist
import matplotlib.pyplot as plt
import mplhep
from coffea import processor

import topcal
from topcal.io.delphes_reader import TopcalDelphesSchema


class CalibratedTops(processor.ProcessorABC):
    """Every fat jet in the model's training range: its calibrated pT and relative uncertainty."""

    def __init__(self, model_dir):
        self.calibrate = topcal.Calibrator(model_dir, samples=50, seed=0)  # picklable, loads once per worker

    def process(self, events):
        jets = self.calibrate(events)                  # per event: pt, ptPred, sigmaTot, ptLow68, ...
        jets = jets[jets.inTrainingRange]
        h = (hist.Hist.new.Reg(36, 300, 1200, name="pt", label=r"$p_{T,pred}$ [GeV]")
             .Reg(30, 0, 0.3, name="rel", label=r"$\sigma_{tot} / p_{T,pred}$").Double())
        h.fill(pt=ak.flatten(jets.ptPred), rel=ak.flatten(jets.sigmaTot / jets.ptPred))
        return {"hist": h, "jets": int(ak.sum(ak.num(jets)))}

    def postprocess(self, accumulator):
        return accumulator


def calibrate_files(model_dir, files, workers=2):
    runner = processor.Runner(executor=processor.FuturesExecutor(workers=workers, status=False),
                              schema=TopcalDelphesSchema, chunksize=20_000)
    fileset = {"ttbar": {"files": {f: "Delphes" for f in files}}}
    return runner(fileset, processor_instance=CalibratedTops(model_dir), treename="Delphes")


def draw(h, path):
    plt.style.use(mplhep.style.ROOT)
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 6))
    mplhep.histplot(h.project("pt"), ax=left)
    mplhep.histplot(h.project("rel"), ax=right)
    for ax in (left, right):
        ax.set_ylabel("fat jets")
        mplhep.label.exp_label(exp="topcal", text="Simulation", data=True, com=14, ax=ax)
    fig.savefig(path, bbox_inches="tight")


if __name__ == "__main__":
    out = calibrate_files(sys.argv[1], sys.argv[2:])
    draw(out["hist"], "calibrated_tops.png")
    print(f"{out['jets']} fat jets calibrated -> calibrated_tops.png")
