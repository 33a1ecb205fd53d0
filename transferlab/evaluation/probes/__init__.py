"""Probes on frozen features: the linear probe and its C, kNN, and their grids' tie rule."""
