"""How long the sandbox's Testsigma runs take: one duration for all, or a distribution per plan."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testrelay_local.sandbox import DEMO_PLAN_ID, Sandbox
from tests.integration.sandbox.conftest import Api


def _durations(testsigma: Api, sandbox: Sandbox, runs: int) -> list[float]:
    for _ in range(runs):
        assert testsigma.post("/execution_results", json={"executionId": DEMO_PLAN_ID}).status_code == 200
    return [run["duration_seconds"] for run in sandbox.state()["testsigma"]["runs"].values()]


def test_a_plan_told_a_distribution_runs_that_long_repeatably(testsigma: Api, control: Api, sandbox: Sandbox) -> None:
    # Given the demo plan told: lognormal around 30 minutes, no outliers
    knob = {"plans": {str(DEMO_PLAN_ID): {"median_seconds": 1800, "sigma": 0.1, "seed": 3}}}
    assert control.post("/run_durations", json=knob).status_code == 200
    # When 200 runs are triggered
    first = _durations(testsigma, sandbox, 200)
    # Then their durations spread around the median as asked
    assert statistics.median(first) == pytest.approx(1800, rel=0.05)
    assert statistics.stdev(math.log(d) for d in first) == pytest.approx(0.1, rel=0.25)
    # And the same knob again gives the same sequence
    sandbox.reset()
    assert control.post("/run_durations", json=knob).status_code == 200
    assert _durations(testsigma, sandbox, 200) == first
    # And a run still going shows no duration yet, as Testsigma's status does
    run = testsigma.get("/execution_results/1001").json()
    assert run["status"] != "STATUS_COMPLETED"
    assert run["duration"] is None


def test_outliers_and_the_default(testsigma: Api, control: Api, sandbox: Sandbox) -> None:
    # Given every run an outlier between 2x and 3x the median
    knob = {"plans": {str(DEMO_PLAN_ID): {"median_seconds": 100, "outlier_share": 1, "outlier_factors": [2, 3]}}}
    assert control.post("/run_durations", json=knob).status_code == 200
    durations = _durations(testsigma, sandbox, 20)
    assert all(200 <= d <= 300 for d in durations)
    # And GET shows the knob; a reset goes back to the sandbox's one duration for every run
    assert control.get("/run_durations").json()["plans"][str(DEMO_PLAN_ID)]["outlier_share"] == 1
    sandbox.reset()
    assert control.get("/run_durations").json()["plans"] == {}
    assert _durations(testsigma, sandbox, 1) == [0]


def test_a_wrong_knob_is_refused_with_the_reason(control: Api) -> None:
    for body, field in (
        ({"plans": {"2741": {"median_seconds": 0}}}, "median_seconds"),
        ({"plans": {"2741": {"median_seconds": 60, "outlier_factors": [3, 2]}}}, "outlier_factors"),
        ({"plans": {"2741": {"median_seconds": 60, "bogus": 1}}}, "bogus"),
    ):
        answer = control.post("/run_durations", json=body)
        assert answer.status_code == 400
        assert field in answer.text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=6),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=10,
    )
    | st.fixed_dictionaries({"plans": st.dictionaries(st.text(max_size=4), st.dictionaries(st.text(), st.integers()))})
)
def test_any_body_gets_an_answer_never_a_crash(control: Api, body: Any) -> None:
    assert control.post("/run_durations", json=body).status_code in (200, 400)
