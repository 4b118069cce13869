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

import xml.etree.ElementTree as ET

# Worst first: a case with both an <error> and a <failure> (some runners write both) is an error.
SEVERITY = ("ERROR", "FAILED", "SKIPPED", "PASSED")
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


def local_name(tag: str) -> str:
    """The tag without a namespace: a few generators put the report in one."""
    return tag.rsplit("}", 1)[-1]


def worst(outcomes: list[str]) -> str:
    return min(outcomes or ["PASSED"], key=SEVERITY.index)


def case_outcome(case: ET.Element) -> str:
    found = [CHILD_OUTCOMES[tag] for child in case if (tag := local_name(child.tag)) in CHILD_OUTCOMES]
    for attribute, outcomes in _ATTRIBUTE_OUTCOMES.items():
        value = (case.get(attribute) or "").strip().lower()
        if value in outcomes:
            found.append(outcomes[value])
    return worst(found)
