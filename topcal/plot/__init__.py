"""Publication-style figures (hist + mplhep, ROOT style, neutral "topcal Simulation" label, 14 TeV)."""
