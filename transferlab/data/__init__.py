"""Data: sources, decoding, curation, splits and the prepared and feature layouts."""
