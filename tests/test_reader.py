"""One reader for topcal's files, real DELPHES output, and old DELPHES files without Track.Mass."""

import awkward as ak
import numpy as np
import pytest
import uproot

from topcal.errors import InputFileError
from topcal.io.delphes_reader import PION_MASS_GEV, check_delphes_file, open_events

COLLECTIONS = ("Event", "Particle", "Track", "Tower", "EFlowTrack", "EFlowPhoton", "EFlowNeutralHadron")


@pytest.mark.parametrize("which", ["ttbar_file", "real_delphes"])
def test_same_reader_for_both_layouts(which, request):
    path = request.getfixturevalue(which)
    events = open_events(path)
    for name in COLLECTIONS:
        assert name in events.fields
    for name in ("EFlowTrack", "EFlowPhoton", "EFlowNeutralHadron", "Particle"):
        coll = events[name]
        for f in ("pt", "eta", "phi", "mass"):
            assert f in coll.fields, (name, f)
    assert ak.all(events.EFlowTrack.pt >= 0)  # real DELPHES has PT = 0 entries: the processor filters them
    assert len(events.Event.Weight) == len(events)
    # vector behaviour works on both (PT = 0 entries carry Eta = 999.9 and give NaN: skip them)
    tracks = events.EFlowTrack[events.EFlowTrack.pt > 0]
    assert ak.all(np.isfinite(ak.flatten(tracks.energy)))


def test_real_file_values_match_uproot(real_delphes):
    events = open_events(real_delphes)
    direct = uproot.open(real_delphes)["Delphes"]["EFlowTrack/EFlowTrack.PT"].array()
    assert ak.all(events.EFlowTrack.PT == direct)


def test_track_without_mass_gets_pion_mass(real_delphes, tmp_path):
    """An older DELPHES layout: Track collections without the Mass leaf."""
    tree = uproot.open(real_delphes)["Delphes"]
    out = tmp_path / "old.root"
    with uproot.recreate(out) as f:
        cols = {}
        for name in ("Track", "EFlowTrack", "EFlowPhoton"):
            used = ("PT", "Eta", "Phi", "PID", "Charge", "ET", "E")
            leaves = [k for k in tree[name].keys() if k.split(".", 1)[1] in used]
            arr = tree.arrays(leaves)
            cols[name] = ak.zip({k.split(".", 1)[1]: arr[k] for k in leaves})
        f.mktree("Delphes", {k: v.type.content for k, v in cols.items()},
                 counter_name=lambda c: f"{c}_size", field_name=lambda o, i: f"{o}.{i}")
        f["Delphes"].extend(cols)
    events = open_events(out)
    assert ak.all(events.Track.mass == np.float32(PION_MASS_GEV))
    assert ak.all(events.EFlowTrack.pt == tree["EFlowTrack/EFlowTrack.PT"].array())


def test_clear_errors(tmp_path, real_delphes):
    with pytest.raises(InputFileError, match="missing.root: file not found"):
        check_delphes_file(tmp_path / "missing.root")
    junk = tmp_path / "junk.root"
    junk.write_bytes(b"this is not ROOT")
    with pytest.raises(InputFileError, match="junk.root: not a readable ROOT file"):
        check_delphes_file(junk)
    truncated = tmp_path / "truncated.root"
    truncated.write_bytes(real_delphes.read_bytes()[:20000])
    with pytest.raises(InputFileError, match="truncated.root"):
        check_delphes_file(truncated)
    other = tmp_path / "other.root"
    with uproot.recreate(other) as f:
        f["Events"] = {"x": np.arange(3)}
    with pytest.raises(InputFileError, match="no 'Delphes' tree"):
        check_delphes_file(other)
    with pytest.raises(InputFileError, match="collection 'FatJet' missing"):
        check_delphes_file(real_delphes, collections=["FatJet"])
