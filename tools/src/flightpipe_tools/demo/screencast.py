"""Chromium's own screen capture of a page (CDP ``Page.startScreencast``), cut into clips.

Chromium sends a JPEG each time it paints the page, stamped with the time of the paint; a
page that does not change sends nothing. A clip is therefore the frame on screen at its start
plus every frame painted before its end, each shown until the next one, so the video runs at
the speed things happened. ffmpeg only joins the frames; the captions are drawn on them.
"""

from __future__ import annotations

import base64
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from PIL import Image

from flightpipe_tools.demo import frames

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

T = TypeVar("T")

FPS: Final = 25
CRF: Final = 28


class EncodeError(RuntimeError):
    """ffmpeg could not make the video; the message carries its own words."""


@dataclass
class Clip:
    """A stretch of the recording, in seconds of the paint clock, with its caption."""

    start: float
    end: float
    caption: str
    step: str

    @property
    def seconds(self) -> float:
        return self.end - self.start


class Screencast:
    """Every paint of ``page`` as a JPEG in ``folder``, with the time Chromium painted it."""

    def __init__(self, context: BrowserContext, page: Page, folder: Path) -> None:
        self.folder = folder
        self.frames: list[tuple[float, Path]] = []
        self._cdp = context.new_cdp_session(page)
        self._cdp.on("Page.screencastFrame", self._on_frame)
        width, height = frames.PICTURE
        self._cdp.send(
            "Page.startScreencast",
            {"format": "jpeg", "quality": 85, "maxWidth": width, "maxHeight": height},
        )

    def _on_frame(self, event: dict[str, Any]) -> None:
        path = self.folder / f"paint-{len(self.frames):05d}.jpg"
        path.write_bytes(base64.b64decode(event["data"]))
        painted = event.get("metadata", {}).get("timestamp") or time.time()
        self.frames.append((float(painted), path))
        # Chromium sends the next frame only once this one is acknowledged.
        self._cdp.send("Page.screencastFrameAck", {"sessionId": event["sessionId"]})

    def stop(self) -> None:
        self._cdp.send("Page.stopScreencast")
        self._cdp.detach()


def timeline(painted: list[tuple[float, T]], start: float, end: float) -> list[tuple[T, float]]:
    """What a clip from ``start`` to ``end`` shows: each frame and how long it stays."""
    inside = [(at, item) for at, item in painted if start < at < end]
    before = [(at, item) for at, item in painted if at <= start]
    if before:
        inside.insert(0, (start, before[-1][1]))
    elif inside:
        inside[0] = (start, inside[0][1])
    else:
        return []
    stops = [at for at, _ in inside[1:]] + [end]
    return [(item, stop - at) for (at, item), stop in zip(inside, stops, strict=True)]


def shorten(clips: list[Clip], limit: float) -> None:
    """Cut the tail of every clip by the same factor so that the whole fits in ``limit``."""
    total = sum(c.seconds for c in clips)
    if total > limit:
        factor = limit / total
        for clip in clips:
            clip.end = clip.start + clip.seconds * factor


def _caption_frames(
    clips: list[Clip], painted: list[tuple[float, Path]], work: Path
) -> list[tuple[Path, float]]:
    """The captioned full frames of the whole video, in order, with their durations."""
    made: dict[tuple[Path, str, str], Path] = {}
    shown: list[tuple[Path, float]] = []
    for clip in clips:
        for picture, seconds in timeline(painted, clip.start, clip.end):
            key = (picture, clip.caption, clip.step)
            if key not in made:
                path = work / f"frame-{len(made):05d}.png"
                frames.captioned(Image.open(picture), clip.caption, clip.step).save(path)
                made[key] = path
            shown.append((made[key], seconds))
    return shown


def encode(
    clips: list[Clip], painted: list[tuple[float, Path]], work: Path, output: Path, ffmpeg: str
) -> None:
    """Join the clips into an H.264 MP4 (yuv420p, constant frame rate)."""
    shown = _caption_frames(clips, painted, work)
    if not shown:
        raise EncodeError("nothing was recorded")
    listing = ["ffconcat version 1.0"]
    for path, seconds in shown:
        listing += [f"file '{path.name}'", f"duration {seconds:.3f}"]
    # The concat demuxer ignores the last duration unless the last file is listed again.
    listing.append(f"file '{shown[-1][0].name}'")
    (work / "clips.ffconcat").write_text("\n".join(listing) + "\n", encoding="utf-8")
    partial = output.with_name(output.stem + ".partial.mp4")
    command = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "concat", "-safe", "0", "-i", "clips.ffconcat",
        "-vf", f"fps={FPS},format=yuv420p",
        "-c:v", "libx264", "-preset", "medium", "-crf", str(CRF), "-pix_fmt", "yuv420p",
        "-movflags", "+faststart", "-metadata", "title=flightpipe demo", "-an", str(partial),
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=work)
    except subprocess.TimeoutExpired as exc:
        raise EncodeError("ffmpeg did not finish within 15 minutes") from exc
    if result.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        raise EncodeError(f"ffmpeg failed: {result.stderr.strip()[-800:]}")
    partial.replace(output)
