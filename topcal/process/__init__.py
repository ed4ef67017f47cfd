"""Processing stage helpers: fat jets from energy-flow objects (:mod:`.fatjets`) and truth matching
(:mod:`.truth`). The coffea processor that uses them lives in ``processors/``."""
