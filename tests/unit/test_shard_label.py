"""What a sharded CI run's report says about itself, and the route's gathering window, as a user writes them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from testrelay.models.routes import ShardCollecting
from testrelay.models.shards import ShardLabel, ShardRefused


@pytest.mark.parametrize(
    ("shard", "index", "count"), [("3/8", 3, 8), (" 3 / 8 ", 3, 8), ("3", 3, None), ("8/8", 8, 8), ("1000", 1000, None)]
)
def test_a_shard_reads_as_index_of_count(shard: str, index: int, count: int | None) -> None:
    label = ShardLabel.of("7012345678", shard, "2")
    assert (label.index, label.count, label.attempt) == (index, count, 2)


@pytest.mark.parametrize(
    ("run_key", "shard", "attempt", "says"),
    [
        ("k", "0/8", None, "counts from 1"),  # CircleCI's CIRCLE_NODE_INDEX is 0-based: send it + 1
        ("k", "9/8", None, "at most the count"),
        ("k", "1/0", None, "outside 1..1000"),
        ("k", "a/b", None, "is not i/n"),
        ("k", "1/2/3", None, "is not i/n"),
        ("k", None, "0", "whole number from 1 to 1000"),
        ("k", None, "1.5", "whole number"),
        ("", None, None, "run_key must be 1 to 200 printable characters"),
        ("gh-1\n", None, None, "without line breaks"),
        ("x" * 201, None, None, "1 to 200"),
    ],
)
def test_a_wrong_label_is_refused_saying_what_to_send(
    run_key: str, shard: str | None, attempt: str | None, says: str
) -> None:
    with pytest.raises(ShardRefused, match=says):
        ShardLabel.of(run_key, shard, attempt)


def test_the_same_shard_and_attempt_share_a_slot_and_a_later_attempt_has_its_own() -> None:
    first, again, rerun = ShardLabel.of("k", "3/8"), ShardLabel.of("k", "3/8", "1"), ShardLabel.of("k", "3/8", "2")
    assert first.slot("digest-a") == again.slot("digest-b") != rerun.slot("digest-a")
    # Without an index, a report is known by its own identity (its bytes' digest or its upload)
    assert ShardLabel.of("k").slot("digest-a") != ShardLabel.of("k").slot("digest-b")


def test_a_window_that_would_outgrow_the_execution_history_is_refused() -> None:
    assert ShardCollecting(max_wait_seconds=3600, check_seconds=15).reruns == "worst"
    with pytest.raises(ValidationError, match="86400 looks; keep it at most 1500"):
        ShardCollecting(max_wait_seconds=86_400, check_seconds=1)
