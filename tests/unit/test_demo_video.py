"""The committed demo video (`make video`): a valid, short MP4 and its Spanish captions."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "docs" / "demo"
VIDEO = DEMO / "flightpipe-demo.mp4"
CAPTIONS = DEMO / "flightpipe-demo.srt"
MAX_SECONDS = 120.0
MAX_BYTES = 8_000_000
CUE = re.compile(
    r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})\n(.+?)(?:\n\n|\n?$)",
    re.S,
)


def mvhd_duration(data: bytes) -> float:
    """Duration from the movie header box (moov/mvhd), versions 0 and 1."""

    def boxes(buf: bytes, start: int, end: int) -> dict[bytes, tuple[int, int]]:
        found: dict[bytes, tuple[int, int]] = {}
        pos = start
        while pos + 8 <= end:
            size, kind = struct.unpack(">I4s", buf[pos : pos + 8])
            header = 8
            if size == 1:
                size = struct.unpack(">Q", buf[pos + 8 : pos + 16])[0]
                header = 16
            elif size == 0:
                size = end - pos
            if size < header:
                break
            found.setdefault(kind, (pos + header, pos + size))
            pos += size
        return found

    top = boxes(data, 0, len(data))
    assert b"moov" in top, "no moov box"
    moov = boxes(data, *top[b"moov"])
    assert b"mvhd" in moov, "no mvhd box"
    body = data[moov[b"mvhd"][0] :]
    if body[0] == 1:
        timescale, duration = struct.unpack(">IQ", body[20:32])
    else:
        timescale, duration = struct.unpack(">II", body[12:20])
    return duration / timescale


def video_duration() -> float:
    ffprobe = shutil.which("ffprobe")
    if ffprobe:
        command = [ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"]
        result = subprocess.run(
            [*command, str(VIDEO)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode == 0 and result.stdout.strip():
            return float(result.stdout.strip())
    return mvhd_duration(VIDEO.read_bytes())


def cues() -> list[tuple[float, float, str]]:
    text = CAPTIONS.read_text(encoding="utf-8").replace("\r\n", "\n").strip() + "\n"
    parsed = []
    for match in CUE.finditer(text):
        g = [int(x) for x in match.groups()[1:9]]
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        parsed.append((start, end, match.group(10).strip()))
    return parsed


def test_video_is_a_short_small_mp4() -> None:
    assert VIDEO.is_file(), "run `make video` to record docs/demo/flightpipe-demo.mp4"
    head = VIDEO.read_bytes()[:12]
    assert head[4:8] == b"ftyp", "not an MP4 (no ftyp box)"
    assert 0 < VIDEO.stat().st_size <= MAX_BYTES
    assert 10 < video_duration() <= MAX_SECONDS


def test_mvhd_parser_agrees_with_ffprobe() -> None:
    if not shutil.which("ffprobe"):
        pytest.skip("ffprobe not installed")
    assert mvhd_duration(VIDEO.read_bytes()) == pytest.approx(video_duration(), abs=0.5)


def test_captions_cover_the_scenes() -> None:
    assert CAPTIONS.is_file(), "the .srt captions sit next to the video"
    parsed = cues()
    assert len(parsed) >= 8, "one caption per scene"
    clock = 0.0
    for start, end, text in parsed:
        assert text
        assert start == pytest.approx(clock, abs=0.05), "captions leave no gap"
        assert end > start
        clock = end
    assert clock == pytest.approx(video_duration(), abs=1.5), "captions run to the end"
    joined = " ".join(text for _, _, text in parsed)
    for topic in ("Airflow", "Dask", "psql", "Informe"):
        assert topic in joined
