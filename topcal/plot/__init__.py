"""Publication-style figures (hist + mplhep, ATLAS style, "Simulation", 14 TeV)."""
