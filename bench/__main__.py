"""`python -m bench` (and `make bench`): see bench/run.py."""

from bench.run import main

main()
