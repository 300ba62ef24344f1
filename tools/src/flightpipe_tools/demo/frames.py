"""The frames of the demo video: a captured picture above a caption band, drawn with Pillow.

Every frame is ``FRAME`` pixels: the picture (what Chromium painted) fills the top ``PICTURE``
pixels and the caption band the rest, so the caption never hides what the scene shows.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Final

from PIL import Image, ImageDraw, ImageFont

FRAME: Final = (1280, 720)
CAPTION_HEIGHT: Final = 88
PICTURE: Final = (FRAME[0], FRAME[1] - CAPTION_HEIGHT)

FONT_DIRS: Final = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
)

BAND: Final = (17, 24, 39)
BADGE: Final = (1, 124, 238)
WHITE: Final = (243, 244, 246)


class FontMissingError(RuntimeError):
    pass


@cache
def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """A DejaVu font (``fonts-dejavu-core``); a clear error when it is not installed."""
    for folder in FONT_DIRS:
        path = folder / name
        if path.exists():
            return ImageFont.truetype(str(path), size)
    raise FontMissingError(f"font {name} not found: install the Debian package fonts-dejavu-core")


def sans(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    return font("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf", size)


def fit_picture(image: Image.Image) -> Image.Image:
    """Scale (keeping the aspect ratio) and centre ``image`` on a ``PICTURE`` canvas."""
    image = image.convert("RGB")
    if image.size == PICTURE:
        return image
    scale = min(PICTURE[0] / image.width, PICTURE[1] / image.height)
    resized = image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
        Image.Resampling.LANCZOS,
    )
    canvas = Image.new("RGB", PICTURE, (255, 255, 255))
    canvas.paste(resized, ((PICTURE[0] - resized.width) // 2, (PICTURE[1] - resized.height) // 2))
    return canvas


def _wrap(text: str, face: ImageFont.FreeTypeFont, width: float) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and face.getlength(candidate) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def captioned(picture: Image.Image, caption: str, step: str) -> Image.Image:
    """The full frame: ``picture`` above a caption band with a step badge."""
    frame = Image.new("RGB", FRAME, BAND)
    frame.paste(fit_picture(picture), (0, 0))
    draw = ImageDraw.Draw(frame)
    top = PICTURE[1]
    draw.rectangle((0, top, FRAME[0], top + 3), fill=BADGE)
    badge_font = sans(22, bold=True)
    badge_w = max(56, round(badge_font.getlength(step)) + 28)
    mid = top + CAPTION_HEIGHT // 2 + 2
    draw.rounded_rectangle((20, mid - 20, 20 + badge_w, mid + 20), radius=8, fill=BADGE)
    draw.text((20 + badge_w // 2, mid), step, font=badge_font, fill=WHITE, anchor="mm")
    left = 20 + badge_w + 20
    width = FRAME[0] - left - 24
    size = 28
    while True:
        face = sans(size)
        lines = _wrap(caption, face, width)
        if len(lines) <= 2 or size <= 16:
            break
        size -= 2
    line_h = round(size * 1.25)
    y: float = mid - line_h * len(lines) / 2
    for line in lines[:2]:
        draw.text((left, y), line, font=face, fill=WHITE)
        y += line_h
    return frame
