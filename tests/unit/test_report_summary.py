"""What the CI status and the job's end state say about a run's results and each target."""

from __future__ import annotations

from testrelay.models.execution import RunCounts
from testrelay.relay.report import job_state, summarise

COUNTS = RunCounts(passed=4, failed=1, untested=1)
WRITTEN = {"target": "tm", "status": "written", "unmatched": 0}
FAILED = {"target": "bs", "status": "failed", "unmatched": 0, "error": "VendorUnavailable"}


def test_tests_that_failed_with_every_result_written_are_a_failure() -> None:
    assert summarise(COUNTS, [WRITTEN]) == ("failure", "4 passed, 1 failed, 1 not run")
    assert job_state([WRITTEN]) == "reported"


def test_results_that_could_not_be_written_are_an_error_that_says_so_first() -> None:
    state, description = summarise(COUNTS, [WRITTEN, FAILED])
    assert state == "error"
    assert description == "results not written: bs; 4 passed, 1 failed, 1 not run; tm: ok; bs: failed"
    assert job_state([WRITTEN, FAILED]) == "partial"
    assert job_state([FAILED]) == "failed"
    assert job_state([{**FAILED, "status": "partial"}]) == "partial"


def test_an_error_description_stays_within_githubs_limit() -> None:
    outcomes = [{**FAILED, "target": f"target-number-{n}"} for n in range(12)]
    state, description = summarise(COUNTS, outcomes)
    assert state == "error"
    assert description.startswith("results not written: target-number-0, ")
    assert len(description) <= 140
