"""RenderOptions: every check of render's and snapshot's flags, each with its exact message."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvrec.errors import PvrecError
from pvrec.render.encoders import GifEncoder, Mp4Encoder, PngDirEncoder, PngEncoder
from pvrec.render.options import RenderOptions, parse_fit, snapshot_output

FLAG_ERRORS = [
    (Mp4Encoder, dict(fps=0), "--fps must be above 0 and at most 240 frames per second, not 0"),
    (Mp4Encoder, dict(fps=float("nan")),
     "--fps must be above 0 and at most 240 frames per second, not nan"),
    (Mp4Encoder, dict(speed=-1.0), "--speed must be greater than zero, not -1"),
    (Mp4Encoder, dict(every=0), "--every must be at least 1, not 0"),
    (Mp4Encoder, dict(hold=-1.0), "--hold must be zero or more seconds, not -1"),
    (Mp4Encoder, dict(scale=17), "--scale must be a whole number from 1 to 16, not 17"),
    (Mp4Encoder, dict(crf=52), "--crf must be between 0 and 51, not 52"),
    (GifEncoder, dict(frame="2"), "--frame picks the one picture of a .png output; for a video "
                                  "use --start/--end"),
    (PngDirEncoder, dict(frame="2"), "--frame picks the one picture of a .png output; for a "
                                     "video use --start/--end"),
    (PngEncoder, dict(start="1"), "a .png output is one frame: choose it with --frame N (or a "
                                  "time like --frame 12s), not --start/--end/--speed"),
    (PngEncoder, dict(speed=2.0), "a .png output is one frame: choose it with --frame N (or a "
                                  "time like --frame 12s), not --start/--end/--speed"),
    (Mp4Encoder, dict(highlight="cgroup"), "--highlight 'cgroup': the one thing to highlight is "
                                           "'workload' (the pages the recorded command maps)"),
    (Mp4Encoder, dict(highlight="workload", map_only=True),
     "--map-only draws each page in its class colour; --highlight dims some of them"),
    (Mp4Encoder, dict(color_by="node"), "--color-by 'node': pages can be coloured by their page "
                                        "class (the default) or by 'cgroup'"),
    (Mp4Encoder, dict(color_by="cgroup", classes="flags"),
     "--color-by cgroup colours pages by memory cgroup; --classes chooses page classes: give "
     "one or the other"),
    (Mp4Encoder, dict(color_by="cgroup", top=0),
     "--top must be from 1 to 16 (one distinct colour each), not 0"),
    (Mp4Encoder, dict(timeline_metrics="free_pages", map_only=True),
     "--map-only draws the map alone; --timeline-metrics draws a strip under it"),
    (Mp4Encoder, dict(map_only=True, changes=True),
     "--map-only draws the map alone; --changes and --timeline draw on top of the picture "
     "around it"),
]


@pytest.mark.parametrize("encoder, flags, message", FLAG_ERRORS)
def test_each_bad_flag_is_one_exact_message(encoder, flags, message):
    with pytest.raises(PvrecError) as err:
        RenderOptions(**flags).check(encoder)
    assert err.value.message == message and err.value.exit_code == 2


def test_good_flags_pass():
    RenderOptions(fps=240, speed=0.5, every=3, hold=0, scale=16, crf=0).check(Mp4Encoder)
    RenderOptions(frame="-1").check(PngEncoder)
    RenderOptions(color_by="cgroup", top=16, timeline_metrics="free_pages").check(GifEncoder)


def test_fit_and_the_output():
    assert RenderOptions(fit="800 x 600").fit == (800, 600)
    assert parse_fit((640, 480)) == (640, 480)
    with pytest.raises(PvrecError) as err:
        RenderOptions(fit="15x600")
    assert err.value.message == "--fit 15x600 is too small: each side must be at least 16 pixels"
    with pytest.raises(PvrecError) as err:
        RenderOptions(fit="big")
    assert err.value.message == "--fit must be WIDTHxHEIGHT in pixels such as 1920x1080, not 'big'"


def test_the_output_type_is_checked_before_it_may_be_written(tmp_path):
    out = tmp_path / "a.gif"
    assert RenderOptions(force=False).check_output(out) is GifEncoder
    out.write_bytes(b"x")
    with pytest.raises(PvrecError) as err:
        RenderOptions(force=False).check_output(out)
    assert err.value.message == f"output {out} already exists (use --force to replace it)"
    assert RenderOptions(force=True).check_output(out) is GifEncoder
    with pytest.raises(PvrecError) as err:
        RenderOptions().check_output(tmp_path / "no" / "a.mp4")
    assert err.value.message == f"output directory {tmp_path / 'no'} does not exist"


def test_snapshot_writes_a_png():
    assert snapshot_output(Path("x.PNG")) == Path("x.PNG")
    with pytest.raises(PvrecError) as err:
        snapshot_output(Path("x.gif"))
    assert err.value.message == ("snapshot writes one .png picture, not x.gif; for a video of "
                                 "a recording use pvrec render")
