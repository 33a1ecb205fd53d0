"""Data-efficiency curves: k-shot subsets, the files every curve stage writes, the curves."""
