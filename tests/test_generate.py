"""topcal generate: truth record physics, reproducibility, atomic output."""

import awkward as ak
import numpy as np
import pytest
import uproot

from topcal.config import RunConfig
from topcal.data import EMBEDDED_SAMPLE
from topcal.errors import ConfigError, OutputError
from topcal.generate import run as run_module
from topcal.generate.run import generate
from topcal.io.delphes_reader import open_events, read_metadata
from topcal.process.truth import last_copies as _last_copies


def test_tops_and_ws_with_their_masses(ttbar_file):
    events = open_events(ttbar_file)
    tops = _last_copies(events.Particle, 6)
    ws = _last_copies(events.Particle, 24)
    assert ak.all(ak.num(tops) == 2) and ak.all(ak.num(ws) == 2)
    top_mass = ak.to_numpy(ak.flatten(tops.Mass))
    w_mass = ak.to_numpy(ak.flatten(ws.Mass))
    assert np.median(top_mass) == pytest.approx(172.5, abs=1.5)  # Breit-Wigner, width 1.4 GeV
    assert np.median(w_mass) == pytest.approx(80.4, abs=1.0)
    # the four-vectors are consistent: m^2 = E^2 - p^2 for the last-copy tops
    m = np.sqrt(np.maximum(ak.flatten(tops.E) ** 2 - ak.flatten(tops.P) ** 2, 0))
    np.testing.assert_allclose(ak.to_numpy(m), top_mass, rtol=2e-3)
    # hadronic decays: W daughters are quarks
    d1 = ak.flatten(ws.D1)
    first_daughters = ak.flatten(events.Particle.PID)[ak.to_numpy(d1 + np.repeat(
        np.concatenate([[0], np.cumsum(ak.num(events.Particle))[:-1]]), ak.num(ws)))]
    assert np.all(np.abs(ak.to_numpy(first_daughters)) <= 5)


def test_tops_cover_400_to_1000_gev(ttbar_file):
    tops = _last_copies(open_events(ttbar_file).Particle, 6)
    pt = ak.to_numpy(ak.flatten(tops.PT))
    counts, _ = np.histogram(pt, bins=[400, 600, 800, 1000])
    # the pTHat bias makes the spectrum roughly flat: no third of the range is starved
    assert counts.min() > 0.4 * counts.max()
    assert np.mean((pt > 400) & (pt < 1000)) > 0.8


def test_energy_flow_in_a_cone_reproduces_visible_truth_energy(ttbar_file):
    ev = open_events(ttbar_file)
    tops = _last_copies(ev.Particle, 6)
    tops = tops[abs(tops.Eta) < 1.5]
    P = ev.Particle
    apid = abs(P.PID)
    invisible = (apid == 12) | (apid == 14) | (apid == 16) | (apid == 13)
    visible = P[(P.Status == 1) & ~invisible & (abs(P.Eta) < 2.5)]

    def cone_energy(eta, phi, energy):
        objs = ak.zip({"eta": eta, "phi": phi, "E": energy})
        t, o = ak.unzip(ak.cartesian([tops, objs], nested=True))
        dr = np.hypot(t.Eta - o.eta, (t.Phi - o.phi + np.pi) % (2 * np.pi) - np.pi)
        return ak.sum(ak.where(dr < 1.0, o.E, 0), axis=-1)

    truth = cone_energy(visible.Eta, visible.Phi, visible.E)
    trk = ev.EFlowTrack[(abs(ev.EFlowTrack.PID) != 11) & (abs(ev.EFlowTrack.PID) != 13)]
    reco = cone_energy(trk.Eta, trk.Phi, np.sqrt(trk.P**2 + trk.Mass**2))
    for c in (ev.EFlowPhoton, ev.EFlowNeutralHadron):
        reco = reco + cone_energy(c.Eta, c.Phi, c.ET * np.cosh(c.Eta))
    ratio = ak.to_numpy(ak.flatten(reco / truth))
    # response close to 1 (thresholds lose a few %), spread at the level of the calorimeter resolution
    assert 0.93 < np.mean(ratio) < 1.03
    assert np.std(ratio) < 0.10


def test_same_seed_same_file_and_worker_count_does_not_matter(tmp_path):
    """1 process, a pool of 2 and a 2-worker dask cluster write the same events."""
    cfg = RunConfig(seed=5, chunk_events=20)
    generate(tmp_path / "a.root", 60, cfg, workers=1, progress=False)
    generate(tmp_path / "b.root", 60, cfg, workers=2, progress=False)
    generate(tmp_path / "d.root", 60, cfg, workers=2, executor="dask", progress=False)
    generate(tmp_path / "c.root", 60, RunConfig(seed=6, chunk_events=20), workers=1, progress=False)
    a = uproot.open(tmp_path / "a.root")["Delphes"].arrays()
    c = uproot.open(tmp_path / "c.root")["Delphes"].arrays()
    for other in ("b", "d"):
        b = uproot.open(tmp_path / f"{other}.root")["Delphes"].arrays()
        assert a.fields == b.fields
        for field in a.fields:
            assert ak.all(a[field] == b[field]), (other, field)
    assert not ak.all(ak.num(a["Particle.PT"]) == ak.num(c["Particle.PT"]))


def test_configuration_and_command_recorded(ttbar_file):
    cfg = RunConfig.from_dict(__import__("json").loads(read_metadata(ttbar_file, "topcal_config")))
    assert cfg.seed == 11 and cfg.chunk_events == 100
    assert read_metadata(ttbar_file, "topcal_version")


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "x.root"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="--overwrite"):
        generate(out, 5, RunConfig(), progress=False)
    assert out.read_bytes() == b"keep me"


def test_bad_arguments_write_nothing(tmp_path):
    with pytest.raises(ConfigError, match="--events"):
        generate(tmp_path / "x.root", 0, RunConfig(), progress=False)
    with pytest.raises(OutputError, match="does not exist"):
        generate(tmp_path / "no" / "x.root", 5, RunConfig(), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_failure_midway_leaves_no_file(tmp_path, monkeypatch):
    real = run_module.generate_chunk

    def failing(cfg, index, n):
        if index == 1:
            raise RuntimeError("simulated crash in chunk 1")
        return real(cfg, index, n)

    monkeypatch.setattr(run_module, "generate_chunk", failing)
    with pytest.raises(RuntimeError, match="chunk 1"):
        generate(tmp_path / "x.root", 30, RunConfig(chunk_events=10), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_qcd_process_has_no_tops(tmp_path):
    from topcal.config import GeneratorConfig

    generate(tmp_path / "qcd.root", 20, RunConfig(seed=3, generator=GeneratorConfig(process="qcd")), progress=False)
    ev = open_events(tmp_path / "qcd.root")
    assert not ak.any(abs(ev.Particle.PID) == 6)
    assert ak.all(ak.num(ev.EFlowTrack) > 0)


def test_compact_truth_keeps_the_decay_chain(tmp_path):
    from topcal.config import SLIM_COLLECTIONS, OutputConfig

    full_cfg = RunConfig(seed=9, chunk_events=15)
    slim_cfg = RunConfig(seed=9, chunk_events=15,
                         output=OutputConfig(truth="compact", collections=SLIM_COLLECTIONS, compression="lzma"))
    generate(tmp_path / "full.root", 30, full_cfg, progress=False)
    generate(tmp_path / "slim.root", 30, slim_cfg, progress=False)
    full, slim = open_events(tmp_path / "full.root"), open_events(tmp_path / "slim.root")
    assert "Track" not in slim.fields and "Tower" not in slim.fields
    assert ak.all(slim.EFlowTrack.PT == full.EFlowTrack.PT)  # same events, same detector response
    tops_full, tops_slim = _last_copies(full.Particle, 6), _last_copies(slim.Particle, 6)
    assert ak.all(tops_full.PT == tops_slim.PT)
    P = slim.Particle
    n = ak.num(P)
    for m in ("M1", "M2", "D1", "D2"):
        assert ak.all((P[m] >= -1) & (P[m] < n))
    # daughters of the last-copy tops are a W and a b
    d1, d2 = tops_slim.D1, tops_slim.D2
    pids = sorted({abs(int(x)) for x in ak.flatten(P.PID[d1]).tolist() + ak.flatten(P.PID[d2]).tolist()})
    assert pids == [5, 24]
    ws = _last_copies(P, 24)
    assert ak.all(abs(P.PID[ws.D1]) <= 5) and ak.all(abs(P.PID[ws.D2]) <= 5)


def test_embedded_sample_is_readable():
    sample = EMBEDDED_SAMPLE
    ev = open_events(sample)
    assert len(ev) == 2000
    assert "topcal generate" in read_metadata(sample, "topcal_command")
    assert ak.all(ak.num(_last_copies(ev.Particle, 6)) == 2)
