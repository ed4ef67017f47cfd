"""Per-jet label systematics of a model trained with ``--label-systematics`` (:mod:`topcal.train.label_training`).

For every jet, in GeV:

* ``sigmaCal``: sigma_cal = sqrt(sigma_stoch^2 - sigma_stoch,0^2) of all smear sources together (the network
  trained on labels smeared by all of them, with their correlations, against the nominal network);
* ``sigmaCal_<source>``: the same for each smear source alone;
* ``ptPred_<source>Up`` / ``ptPred_<source>Down``: <pT> with every label shifted up / down by the shift
  source (``method = "scale"``: the nominal <pT> x (1 +- size(<pT>)); ``"train"``: the networks trained on
  the shifted labels).

sigma_cal compares the networks' own (raw) sigma_stoch, before the recalibration of the widths
(``TrainConfig.recalibrate``): that factor fits each network's 68% intervals to its validation labels, and
differs between the nominal network, whose response has long tails, and the smeared ones, which are nearly
Gaussian (on the small-scale simulation 0.90 against 0.97..1.02), so that recalibrated widths put sigma_cal
7..29% above the injected smearing per 100 GeV bin of pT,j where the raw widths give -5..+16%.

All networks are sampled with the same seed. :func:`label_fields` names the fields a model gives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from topcal.errors import InputFileError
from topcal.train.label_training import LABEL_DIR, read_label_meta


def label_fields(model_dir, reference=None) -> tuple[str, ...]:
    """The per-jet fields of :func:`label_systematics` for ``model_dir`` (empty for a model without label
    systematics). A ``reference`` model (``--reference``, which also gives ``sigmaCal``) is an error for a
    model with smear sources."""
    meta = read_label_meta(model_dir)
    if meta is None:
        return ()
    card = meta["card"]
    if reference is not None and card.smear:
        raise InputFileError(f"{reference}: {model_dir} has its own label systematics (sigmaCal from its smear "
                             f"sources); drop --reference")
    fields = (("sigmaCal",) if card.smear else ()) + tuple(f"sigmaCal_{s.name}" for s in card.smear)
    return fields + tuple(f"ptPred_{s.name}{way}" for s in card.shift for way in ("Up", "Down"))


def label_systematics(model_dir, jets, samples: int = 50, seed: int = 0,
                      nominal: dict[str, np.ndarray] | None = None, raw_stoch: np.ndarray | None = None
                      ) -> dict[str, np.ndarray]:
    """The fields of :func:`label_fields` for ``jets`` (:class:`topcal.train.inputs.Jets`), from ``samples``
    weight samples drawn with ``seed``; ``nominal``: the nominal model's ``predict`` of the same jets, seed
    and samples, when already at hand (its ``mean`` is what the shift sources move); ``raw_stoch``: the nominal
    network's raw sigma_stoch in GeV (without recalibration or prior), when ``nominal`` is not the plain
    flat-prior prediction (an analysis prior changes the widths, but not what the label smearing added)."""
    from topcal.predict.calibrator import cached_model
    from topcal.train.likelihood import sigma_cal, untruncated

    model_dir = Path(model_dir).absolute()
    meta = read_label_meta(model_dir)
    if meta is None:
        return {}
    card = meta["card"]
    model = cached_model(str(model_dir))
    if nominal is None:
        nominal = model.predict(jets, samples, seed)

    def sub(name: str, raw: bool = False) -> dict[str, np.ndarray]:
        return cached_model(str(model_dir / LABEL_DIR / name)).predict(jets, samples, seed, raw=raw)

    out: dict[str, np.ndarray] = {}
    # the raw width (recalibration scales it by the factor)
    # untruncated on both sides: the smeared models' labels leave the label window, so they never truncate
    stoch0 = raw_stoch if raw_stoch is not None else \
        untruncated(nominal, "sigma_stoch") / model.width_factors(jets.pt)
    stoch = {}
    for name in [s.name for s in card.smear] + ([meta["all_smear"]] if len(card.smear) > 1 else []):
        stoch[name] = untruncated(sub(name, raw=True), "sigma_stoch")
    if card.smear:
        out["sigmaCal"] = sigma_cal(stoch[meta["all_smear"]], stoch0)
        for s in card.smear:
            out[f"sigmaCal_{s.name}"] = sigma_cal(stoch[s.name], stoch0)
    mean = np.asarray(nominal["mean"])
    for s in card.shift:
        if s.method == "train":  # the shifted trainings' change of the untruncated mean, on the nominal mean
            base = untruncated(nominal, "mean")
            out[f"ptPred_{s.name}Up"] = mean + untruncated(sub(f"{s.name}-up"), "mean") - base
            out[f"ptPred_{s.name}Down"] = mean + untruncated(sub(f"{s.name}-down"), "mean") - base
        else:
            rel = s.relative(mean)
            out[f"ptPred_{s.name}Up"], out[f"ptPred_{s.name}Down"] = mean * (1 + rel), mean * (1 - rel)
    return out

