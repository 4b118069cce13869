"""Following an execution (resync --wait, make run) and explaining a job's outcome, without AWS."""

from __future__ import annotations

import json
from typing import Any

from testrelay_cli.operations import job_reason, target_reason
from testrelay_cli.progress import describe_step, follow


class PagedHistory:
    """Step Functions' GetExecutionHistory: at most 1,000 events a page, continued with nextToken.
    `honours_reverse=False` answers oldest first whatever was asked, as moto does."""

    def __init__(self, events: list[dict[str, Any]], honours_reverse: bool = True) -> None:
        self.events, self.honours_reverse, self.calls = events, honours_reverse, 0

    def get_execution_history(
        self, executionArn: str, maxResults: int, reverseOrder: bool, nextToken: str = "0"
    ) -> Any:
        self.calls += 1
        ordered = self.events[::-1] if reverseOrder and self.honours_reverse else self.events
        start = int(nextToken)
        page = ordered[start : start + min(maxResults, 1000)]
        more = start + len(page) < len(ordered)
        return {"events": page, **({"nextToken": str(start + len(page))} if more else {})}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        return {"status": "SUCCEEDED"}


def _poll_exit(event_id: int) -> dict[str, Any]:
    output = {"poll": {"finished": False, "status": "RUNNING", "next_wait_seconds": 5}}
    return {"id": event_id, "stateExitedEventDetails": {"name": "PollStatus", "output": json.dumps(output)}}


def _long_poll_history(polls: int) -> list[dict[str, Any]]:
    """A long poll: three events a look (entered, scheduled, exited)."""
    events: list[dict[str, Any]] = []
    for look in range(polls):
        events += [{"id": 3 * look + 1}, {"id": 3 * look + 2}, _poll_exit(3 * look + 3)]
    exited = {
        "name": "CollectResults",
        "output": json.dumps(
            {
                "results": {
                    "count": 6,
                    "counts": {"total": 6, "passed": 4, "failed": 1, "blocked": 0, "untested": 1, "skipped": 0},
                }
            }
        ),
    }
    return [*events, {"id": 3 * polls + 1, "stateExitedEventDetails": exited}]


def test_progress_reads_a_history_longer_than_one_page() -> None:
    # Given an execution that polled 1,000 times (3,001 events: more than three pages)
    for honours_reverse in (True, False):
        history = PagedHistory(_long_poll_history(1000), honours_reverse)
        lines: list[str] = []
        follow(history, "arn", lines.append, interval=0)
        # Then every look is shown, and the collected results after them
        assert len(lines) == 1001
        assert "CollectResults" in lines[-1]
        assert "6 test cases" in lines[-1]


def test_a_poll_whose_catch_fired_is_not_a_crash() -> None:
    # PollStatus's Catch keeps the StartPolling seed in `poll` (no status): the RecordFailure line says why
    caught = {"poll": {"attempt": -1, "finished": False}, "error": {"Error": "VendorRejected", "Cause": "{}"}}
    assert describe_step("PollStatus", caught) is None
    failure = {"failure": {"state": "failed", "reason": "VendorRejected: HTTP 404 run 987654 not found"}}
    assert describe_step("RecordFailure", failure) == "recorded failure: VendorRejected: HTTP 404 run 987654 not found"


def test_a_failed_target_has_its_reason() -> None:
    raised = {
        "target": "patient-portal",
        "status": "failed",
        "error": "VendorRejected",
        "cause": json.dumps({"errorType": "VendorRejected", "errorMessage": "testsigma_tm: HTTP 404 no project"}),
    }
    refused = {"target": "overrides", "status": "partial", "refused_count": 2, "refused": [{"reason": "locked"}]}
    written = {"target": "bs", "status": "written"}
    assert target_reason(raised) == "VendorRejected: testsigma_tm: HTTP 404 no project"
    assert target_reason(refused) == "2 result(s) refused, e.g. locked"
    assert target_reason(written) == ""
    assert job_reason({"targets": [raised, written, refused]}) == (
        "patient-portal: VendorRejected: testsigma_tm: HTTP 404 no project; overrides: 2 result(s) refused, e.g. locked"
    )
    assert job_reason({"error": "RunNotFinished: deadline", "targets": []}) == "RunNotFinished: deadline"
