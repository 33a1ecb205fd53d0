"""The benchmark: `python -m bench {speed,pipeline,variation}`; bench/device/ holds the
scripts for lent GPU machines."""
