"""One test case of a JUnit report as the parser yields it: a CaseResult's fields in a tuple.

A report holds hundreds of thousands of cases and the relay stores each as JSON (its CaseResult's
`model_dump(mode="json", exclude_none=True)`): a pydantic model made for each only to be dumped again
cost about as much as the whole parse. A JunitCase is made at the cost of one tuple, gives that
stored form directly, and becomes the CaseResult where one is needed (`case_result`). Its fields are
values the parser made and typed itself; a test holds both forms equal to the validated model's.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from testrelay.models.execution import CaseResult, CaseStatus


class JunitCase(NamedTuple):
    name: str
    result: str
    status: CaseStatus
    suite: str | None = None
    ids: tuple[str, ...] | None = None
    """Target case ids the test declares (its `test_case_id` properties, or trcli's conventions)."""
    message: str | None = None
    duration_ms: int | None = None

    @property
    def case_id(self) -> int:
        """A JUnit case has no Testsigma id."""
        return 0

    def stored(self) -> dict[str, Any]:
        """What `case_result().model_dump(mode="json", exclude_none=True)` gives, without the model."""
        name, result, status, suite, ids, message, duration_ms = self
        stored: dict[str, Any] = {"case_id": 0, "name": name, "result": result, "status": status.value}
        if suite is not None:
            stored["suite"] = suite
        if ids is not None:
            stored["ids"] = list(ids)
        if message is not None:
            stored["message"] = message
        if duration_ms is not None:
            stored["duration_ms"] = duration_ms
        return stored

    def case_result(self) -> CaseResult:
        return CaseResult(case_id=0, **self._asdict())
