import json
import math

import pytest

from topcal.config import RunConfig, load_card
from topcal.errors import ConfigError


def test_defaults_are_the_atlas_card_and_valid():
    cfg = load_card(None)
    assert cfg.detector.solenoid.bz_tesla == 2.0
    assert cfg.detector.tracking.hadron_efficiency.values == [[0.70, 0.95], [0.60, 0.85]]
    assert cfg.detector.ecal.stochastic[0] == 0.101
    assert cfg.detector.hcal.noise_gev[0] == 1.59
    # ECAL towers 0.0174 wide in |eta| < 3, 360 phi bins (1 degree)
    edges = cfg.detector.ecal.eta_edges
    central = [b - a for a, b, n in zip(edges, edges[1:], cfg.detector.ecal.n_phi) if n == 360]
    assert all(abs(w - 0.0174) < 2e-4 for w in central)
    assert "PhaseSpace:bias2Selection = on" in cfg.generator.pythia_settings()
    assert "PartonLevel:MPI = off" in cfg.generator.pythia_settings()


def test_card_overrides_and_round_trip(tmp_path):
    card = tmp_path / "card.toml"
    card.write_text('[generator]\nisr = true\n[detector.ecal]\nstochastic = [0.2, 0.3]\n'
                    '[detector.energy_fractions]\n"310" = [0.5, 0.5]\n')
    cfg = load_card(card, {"seed": 5})
    assert cfg.generator.isr and cfg.seed == 5
    assert cfg.detector.ecal.stochastic == [0.2, 0.3]
    assert cfg.detector.energy_fractions["310"] == [0.5, 0.5]
    again = RunConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg
    assert math.isinf(again.detector.tracking.hadron_efficiency.pt_edges[-1])


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"detector": {"ecal": {"stochastic": [-0.1, 0.285]}}}, "detector.ecal.stochastic"),
        ({"detector": {"tracking": {"hadron_resolution": {"constant": [0.06, -0.1, 0.25]}}}},
         "detector.tracking.hadron_resolution.constant"),
        ({"detector": {"tracking": {"muon_efficiency": {"values": [[0.75, 1.2], [0.7, 0.98]]}}}},
         "detector.tracking.muon_efficiency.values"),
        ({"generator": {"process": "higgs"}}, "generator.process"),
        ({"generator": {"pthat_max_gev": 100.0}}, "generator.pthat_max_gev"),
        ({"detector": {"solenoid": {"radius_m": 0}}}, "detector.solenoid.radius_m"),
        ({"detector": {"nonsense": 1}}, "detector.nonsense"),
    ],
)
def test_invalid_values_name_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_card(None, overrides)


def test_bad_card_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_card(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[generator\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_card(bad)
