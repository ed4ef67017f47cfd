"""The analysis layer above :mod:`topcal.predict`: measurements that use topcal's per-jet calibrated pT and its
variations (:mod:`topcal.analysis.jets`: calibrated, truth-matched jets; :mod:`topcal.analysis.fraction`: the
fraction of tops above a pT,t threshold from a binned profile-likelihood fit in pyhf)."""
