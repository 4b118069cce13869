"""The operator CLI's new inputs under any value: `jobs --since` (what an operator types), and the
ledger records `job` explains (whatever an older relay, a hand edit or a failed step left in them)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testrelay.aws.ledger import RETRYABLE_STATES, RUNNING_STATES, SUCCEEDED_STATES
from testrelay_cli.cli import main
from testrelay_cli.operations import failure, job_failed, readable_record
from testrelay_cli.time_args import moment

NOW = 1_796_183_549.0
texts = st.text(max_size=60)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(texts, st.from_regex(r"\d{1,8}[mhdsw]?", fullmatch=True), st.dates().map(str), st.datetimes().map(str))
)
def test_since_is_a_time_or_a_one_line_refusal(value: str) -> None:
    refusal, when = "", None
    try:
        when = moment(value, now=NOW)
    except argparse.ArgumentTypeError as exc:
        refusal = str(exc)
    if refusal:
        assert "\n" not in refusal
        assert "is not a time" in refusal
    else:
        assert isinstance(when, float)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30m", NOW - 1800),
        ("24h", NOW - 86400),
        ("7d", NOW - 7 * 86400),
        ("2026-12-01", 1_796_083_200.0),
        ("2026-12-01T08:00Z", 1_796_112_000.0),
        ("2026-12-01T09:00+01:00", 1_796_112_000.0),
    ],
)
def test_since_reads_durations_dates_and_times(value: str, expected: float) -> None:
    assert moment(value, now=NOW) == expected


def test_a_bad_since_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "--since", "yesterday", "--json"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error.startswith("jobs: argument --since: 'yesterday' is not a time: give a duration ago")


targets = st.lists(
    st.fixed_dictionaries(
        {"target": texts, "status": st.sampled_from(["written", "failed", "partial", "skipped"]) | texts},
        optional={
            "error": texts,
            "cause": texts | st.builds(json.dumps, st.dictionaries(texts, scalars)),
            "refused": st.lists(st.dictionaries(texts, texts) | texts, max_size=3),
            "written": st.integers(),
        },
    ),
    max_size=4,
)
records = st.fixed_dictionaries(
    {
        "job_id": st.text(min_size=1, max_size=40),
        "state": st.sampled_from([*RETRYABLE_STATES, *RUNNING_STATES, *SUCCEEDED_STATES]) | texts,
    },
    optional={
        "attempt": st.integers(min_value=1, max_value=50),
        "error": texts,
        "dispatch_error": texts,
        "targets": targets,
        "job": texts | st.builds(json.dumps, st.dictionaries(texts, scalars)),
    },
)


@settings(max_examples=400, deadline=None)
@given(records, st.none() | texts)
def test_job_explains_any_failed_record_in_one_line(record: dict[str, Any], step: str | None) -> None:
    readable = readable_record(record)
    json.dumps(readable, default=str)
    if not job_failed(record):
        return
    explained = failure(record, step)
    assert "\n" not in explained["summary"]
    one_line = " ".join
    assert explained["summary"].startswith(one_line(record["job_id"].split()))
    assert one_line(explained["next"].split()) in explained["summary"]
