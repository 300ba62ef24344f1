"""The demo video: a real pipeline run recorded with headless Chromium and ffmpeg."""
