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
    assert (cues.clamped, cues.dropped, cues.segments) == (1, 1, 2)


def test_a_long_cue_is_split_with_its_words():
    cues = cues_from([{"start": 0, "end": 20, "text": "one two three four five six"}],
                     duration=None, max_cue=7)
    assert _times(cues) == [(0, 6.667), (6.667, 13.333), (13.333, 20)]
    assert [c.text for c in cues.cues] == ["one two", "three four", "five six"]
    assert all(c.end - c.start <= 7 for c in cues.cues)


def test_bad_segments_are_skipped_not_fatal_and_counted():
    cues = cues_from([{"start": "x", "end": 1, "text": "a"}, {"start": 0, "text": "b"},
                      {"start": float("nan"), "end": 1, "text": "c"}, "not a segment",
                      {"start": 1, "end": 2}], duration=None, max_cue=5)
    assert cues.cues == ()
    assert (cues.dropped, cues.segments) == (3, 3)


# -- issue 18, item 6: every plausible reading before a cue is given up ----------------
def test_the_three_lost_segments_of_the_issue_are_all_kept():
    # A cue less than 0.2 s after another, one whose start is after its end, and times
    # in milliseconds where seconds were asked: each was dropped silently before.
    cues = cues_from([
        {"start": 0.0, "end": 1.0, "text": "one"},
        {"start": 0.1, "end": 0.9, "text": "two"},
        {"start": 1.8, "end": 1.2, "text": "three"},
        {"start": 2500, "end": 2900, "text": "four"},
    ], duration=3.0, max_cue=7)
    assert " ".join(c.text for c in cues.cues) == "one two three four"
    assert _times(cues) == [(0.0, 1.0), (1.2, 1.8), (2.5, 2.9)]
    assert (cues.clamped, cues.dropped) == (0, 0)
    assert dict(cues.repaired) == {"joined to the cue before": 1, "start after end": 1,
                                   "milliseconds": 1}


def test_a_cue_too_short_to_read_is_lengthened_not_dropped():
    cues = cues_from([{"start": 1.0, "end": 1.05, "text": "hi"}], duration=None, max_cue=7)
    assert _times(cues) == [(1.0, 1.2)]


def test_an_absurd_time_is_dropped_and_never_reaches_timedelta():
    segs = [{"start": 0, "end": 1, "text": "fine"}, {"start": 1e20, "end": 1e21, "text": "x"},
            {"start": 0, "end": 1e300, "text": "y"}]
    cues = cues_from(segs, duration=None, max_cue=7)
    assert [c.text for c in cues.cues] == ["fine"] and cues.dropped == 2
    assert len(list(srt.parse(render_srt(cues.cues)))) == 1
    assert len(webvtt.from_string(render_vtt(cues.cues)).captions) == 1


def test_the_verdict_small_losses_are_a_note_larger_ones_incomplete():
    from mediasync.rules.completeness import cue_verdict

    assert cue_verdict(20, 1, 1) == (None, "1 of 20 cue(s) dropped (no usable time in the "
                                           "media), 1 of 20 cut at the end of the media")
    assert cue_verdict(20, 0, 3)[0] == "3 of 20 cue(s) dropped (no usable time in the media)"
    assert cue_verdict(0, 0, 0) == (None, None)  # silence: no cue, nothing lost
    assert cue_verdict(4, 0, 0, (("milliseconds", 1),)) == (
        None, "1 cue(s) mended (milliseconds ×1)")


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
