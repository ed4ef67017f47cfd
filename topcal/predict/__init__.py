"""Per-jet predictions written back next to the events as ROOT friend trees (``topcal predict``)."""
