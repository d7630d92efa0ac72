"""Subtitle cues from a model's segments: ordered, apart, within the media, short enough."""

from __future__ import annotations

import html

import srt
import webvtt

from mediasync.outputs.subtitles import Cue, cues_from, render_srt, render_vtt


def _times(cues):
    return [(round(c.start, 3), round(c.end, 3)) for c in cues.cues]


def test_cues_are_sorted_and_overlaps_trimmed():
    cues = cues_from([
        {"start": 4.0, "end": 6.0, "text": "second"},
        {"start": 0.5, "end": 4.5, "text": "first"},
        {"start": 4.05, "end": 5.0, "text": "  "},  # empty: dropped
    ], duration=None, max_cue=10)
    assert [c.text for c in cues.cues] == ["first", "second"]
    assert _times(cues) == [(0.5, 4.0), (4.0, 6.0)]


def test_times_past_the_end_are_clamped_and_counted():
    cues = cues_from([
        {"start": 1.0, "end": 2.5, "text": "runs over"},
        {"start": 3.0, "end": 4.0, "text": "after the end"},
    ], duration=2.0, max_cue=10)
    assert _times(cues) == [(1.0, 2.0)]
    assert cues.clamped == 2


def test_a_long_cue_is_split_with_its_words():
    cues = cues_from([{"start": 0, "end": 20, "text": "one two three four five six"}],
                     duration=None, max_cue=7)
    assert _times(cues) == [(0, 6.667), (6.667, 13.333), (13.333, 20)]
    assert [c.text for c in cues.cues] == ["one two", "three four", "five six"]
    assert all(c.end - c.start <= 7 for c in cues.cues)


def test_bad_segments_are_skipped_not_fatal():
    cues = cues_from([{"start": "x", "end": 1, "text": "a"}, {"start": 0, "text": "b"},
                      {"start": float("nan"), "end": 1, "text": "c"},
                      {"start": 2, "end": 1, "text": "backwards"}], duration=None, max_cue=5)
    assert cues.cues == ()


def test_srt_and_vtt_parse_back_with_speakers():
    cues = [Cue(0.0, 1.5, "Hello <there> --> you", "Ann"), Cue(1.5, 3.25, "Bye & thanks")]
    parsed = list(srt.parse(render_srt(cues)))
    assert [p.content for p in parsed] == ["Ann: Hello <there> --> you", "Bye & thanks"]
    assert parsed[1].end.total_seconds() == 3.25
    vtt = webvtt.from_string(render_vtt(cues))
    assert [(c.start, c.end) for c in vtt.captions] == [
        ("00:00:00.000", "00:00:01.500"), ("00:00:01.500", "00:00:03.250")]
    assert vtt.captions[0].voice == "Ann"
    # Escaped as WebVTT requires; players unescape it.
    assert html.unescape(vtt.captions[1].text) == "Bye & thanks"
    assert "-->" not in vtt.captions[0].raw_text
