"""The commit point of a partition when deliveries are settled out of order."""

from __future__ import annotations

from core_plugin_kafka._offsets import PartitionOffsets


def tracker_with(*offsets: int) -> PartitionOffsets:
    tracker = PartitionOffsets()
    for offset in offsets:
        tracker.delivered(offset)
    return tracker


def test_the_commit_point_waits_for_the_first_unsettled_offset() -> None:
    tracker = tracker_with(10, 11, 12)
    tracker.settle(11)
    assert tracker.committable == 10  # 10 is still out: "next to read is 10"
    assert not tracker.settle(11)
    assert tracker.settle(10)
    assert tracker.committable == 12  # 10 and 11 done: commit "next is 12"
    assert tracker.settle(12)
    assert tracker.committable == 13
    assert tracker.unsettled == 0


def test_gaps_in_offsets_are_fine() -> None:
    tracker = tracker_with(3, 7, 9)  # compacted topics and transaction markers leave gaps
    tracker.settle(3)
    assert tracker.committable == 7
    tracker.settle(9)
    assert tracker.committable == 7
    tracker.settle(7)
    assert tracker.committable == 10


def test_settling_forgets_the_nack_count() -> None:
    tracker = tracker_with(0)
    tracker.nacks[0] = 2
    tracker.settle(0)
    assert tracker.nacks == {}


def test_unsettled_counts_what_is_still_out() -> None:
    tracker = tracker_with(0, 1, 2)
    tracker.settle(2)
    assert tracker.unsettled == 2
