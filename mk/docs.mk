# Documentation: diagrams generated from the code (Graphviz) and the 2-page PDF (Chromium).
# Included from the Makefile; uses its UV, VENV and $(VENV)/.synced. The generator is the
# developer tooling package in tools/ (flightpipe-tools), installed by the dev group.

DOCS_APT := $(if $(filter 0,$(shell id -u)),,sudo )apt-get

.PHONY: docs docs-tools

docs-tools:
	@command -v dot >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Graphviz and Chromium (Debian packages) ..."; \
		$(DOCS_APT) update -qq && DEBIAN_FRONTEND=noninteractive $(DOCS_APT) install -y -qq \
			graphviz chromium fonts-dejavu-core >/dev/null; }

docs: $(VENV)/.synced docs-tools ## Regenerate the diagrams (DOT, SVG, PNG) and docs/es/documentacion.pdf
	$(VENV)/bin/flightpipe-tools docs build
