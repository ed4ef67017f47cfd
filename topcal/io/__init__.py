"""Reading and writing files: DELPHES-format ROOT (uproot, coffea NanoEvents) and atomic outputs."""
