"""Property-based fuzzing of what the relay writes on the CI: the markdown summary (check run, pull-request
comment, merge-request note) and the GitHub and Bitbucket annotations. Whatever the case names, messages,
suites, machines, target names and limits, rendering never raises, stays within the limit, and nothing a
test wrote becomes markup: no HTML tag, no table cell break, no line break inside a row, no @mention."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from testrelay.models.execution import CaseResult, CaseStatus, RunCounts
from testrelay.relay import bitbucket_insights, github_checks
from testrelay.relay.ci_digest import compare, digest
from testrelay.relay.ci_summary import SummaryInput, render
from testrelay.vendors.bitbucket import ANNOTATION_DETAILS_LIMIT, ANNOTATION_SUMMARY_LIMIT
from tests.support import demo_job

FUZZ = settings(max_examples=60, deadline=None)
_TEXT = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8"), st.sampled_from("|\\<>&@#*_`[]()!\n\r\t-~")), max_size=200
)


@st.composite
def results(draw: st.DrawFn) -> list[CaseResult]:
    count = draw(st.integers(min_value=0, max_value=30))
    return [
        CaseResult(
            case_id=draw(st.integers(min_value=0, max_value=10)),
            name=draw(_TEXT),
            result=draw(st.sampled_from(["FAILURE", "SUCCESS", "ABORTED", "NOT_EXECUTED", "FAILED"])),
            status=draw(st.sampled_from(list(CaseStatus))),
            suite=draw(st.none() | _TEXT),
            machine=draw(st.none() | _TEXT),
            iteration=draw(st.none() | st.integers(min_value=1, max_value=5)),
            message=draw(st.none() | _TEXT.filter(bool)),
            duration_ms=draw(st.none() | st.integers(min_value=0, max_value=10**10)),
        )
        for _ in range(count)
    ]


outcomes = st.lists(
    st.fixed_dictionaries(
        {
            "target": _TEXT,
            "status": st.sampled_from(["written", "failed", "partial", "nothing_to_write", ""]),
            "written": st.integers(min_value=0, max_value=10**6),
            "unmatched": st.integers(min_value=0, max_value=10**6),
            "run_id": st.none() | _TEXT,
            "run_url": st.none() | _TEXT | st.just("https://example.com/run (1)"),
        }
    ),
    max_size=4,
)


def _unescaped_pipes(line: str) -> int:
    """Pipes that separate cells: those after an even run of backslashes."""
    return sum(1 for match in re.finditer(r"(\\*)\|", line) if len(match.group(1)) % 2 == 0)


@FUZZ
@given(
    cases=results(),
    targets=outcomes,
    route=_TEXT,
    headline=_TEXT,
    run_url=st.none() | _TEXT | st.just("https://app.testsigma.com/ui/td/runs/7"),
    limit=st.integers(min_value=0, max_value=70_000),
    history=st.none() | st.just({"job_id": "earlier", "failing": [], "complete": True}),
)
def test_the_summary_never_breaks_out_of_its_markup_or_limit(
    cases: list[CaseResult],
    targets: list[dict[str, object]],
    route: str,
    headline: str,
    run_url: str | None,
    limit: int,
    history: dict[str, object] | None,
) -> None:
    found = digest(RunCounts.of_cases(cases), cases)
    compare(found, "this-job", history)
    summary = SummaryInput(
        route=route,
        counts=RunCounts.of_cases(cases),
        headline=headline,
        conclusion="failure",
        run_url=run_url,
        run_label="Testsigma run",
        outcomes=targets,
        found=found,
        ci_run_url=run_url,
        job_id="job-1",
    )
    body = render(summary, limit, marker="<!-- testrelay:route=r -->")
    assert len(body) <= limit
    full = render(summary, 10**7, marker="<!-- testrelay:route=r -->")
    # Nothing from the tests opens a tag or mentions anyone
    assert "<" not in full.replace("<!-- testrelay:route=r -->", "").replace("<sub>", "").replace("</sub>", "")
    assert re.search(r"@[\w-]", full) is None
    # Every table row keeps its cells: the failed cases' rows have exactly 4 separators
    if found.failed:
        table = full.split("| Case | Result | Message |", 1)[1].split("\n\n", 1)[0]
        rows = [line for line in table.splitlines()[2:] if line.startswith("|")]
        assert len(rows) == len(found.failed)
        assert all(_unescaped_pipes(row) == 4 for row in rows)


@FUZZ
@given(cases=results())
def test_annotations_always_fit_the_vendors_limits(cases: list[CaseResult]) -> None:
    job = demo_job()
    for index, result in enumerate(cases):
        github = github_checks.annotation(result)
        assert 0 < len(github.get("title", "x")) <= github_checks.TITLE_LIMIT
        assert 0 < len(github["message"]) <= github_checks.MESSAGE_LIMIT
        assert github["annotation_level"] in ("failure", "warning")
        bitbucket = bitbucket_insights.annotation(job, index, result, "https://app.testsigma.com/ui/td/runs/1")
        assert len(bitbucket["summary"]) <= ANNOTATION_SUMMARY_LIMIT
        assert len(bitbucket["details"]) <= ANNOTATION_DETAILS_LIMIT
        assert bitbucket["summary"]
