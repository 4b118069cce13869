"""Following one execution of the relay state machine as readable progress lines."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def describe_step(state: str, output: dict[str, Any]) -> str | None:
    """One line for a finished step, from the state it left behind; None for steps not worth a line."""
    try:
        return _describe(state, output)
    except (KeyError, TypeError):
        # A step whose Catch fired leaves the previous value where its result would be (PollStatus's
        # `poll` stays the StartPolling seed); the RecordFailure line that follows says why.
        return None


def _describe(state: str, output: dict[str, Any]) -> str | None:
    if state == "TriggerPlan":
        run = output["run"]
        return f"Testsigma run {run['run_id']} of plan {run.get('plan_id')} ({run['url']})"
    if state == "PollStatus":
        poll = output["poll"]
        if poll["finished"]:
            return f"{poll['status']}: {poll['result']}"
        return f"{poll['status']} (next look in {poll['next_wait_seconds']}s)"
    if state == "CollectResults":
        results = output["results"]
        where = f"in S3, {results['parts']} part(s)" if "s3_prefix" in results else "inline"
        counts = results["counts"]
        return (
            f"{counts['total']} test cases, {results['count']} results ({where}): "
            f"{counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['blocked']} blocked, {counts['untested'] + counts['skipped']} not run"
        )
    if state == "WriteBack":
        return "; ".join(
            f"{o['target']}: {o['status']}, {o.get('written', 0)} written to run {o.get('run_id')}, "
            f"{o.get('unmatched', 0)} unmatched"
            for o in output["writeback"]
        )
    if state == "ReportToCi":
        report = output["report"]
        posted = "posted to the commit" if report["posted"] else "kept in the ledger (no CI status API)"
        return f'{report["state"]}: "{report["description"]}" {posted}'
    if state in ("RecordFailure", "RecordTimeout"):
        return f"recorded failure: {output['failure'].get('reason')}"
    return None


def new_events(sfn: Any, execution_arn: str, after: int) -> list[dict[str, Any]]:
    """The history events with an id above `after`, oldest first, however long the history (a page holds
    at most 1,000). Read newest first, so a poll of a long execution reads one page, not all of them."""
    fresh: list[dict[str, Any]] = []
    for page in _history_pages(sfn, execution_arn):
        fresh += [event for event in page if event["id"] > after]
        if any(event["id"] <= after for event in page):
            break  # reached what an earlier look already saw
    return sorted(fresh, key=lambda event: int(event["id"]))


def _history_pages(sfn: Any, execution_arn: str) -> Iterator[list[dict[str, Any]]]:
    token: dict[str, str] = {}
    while True:
        page = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000, reverseOrder=True, **token)
        yield page["events"]
        if not page.get("nextToken"):
            return
        token = {"nextToken": page["nextToken"]}


def follow(
    sfn: Any, execution_arn: str, emit: Callable[[str], None], timeout: float = 120.0, interval: float = 0.2
) -> dict[str, Any]:
    """Print each step as it finishes; return describe_execution once the execution has ended."""
    started = time.monotonic()
    last = 0
    while True:
        # Described before the history is read, so the last look after the end misses no step.
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        for event in new_events(sfn, execution_arn, last):
            last = int(event["id"])
            details = event.get("stateExitedEventDetails")
            if details:
                line = describe_step(details["name"], json.loads(details.get("output") or "{}"))
                if line:
                    emit(f"[{time.monotonic() - started:6.1f}s] {details['name']:<15} {line}")
        if described["status"] in TERMINAL:
            return described
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"execution {execution_arn} still {described['status']} after {timeout:.0f}s")
        time.sleep(interval)
