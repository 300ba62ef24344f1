# Demo video: a real pipeline run recorded with headless Chromium (Playwright) and ffmpeg.
# Included from the Makefile; uses its UV, VENV and $(VENV)/.synced. Needs the running stack
# (`make up`); the recorder is the tooling package in tools/ (flightpipe-tools), and the
# `demo` dependency group adds its browser driver; the browser is the system Chromium
# (Playwright never downloads one).

VIDEO_APT := $(if $(filter 0,$(shell id -u)),,sudo )apt-get
VIDEO_ARGS ?=

.PHONY: video video-tools

video-tools:
	@command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 \
		&& test -x /usr/bin/chromium && test -f /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf || { \
		echo "Installing ffmpeg, Chromium and the DejaVu fonts (Debian packages) ..."; \
		$(VIDEO_APT) update -qq && DEBIAN_FRONTEND=noninteractive $(VIDEO_APT) install -y -qq \
			ffmpeg chromium fonts-dejavu-core >/dev/null; }

video: $(VENV)/.synced video-tools ## Record the demo video (docs/demo/flightpipe-demo.mp4)
	$(UV) run --frozen --group demo flightpipe-tools demo record $(VIDEO_ARGS)
