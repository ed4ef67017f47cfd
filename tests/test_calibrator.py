"""topcal.Calibrator: picklable, the same numbers as topcal predict, and the user processor of
docs/calibrator_example.py runs."""

from __future__ import annotations

import pickle
import runpy
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from coffea import processor
from toys import small_model

import topcal
from topcal.io.delphes_reader import TopcalDelphesSchema
from topcal.predict.run import predict

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "calibrator_example.py"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return small_model(tmp_path_factory.mktemp("calibrator"))


class UserProcessor(processor.ProcessorABC):
    """What a user writes: the calibrated jets of every chunk, keyed by (file, first entry)."""

    def __init__(self, model_dir, seed):
        self.calibrate = topcal.Calibrator(model_dir, samples=5, seed=seed)

    def process(self, events):
        jets = self.calibrate(events)
        key = (Path(events.metadata["filename"]).name, events.metadata["entrystart"])
        return {"chunks": {key: {f: ak.to_numpy(ak.flatten(jets[f])) for f in ("pt", "ptPred", "sigmaTot",
                                                                                  "ptLow68", "ptHigh68")}}}

    def postprocess(self, accumulator):
        return accumulator


def test_calibrator_is_small_and_picklable(model_dir):
    cal = topcal.Calibrator(model_dir, samples=7, seed=3)
    blob = pickle.dumps(cal)
    assert len(blob) < 20_000  # configuration and paths, never the model
    back = pickle.loads(blob)
    assert (back.samples, back.seed, back.model_dir) == (7, 3, cal.model_dir)
    with pytest.raises(topcal.errors.InputFileError, match="not a complete topcal model|model directory not found"):
        topcal.Calibrator(model_dir.parent / "nothing")


def test_user_processor_on_two_workers_equals_topcal_predict(model_dir, ttbar_file, tmp_path):
    predict(model_dir, [ttbar_file], tmp_path / "friends", chunksize=100, samples=5, seed=3, progress=False)
    friend = uproot.open(tmp_path / "friends" / f"{ttbar_file.stem}_topcal.root")["topcal"].arrays()
    runner = processor.Runner(executor=processor.FuturesExecutor(workers=2, status=False),
                              schema=TopcalDelphesSchema, chunksize=100)
    out = runner({"ttbar": {"files": {str(ttbar_file): "Delphes"}}}, processor_instance=UserProcessor(model_dir, 3),
                 treename="Delphes")
    assert len(out["chunks"]) == 3
    for (_, start), mine in out["chunks"].items():
        chunk = friend[start:start + 100]
        for field, values in mine.items():
            np.testing.assert_array_equal(values, ak.to_numpy(ak.flatten(chunk[f"FatJet_{field}"])), err_msg=field)


def test_the_readme_example_runs(model_dir, ttbar_file, tmp_path):
    example = runpy.run_path(str(EXAMPLE))
    out = example["calibrate_files"](str(model_dir), [str(ttbar_file)])
    assert out["jets"] > 100
    assert out["hist"].sum(flow=True) == out["jets"]
    example["draw"](out["hist"], tmp_path / "calibrated_tops.png")
    assert (tmp_path / "calibrated_tops.png").stat().st_size > 10_000
