"""The demo video's frames and clips: what Chromium painted, cut and captioned."""

from __future__ import annotations

import pytest
from PIL import Image

from flightpipe_tools.demo import frames
from flightpipe_tools.demo.screencast import Clip, shorten, timeline
from flightpipe_tools.demo.video import terminal_page


@pytest.fixture
def fonts() -> None:
    try:
        frames.sans(12)
    except frames.FontMissingError as exc:
        pytest.skip(str(exc))


def test_captioned_frame_is_full_size(fonts: None) -> None:
    picture = Image.new("RGB", (640, 300), (255, 255, 255))
    frame = frames.captioned(picture, "Una leyenda bastante larga " * 4, "3")
    assert frame.size == frames.FRAME
    assert frame.getpixel((5, frames.PICTURE[1] + 40)) == frames.BAND
    # A smaller picture is scaled into the picture area, above the band.
    assert frame.getpixel((frames.PICTURE[0] // 2, frames.PICTURE[1] // 2)) == (255, 255, 255)


def test_a_clip_starts_on_the_frame_already_on_screen() -> None:
    painted = [(10.0, "a"), (12.0, "b"), (13.5, "c"), (20.0, "d")]
    assert timeline(painted, 11.0, 15.0) == [("a", 1.0), ("b", 1.5), ("c", 1.5)]


def test_a_still_page_holds_its_last_paint() -> None:
    assert timeline([(1.0, "a")], 5.0, 9.0) == [("a", 4.0)]


def test_a_clip_before_any_paint_starts_on_the_first() -> None:
    assert timeline([(6.0, "a"), (7.0, "b")], 5.0, 9.0) == [("a", 2.0), ("b", 2.0)]
    assert timeline([(10.0, "a")], 5.0, 9.0) == []


def test_durations_sum_to_the_clip() -> None:
    painted = [(t / 7, str(t)) for t in range(100)]
    shown = timeline(painted, 2.05, 9.3)
    assert sum(seconds for _, seconds in shown) == pytest.approx(9.3 - 2.05)
    assert all(seconds > 0 for _, seconds in shown)


def test_shorten_cuts_every_clip_alike() -> None:
    clips = [Clip(0, 60, "a", "1"), Clip(100, 160, "b", "2")]
    shorten(clips, 90)
    assert [c.seconds for c in clips] == [45, 45]
    assert [c.start for c in clips] == [0, 100]
    shorten(clips, 200)
    assert [c.seconds for c in clips] == [45, 45]


def test_terminal_page_keeps_colours_and_escapes_text() -> None:
    page = terminal_page("make <status>", "\x1b[32mhealthy\x1b[0m <b>", hidden="later")
    assert "make &lt;status&gt;" in page
    assert "healthy" in page and "&lt;b&gt;" in page and "<b>" not in page
    assert 'id="later" style="display:none"' in page
