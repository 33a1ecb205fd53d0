"""Scores of features and predictions: transferability, test metrics, calibration."""
