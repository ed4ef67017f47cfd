"""Event generation: PYTHIA 8 (:mod:`.pythia`), the detector simulation (:mod:`.detector`) and the
chunked, parallel, reproducible run that writes DELPHES-format ROOT (:mod:`.run`)."""
