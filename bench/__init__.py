"""Benchmarks of flightpipe: ``python -m bench.run`` (``make bench``); see README.md."""
