"""coffea processors of topcal (fat jets, truth matching, the per-jet dataset)."""
