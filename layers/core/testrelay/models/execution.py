"""What the relay learns from Testsigma about a run and its test cases."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class CaseStatus(StrEnum):
    """Vendor-neutral case status; each write-back target maps these to its own status ids."""

    PASSED = "passed"
    FAILED = "failed"
    BLOCKED = "blocked"
    SKIPPED = "skipped"
    UNTESTED = "untested"


# Worst first: when several results land on one target case (data-driven iterations, several
# machines) the worst one wins, so a failure on any machine is never hidden by a pass elsewhere.
STATUS_SEVERITY: tuple[CaseStatus, ...] = (
    CaseStatus.FAILED,
    CaseStatus.BLOCKED,
    CaseStatus.UNTESTED,
    CaseStatus.SKIPPED,
    CaseStatus.PASSED,
)


class RunCounts(BaseModel):
    total: int = 0
    passed: int = 0
    failed: int = 0
    blocked: int = 0
    skipped: int = 0
    untested: int = 0

    def add(self, status: CaseStatus) -> None:
        self.total += 1
        setattr(self, status.value, getattr(self, status.value) + 1)

    @classmethod
    def of_cases(cls, results: Iterable[CaseResult]) -> RunCounts:
        """Counts test cases, not iterations: a data-driven case counts once with its worst iteration,
        a case run on several machines once per machine (as Testsigma's own run counts do)."""
        worst: dict[tuple[int, str | None], CaseStatus] = {}
        for result in results:
            key = (result.case_id, result.machine)
            current = worst.get(key)
            if current is None or STATUS_SEVERITY.index(result.status) < STATUS_SEVERITY.index(current):
                worst[key] = result.status
        counts = cls()
        for status in worst.values():
            counts.add(status)
        return counts

    def summary(self) -> str:
        parts = [f"{self.passed} passed", f"{self.failed} failed"]
        if self.blocked:
            parts.append(f"{self.blocked} blocked")
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        if self.untested:
            parts.append(f"{self.untested} not run")
        return ", ".join(parts)


class RunRef(BaseModel):
    """The Testsigma run a job follows; for a JUnit report, the CI run that produced it (run_id 0)."""

    model_config = ConfigDict(frozen=True)

    run_id: int
    url: str
    triggered_at: float = Field(description="epoch seconds when the relay triggered or adopted the run")
    plan_id: int | None = None
    source: Literal["testsigma", "junit"] = "testsigma"

    @property
    def described(self) -> str:
        """How the results' origin reads in a target's run description."""
        text = f"Testsigma run {self.run_id}" if self.source == "testsigma" else "a JUnit report"
        return f"{text} ({self.url})" if self.url else text


class ExecutionStatus(BaseModel):
    run_id: int
    status: str
    result: str
    finished: bool
    message: str | None = None
    started_at: float | None = Field(default=None, description="epoch seconds the run started (vendor clock)")
    duration_seconds: float | None = Field(default=None, description="how long a finished run took (vendor's figure)")


MESSAGE_LIMIT = 4000
"""A case's failure message is kept to this many characters: enough for a CI annotation, small in S3."""


def short_message(value: object) -> str | None:
    """A failure message as a CaseResult keeps it: text, stripped, cut to MESSAGE_LIMIT; None when empty."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    text = text.encode("utf-8", "replace").decode("utf-8")
    return (text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…") or None


def duration_of(value: object, scale: float = 1.0) -> int | None:
    """Milliseconds from a reported duration (`scale` 1000 for seconds); None when absent or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip().replace(",", ""))
    except ValueError:
        return None
    if number != number or number < 0 or number * scale > 2**53:
        return None
    return int(number * scale)


class CaseResult(BaseModel):
    """One test-case result of a Testsigma run (one per iteration or machine), or of a JUnit report
    (`case_id` 0: it has no Testsigma id)."""

    model_config = ConfigDict(frozen=True)

    case_id: int
    name: str
    """The Testsigma case name (the same for every iteration of a data-driven case)."""
    result: str
    status: CaseStatus
    case_result_id: int | None = None
    suite: str | None = None
    machine: str | None = None
    iteration: int | None = None
    ids: tuple[str, ...] | None = None
    """Target case ids the test itself declares (JUnit `<property name="test_case_id">`)."""
    message: str | None = Field(default=None, max_length=MESSAGE_LIMIT)
    """Why the case failed, as the tool said it (a JUnit failure's message); shown in CI annotations."""
    duration_ms: int | None = Field(default=None, ge=0)

    def stored(self) -> dict[str, Any]:
        """The result as the collected results keep it (JSON, absent fields left out)."""
        return self.model_dump(mode="json", exclude_none=True)

    @property
    def label(self) -> str:
        """How the result reads in a description: name, iteration and machine."""
        text = self.name if self.iteration is None else f"{self.name} [iteration {self.iteration}]"
        return f"{text}: {self.result}" + (f" on {self.machine}" if self.machine else "")
