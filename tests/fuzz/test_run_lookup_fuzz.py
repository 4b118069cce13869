"""Property-based fuzzing of what the trigger-once look-up reads from Testsigma after a crash: whatever
the status answers hold (any JSON, a plan id that differs, `lastRunId` missing, not a number, smaller
than the run noted, runs gone), `find_run_after` answers a run of the job only when its `buildNo`
carries the job's marker, says it cannot tell rather than guessing, and raises nothing."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from testrelay.errors import VendorRejected
from testrelay.vendors import testsigma
from testrelay.vendors.testsigma import marked_build_number

PLAN, JOB, SEEN = 2741, "octo-checkout-abc", 1000
OURS = marked_build_number("octo@abc #1", JOB)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2000) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
views = (
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.integers(990, 1030),
            "executionId": st.sampled_from([PLAN, str(PLAN), 99, None]),
            "buildNo": st.sampled_from([OURS, "someone else", None, 7]),
            "execution": st.none()
            | json_values
            | st.fixed_dictionaries(
                {},
                optional={
                    "id": st.sampled_from([PLAN, str(PLAN), 1, None]),
                    "lastRunId": st.integers(990, 1030) | json_values,
                },
            ),
        },
    )
    | json_values
)


class _Answers:
    """A Testsigma session whose `GET /execution_results/<id>` answers are drawn (404 where none)."""

    def __init__(self, answers: dict[int, Any]) -> None:
        self.answers = answers
        self.reads = 0

    def request(self, method: str, path: str, **_: Any) -> Any:
        assert method == "GET"
        self.reads += 1
        run_id = int(path.rsplit("/", 1)[1])
        if run_id not in self.answers:
            raise VendorRejected("testsigma", f"GET {path}: HTTP 404", 404)
        return self.answers[run_id]


def _view(run_id: int, build_no: str, plan: int = PLAN, latest: int | None = None) -> dict[str, Any]:
    return {"id": run_id, "executionId": plan, "buildNo": build_no, "execution": {"id": plan, "lastRunId": latest}}


def test_the_job_s_run_is_found_behind_runs_someone_else_started() -> None:
    # Given the noted run, the job's run after it, then two runs of others (one of another plan)
    answers = {SEEN: _view(SEEN, "earlier", latest=1003), 1001: _view(1001, OURS), 1002: _view(1002, "x", 7)}
    answers[1003] = _view(1003, "manual")
    client = testsigma.TestsigmaClient(_Answers(answers))  # type: ignore[arg-type]
    # Then the look-up walks back from the plan's latest run to the job's
    assert client.find_run_after(PLAN, OURS, JOB, SEEN) == (1001, True)
    # And with the job's run absent, every run since the noted one was read: certainly none
    del answers[1001]
    assert client.find_run_after(PLAN, OURS, JOB, SEEN) == (None, True)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.integers(990, 1030), views, max_size=12))
def test_the_documented_look_up_never_guesses_and_never_raises(answers: dict[int, Any]) -> None:
    session = _Answers(answers)
    client = testsigma.TestsigmaClient(session)  # type: ignore[arg-type]
    run_id, certain = client.find_run_after(PLAN, OURS, JOB, SEEN)
    if run_id is not None:
        # A run is adopted only if its own status answer says it is this plan's run with the job's marker
        view = answers[run_id]
        assert certain
        assert isinstance(view, dict)
        assert str(view.get("executionId")) == str(PLAN)
        assert view.get("buildNo") == OURS
    assert session.reads <= 21  # the noted run, then at most 20 more
