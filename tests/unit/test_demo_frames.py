"""Frames of the demo video: terminal output keeps its colours, the picture its layout."""

from __future__ import annotations

import pytest

from flightpipe_tools.demo import frames
from flightpipe_tools.demo.frames import ANSI, TERM_BG, TERM_FG, Span, ansi_spans


def test_sgr_colours_and_bold() -> None:
    line = "\x1b[1;32mhealthy\x1b[0m up \x1b[91mfailed\x1b[39m!"
    assert ansi_spans(line) == [
        Span("healthy", ANSI[2], True),
        Span(" up ", TERM_FG, False),
        Span("failed", ANSI[9], False),
        Span("!", TERM_FG, False),
    ]


def test_256_and_true_colours() -> None:
    spans = ansi_spans("\x1b[38;5;4ma\x1b[38;5;196mb\x1b[38;5;240mc\x1b[38;2;1;2;3md\x1b[0m")
    # The first 16 of the 256 take the theme's palette; the cube and grey ramp are xterm's.
    assert [s.color for s in spans] == [ANSI[4], (255, 0, 0), (88, 88, 88), (1, 2, 3)]


def test_other_escapes_do_not_show() -> None:
    hyperlink = "\x1b]8;id=1;http://127.0.0.1:8080\x1b\\Airflow\x1b]8;;\x1b\\ \x1b[2Kok"
    assert "".join(s.text for s in ansi_spans(hyperlink)) == "Airflow ok"
    assert ansi_spans("") == []


@pytest.fixture
def fonts() -> None:
    try:
        frames.mono(12)
    except frames.FontMissingError as exc:
        pytest.skip(str(exc))


def test_terminal_image_draws_the_colours(fonts: None) -> None:
    image = frames.terminal_image(["\x1b[32m" + "█" * 20 + "\x1b[0m", "plain"], "status")
    assert image.size == frames.PICTURE
    colours = {rgb for _, rgb in image.getcolors(maxcolors=1_000_000) or []}
    assert ANSI[2] in colours and TERM_BG in colours


def test_captioned_frame_is_full_size(fonts: None) -> None:
    card = frames.title_card("flightpipe", "demo")
    frame = frames.captioned(card, "Una leyenda bastante larga " * 4, "3/9")
    assert frame.size == frames.FRAME
    assert frame.getpixel((5, frames.PICTURE[1] + 40)) == frames.BAND
