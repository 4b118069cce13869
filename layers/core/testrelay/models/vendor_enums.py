"""Values the vendors' documents fix, checked when the routes file loads.

The Testsigma enum is the client's own (`testrelay.vendors.testsigma`); this module adds what the routes
model derives from it and the BrowserStack statuses.
"""

from __future__ import annotations

from testrelay.vendors.testsigma import OVERRIDE_RESULTS, RESULT_SPELLINGS

# Testsigma's result enum (`result` of a run and of each test-case result; the override request's
# `result`). The status document's JSON always shows these (`"result": "FAILURE"`), and the override
# document's request example sends `"result": "SUCCESS"`.
TESTSIGMA_RESULTS: tuple[str, ...] = OVERRIDE_RESULTS

# Some pages *display* results as PASSED/FAILED (the prose of the trigger and status fields). Results
# the relay reads may carry either spelling; the override endpoint is only documented with the enum,
# so a rule written with the other spelling is sent as the enum's value.
TESTSIGMA_RESULT_SPELLINGS: dict[str, str] = RESULT_SPELLINGS

# What an override may set: a final result. QUEUED is the state of a case that has not run yet, not
# an outcome a person (or the relay) can decide for a finished run.
TESTSIGMA_OVERRIDE_RESULTS: tuple[str, ...] = tuple(r for r in TESTSIGMA_RESULTS if r != "QUEUED")

# BrowserStack Test Management's system result statuses (lower-case in requests): the test-runs
# document's `test_case_summary` / `overall_progress` keys. Accounts may add custom statuses.
BROWSERSTACK_SYSTEM_STATUSES: tuple[str, ...] = (
    "passed",
    "failed",
    "retest",
    "blocked",
    "skipped",
    "untested",
    "in_progress",
)


def canonical_testsigma_result(result: str) -> str:
    """SUCCESS for PASSED, FAILURE for FAILED; any other result upper-cased as it is."""
    upper = result.strip().upper()
    return TESTSIGMA_RESULT_SPELLINGS.get(upper, upper)
