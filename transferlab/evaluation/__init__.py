"""Evaluation: linear and kNN probes, curves, metrics, verdicts and the report."""
