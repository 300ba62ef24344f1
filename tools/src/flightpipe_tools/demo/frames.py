"""Still frames of the demo video, drawn with Pillow.

Every frame is ``FRAME`` pixels: the picture (a browser screenshot, a terminal rendering or a
title card) fills the top ``PICTURE`` pixels and a caption band the rest, so the burned-in
caption never hides what the scene shows.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from PIL import Image, ImageDraw, ImageFont
from rich.console import Console
from rich.terminal_theme import TerminalTheme
from rich.text import Text

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
TERM_BG: Final = (24, 26, 33)
TERM_FG: Final = (220, 223, 228)
TERM_TITLE: Final = (44, 47, 58)

# The 16 ANSI colours (normal then bright), close to a modern terminal theme.
ANSI: Final = (
    (40, 42, 54),
    (255, 99, 99),
    (80, 220, 120),
    (241, 250, 140),
    (98, 160, 255),
    (255, 121, 198),
    (139, 233, 253),
    (220, 223, 228),
    (98, 114, 164),
    (255, 140, 140),
    (105, 255, 148),
    (255, 255, 165),
    (140, 190, 255),
    (255, 146, 223),
    (164, 255, 255),
    (255, 255, 255),
)

# Rich reads the escape codes; this theme gives its 16 standard colours our palette.
THEME: Final = TerminalTheme(TERM_BG, TERM_FG, list(ANSI[:8]), list(ANSI[8:]))
_RENDER: Final = Console(file=io.StringIO(), color_system="truecolor", width=1000)


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


def mono(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    return font("DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf", size)


# --- terminal text -----------------------------------------------------------------------------
@dataclass
class Span:
    text: str
    color: tuple[int, int, int]
    bold: bool


def ansi_spans(line: str) -> list[Span]:
    """One line of terminal output as coloured spans (SGR colours and bold), via rich."""
    spans = []
    for segment in Text.from_ansi(line).render(_RENDER):
        style = segment.style
        color = style.color if style else None
        rgb = tuple(color.get_truecolor(THEME)) if color else TERM_FG
        spans.append(Span(segment.text, (rgb[0], rgb[1], rgb[2]), bool(style and style.bold)))
    return [span for span in spans if span.text]


def terminal_image(
    lines: Iterable[str], title: str, size: tuple[int, int] = PICTURE, max_font: int = 20
) -> Image.Image:
    """A dark terminal window showing ``lines`` (ANSI colours kept), sized to fit."""
    rows = [ansi_spans(line.rstrip("\n").expandtabs(8)) for line in lines]
    plain = ["".join(span.text for span in row) for row in rows]
    width, height = size
    margin, bar = 24, 34
    columns = max((len(p) for p in plain), default=1) or 1
    count = max(len(rows), 1)
    # The largest monospace size at which the widest line and every row fit.
    size_px = max_font
    while size_px > 9:
        face = mono(size_px)
        char_w = face.getlength("M")
        ascent, descent = face.getmetrics()
        line_h = ascent + descent
        if char_w * columns <= width - 2 * margin and line_h * count <= height - bar - 2 * margin:
            break
        size_px -= 1
    face, face_bold = mono(size_px), mono(size_px, bold=True)
    char_w = face.getlength("M")
    ascent, descent = face.getmetrics()
    line_h = ascent + descent

    image = Image.new("RGB", size, TERM_BG)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, bar), fill=TERM_TITLE)
    for i, dot in enumerate(((255, 95, 86), (255, 189, 46), (39, 201, 63))):
        left = 18 + i * 22
        draw.ellipse((left, 11, left + 12, 23), fill=dot)
    draw.text((width // 2, bar // 2), title, font=sans(15), fill=(200, 204, 212), anchor="mm")
    y = float(bar + margin // 2)
    for row in rows:
        column = 0
        for span in row:
            # One cell per character keeps box-drawing lines joined and columns aligned.
            for char in span.text:
                if not char.isspace():
                    cell = (margin + column * char_w, y)
                    draw.text(cell, char, font=face_bold if span.bold else face, fill=span.color)
                column += 1
        y += line_h
        if y > height - line_h:
            break
    return image


# --- cards and captions ------------------------------------------------------------------------
def title_card(title: str, subtitle: str, lines: Iterable[str] = ()) -> Image.Image:
    """A plain card (opening and closing scenes)."""
    image = Image.new("RGB", PICTURE, BAND)
    draw = ImageDraw.Draw(image)
    cx = PICTURE[0] // 2
    draw.text((cx, 210), title, font=sans(72, bold=True), fill=WHITE, anchor="mm")
    draw.text((cx, 290), subtitle, font=sans(28), fill=(147, 197, 253), anchor="mm")
    y = 370
    for line in lines:
        draw.text((cx, y), line, font=sans(22), fill=(209, 213, 219), anchor="mm")
        y += 38
    return image


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


# --- Dask task stream (when the dashboard cannot draw it) --------------------------------------
PALETTE: Final = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (23, 190, 207),
    (188, 189, 34),
    (127, 127, 127),
)


@dataclass
class Bar:
    lane: str
    prefix: str
    start: float
    stop: float


def task_stream_image(bars: list[Bar], title: str, summary: str) -> Image.Image:
    """The Dask dashboard's task stream drawn from the scheduler's records: one lane per
    worker thread, one bar per task, coloured by task prefix."""
    width, height = PICTURE
    image = Image.new("RGB", PICTURE, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 56), fill=(243, 244, 246))
    draw.text((24, 16), title, font=sans(22, bold=True), fill=(17, 24, 39))
    draw.text((width - 24, 20), summary, font=sans(16), fill=(75, 85, 99), anchor="ra")
    lanes = sorted({b.lane for b in bars}) or ["(no tasks)"]
    prefixes = sorted({b.prefix for b in bars}, key=lambda p: -sum(b.prefix == p for b in bars))
    colors = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(prefixes)}
    left, right, top = 200, width - 30, 90
    legend_rows = (min(len(prefixes), 12) + 2) // 3
    bottom = height - 60 - legend_rows * 26
    t0 = min((b.start for b in bars), default=0.0)
    t1 = max((b.stop for b in bars), default=1.0)
    span = max(t1 - t0, 1e-3)
    lane_h = min(80.0, (bottom - top) / len(lanes))
    label = sans(15)
    for i, lane in enumerate(lanes):
        y = top + i * lane_h
        draw.rectangle((left, y + 4, right, y + lane_h - 4), fill=(249, 250, 251))
        draw.text((left - 12, y + lane_h / 2), lane, font=label, fill=(55, 65, 81), anchor="rm")
    for bar in bars:
        y = top + lanes.index(bar.lane) * lane_h
        x0 = left + (bar.start - t0) / span * (right - left)
        x1 = max(x0 + 2, left + (bar.stop - t0) / span * (right - left))
        draw.rectangle((x0, y + 8, x1, y + lane_h - 8), fill=colors[bar.prefix])
    axis_y = top + len(lanes) * lane_h + 6
    draw.line((left, axis_y, right, axis_y), fill=(156, 163, 175))
    for k in range(6):
        x = left + k * (right - left) / 5
        draw.line((x, axis_y, x, axis_y + 5), fill=(156, 163, 175))
        draw.text(
            (x, axis_y + 8), f"{span * k / 5:.1f} s", font=sans(13), fill=(75, 85, 99), anchor="ma"
        )
    y = axis_y + 36
    for i, prefix in enumerate(prefixes[:12]):
        x = left + (i % 3) * (right - left) / 3
        row_y = y + (i // 3) * 26
        draw.rectangle((x, row_y + 3, x + 16, row_y + 17), fill=colors[prefix])
        count = sum(b.prefix == prefix for b in bars)
        draw.text((x + 24, row_y), f"{prefix} ({count})", font=sans(15), fill=(31, 41, 55))
    return image
