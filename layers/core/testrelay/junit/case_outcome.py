"""What a JUnit test case's result is: its children first, then the attributes some runners write instead.

Children: `<error>` (an unexpected exception), `<failure>` (a failed assertion), `<skipped>` (TestReports.jl
writes `<skip/>`); the worst wins where a case has several (GoogleTest writes a failure and a skip for a test
skipped after failing). Surefire's `<flakyFailure>`/`<flakyError>` (failed, then passed on a rerun) are not
results: a case with only those passed; one that failed every rerun also has its `<failure>`/`<error>`.

Attributes: a test that never ran is skipped, never passed, although no child says so: GoogleTest writes
`status="notrun" result="suppressed"` for DISABLED_ tests and `result="skipped"` for GTEST_SKIP, the tst
framework `status="disabled"`, NUnit conversions `status="Ignored"`. A `status` that says failed or errored
counts as well (the worst still wins).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# Worst first: a case with both an <error> and a <failure> (some runners write both) is an error.
SEVERITY = ("ERROR", "FAILED", "SKIPPED", "PASSED")
RANK = {outcome: rank for rank, outcome in enumerate(SEVERITY)}
CHILD_OUTCOMES = {"error": "ERROR", "failure": "FAILED", "skipped": "SKIPPED", "skip": "SKIPPED"}
_ATTRIBUTE_OUTCOMES = {
    "status": {
        "notrun": "SKIPPED",
        "not_run": "SKIPPED",
        "disabled": "SKIPPED",
        "skipped": "SKIPPED",
        "skip": "SKIPPED",
        "ignored": "SKIPPED",
        "pending": "SKIPPED",
        "failed": "FAILED",
        "failure": "FAILED",
        "fail": "FAILED",
        "error": "ERROR",
        "errored": "ERROR",
    },
    "result": {"suppressed": "SKIPPED", "skipped": "SKIPPED", "skip": "SKIPPED"},
}


def worst(outcomes: Sequence[str]) -> str:
    return min(outcomes, key=RANK.__getitem__) if outcomes else "PASSED"


def case_outcome(attributes: Mapping[str, str], children: str) -> str:
    """The case's result from its attributes and the worst outcome of its children (one of CHILD_OUTCOMES'
    values, or PASSED when it has none)."""
    found = children
    for attribute, outcomes in _ATTRIBUTE_OUTCOMES.items():
        value = attributes.get(attribute)
        if value is not None and (value := value.strip().lower()) in outcomes and RANK[outcomes[value]] < RANK[found]:
            found = outcomes[value]
    return found
