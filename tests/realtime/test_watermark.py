"""The seq watermark: applied events, events of ours ahead of a gap, and the jump."""

from __future__ import annotations

from collab.realtime.watermark import SeqWatermark


def test_consecutive_events_advance_the_watermark() -> None:
    mark = SeqWatermark(4)
    mark.mark(5)
    mark.mark(6)
    assert mark.seq == 6
    assert not mark.has_gap


def test_an_event_ahead_of_a_gap_waits_until_the_gap_is_filled() -> None:
    mark = SeqWatermark(0)
    mark.mark(3)
    assert (mark.seq, mark.has_gap) == (0, True)
    assert mark.contains(3)
    assert not mark.contains(1)
    mark.mark(1)
    assert mark.seq == 1
    mark.mark(2)
    assert (mark.seq, mark.has_gap) == (3, False)


def test_old_and_repeated_events_change_nothing() -> None:
    mark = SeqWatermark(7)
    mark.mark(3)
    mark.mark(7)
    assert (mark.seq, mark.has_gap) == (7, False)
    assert mark.contains(7)
    assert not mark.contains(8)


def test_is_next_names_only_the_following_seq() -> None:
    mark = SeqWatermark(2)
    assert mark.is_next(3)
    assert not mark.is_next(2)
    assert not mark.is_next(4)
