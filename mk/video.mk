# Demo video: a screen capture of headless Chromium (Playwright) over the stack in live mode,
# joined by ffmpeg. Included from the Makefile; uses its UV, VENV, FP and $(VENV)/.synced.
# It starts live mode first (`make up` switches back to class mode). The recorder is the
# tooling package in tools/ (flightpipe-tools), and the `demo` dependency group adds its
# browser driver; the browser is the system Chromium (Playwright never downloads one).

VIDEO_APT := $(if $(filter 0,$(shell id -u)),,sudo )apt-get
VIDEO_ARGS ?=

.PHONY: video video-tools

video-tools:
	@command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 \
		&& test -x /usr/bin/chromium && test -f /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf || { \
		echo "Installing ffmpeg, Chromium and the DejaVu fonts (Debian packages) ..."; \
		$(VIDEO_APT) update -qq && DEBIAN_FRONTEND=noninteractive $(VIDEO_APT) install -y -qq \
			ffmpeg chromium fonts-dejavu-core >/dev/null; }

video: $(VENV)/.synced video-tools ## Screen-record the demo in live mode (docs/demo/flightpipe-demo.mp4)
	@FLIGHTPIPE_MODE=live $(FP) up
	$(UV) run --frozen --group demo flightpipe-tools demo record $(VIDEO_ARGS)
