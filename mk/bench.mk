# Benchmarks: the pipeline against its raw limits and a naive baseline, in one run.
# Included from the Makefile; uses its VENV and $(VENV)/.synced.
BENCH_ARGS ?=

SOAK_MINUTES ?= 30

.PHONY: bench soak

bench: $(VENV)/.synced ## Benchmark (~6-10 min): ratios to raw limits and naive -> bench/RESULTS.md
	$(VENV)/bin/python -m bench.run $(BENCH_ARGS)

soak: $(VENV)/.synced ## Watch class mode for SOAK_MINUTES (30): failed runs, memory, latency -> bench/SOAK.md
	$(VENV)/bin/python -m bench.soak --minutes $(SOAK_MINUTES)
