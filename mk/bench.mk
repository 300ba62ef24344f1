# Benchmarks: the pipeline against its raw limits and a naive baseline, in one run.
# Included from the Makefile; uses its VENV and $(VENV)/.synced.
BENCH_ARGS ?=

.PHONY: bench

bench: $(VENV)/.synced ## Benchmark (~6-10 min): ratios to raw limits and naive -> bench/RESULTS.md
	$(VENV)/bin/python -m bench.run $(BENCH_ARGS)
