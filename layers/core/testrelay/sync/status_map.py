"""Testsigma (and JUnit) results → relay statuses (defaults overridable per target), and the worst-wins rule."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, Field, field_validator

from testrelay.models.execution import STATUS_SEVERITY, CaseStatus

# Testsigma spells results two ways depending on the page (SUCCESS and PASSED, ...): both are accepted.
DEFAULT_RESULT_MAP: dict[str, CaseStatus] = {
    "SUCCESS": CaseStatus.PASSED,
    "PASSED": CaseStatus.PASSED,
    "FAILURE": CaseStatus.FAILED,
    "FAILED": CaseStatus.FAILED,
    "ABORTED": CaseStatus.BLOCKED,
    "STOPPED": CaseStatus.BLOCKED,
    "NOT_EXECUTED": CaseStatus.UNTESTED,
    "QUEUED": CaseStatus.UNTESTED,
}
# JUnit reports (testrelay.junit): an <error> is a test that did not pass, so failed by default;
# a target can say `result_map: {ERROR: blocked}`. These are kept out of DEFAULT_RESULT_MAP so that
# routes written for Testsigma results need no status id for `skipped` (see TestsigmaTmTarget.status_id).
JUNIT_RESULT_MAP: dict[str, CaseStatus] = {
    "ERROR": CaseStatus.FAILED,
    "SKIPPED": CaseStatus.SKIPPED,
}


def relay_status(result: str, overrides: Mapping[str, CaseStatus] | None = None) -> CaseStatus:
    """A result nobody mapped (a custom Testsigma result) is untested: never reported as passed."""
    key = result.upper()
    if overrides and key in overrides:
        return overrides[key]
    return DEFAULT_RESULT_MAP.get(key) or JUNIT_RESULT_MAP.get(key, CaseStatus.UNTESTED)


def worse(a: CaseStatus, b: CaseStatus) -> CaseStatus:
    return a if STATUS_SEVERITY.index(a) <= STATUS_SEVERITY.index(b) else b


class ResultMapping(BaseModel):
    """Per-target overrides of DEFAULT_RESULT_MAP, custom Testsigma results included."""

    result_map: dict[str, CaseStatus] = Field(
        default_factory=dict, description="overrides of the Testsigma result -> status defaults"
    )

    @field_validator("result_map", mode="before")
    @classmethod
    def _upper_results(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(k).upper(): v for k, v in value.items()}
        return value

    def status_for(self, result: str) -> CaseStatus:
        return relay_status(result, self.result_map)

    def produced_statuses(self) -> set[CaseStatus]:
        """Every relay status this mapping can yield (unmapped custom results yield untested)."""
        return {*{**DEFAULT_RESULT_MAP, **self.result_map}.values(), CaseStatus.UNTESTED}
