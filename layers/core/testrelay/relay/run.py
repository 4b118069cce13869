"""Starting (or adopting) the Testsigma run and following it until it finishes."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from testrelay.errors import VendorOutcomeUnknown
from testrelay.models.execution import ExecutionStatus, RunRef
from testrelay.models.job import Job
from testrelay.observability import logger
from testrelay.relay import ci_feedback, clock, polling, services
from testrelay.relay.templates import render
from testrelay.vendors.testsigma import RUN_MARKER_KEY, marked_build_number

_LISTING_SLACK_SECONDS = 300
"""How far before the noted send time a listed run may have started (clock skew between relay and vendor)."""


def trigger_plan(job: Job) -> RunRef:
    """Trigger the route's test plan once per job (adopt the existing run of a result-sync job, the CI
    run of a JUnit report); a repeat returns the run recorded in the ledger."""
    ledger = services.ledger()
    record = ledger.get_job(job.id) or {}
    recorded = record.get("testsigma_run")
    if recorded:
        logger.info("run already recorded for job", job_id=job.id, run_id=recorded["run_id"])
        return _for_this_attempt(job, RunRef.model_validate(recorded), record)

    if job.kind == "junit":
        # The results are in the report: the "run" is the CI run that produced it; nothing to trigger or poll.
        report = RunRef(run_id=0, url=job.event.run_url or "", triggered_at=clock.now(), source="junit")
        return RunRef.model_validate(ledger.claim_run(job.id, report.model_dump()))

    plan = job.route.testsigma
    # A result-sync job adopts its run; a trigger job starts one, once even across a crash.
    run_id = job.testsigma_run_id if job.testsigma_run_id is not None else _trigger_once(job)
    run = RunRef(
        run_id=run_id,
        url=services.testsigma_run_url(run_id),
        triggered_at=clock.now(),
        plan_id=plan.test_plan_id,
    )
    claimed = RunRef.model_validate(ledger.claim_run(job.id, run.model_dump()))
    logger.info("testsigma run started", job_id=job.id, run_id=claimed.run_id, plan_id=plan.test_plan_id)
    ci_feedback.report_started(job, claimed)
    return claimed


def _for_this_attempt(job: Job, run: RunRef, record: dict[str, Any]) -> RunRef:
    """A retried job (attempt 2 and on) follows the run its first attempt recorded, with the route's
    polling deadline counted from this attempt's first look, not from the first trigger (a job that
    timed out would otherwise time out again at once). Noted in the ledger, so a repeat of this step
    within the attempt keeps the same deadline."""
    attempt = int(record.get("attempt") or 1)
    if attempt < 2 or run.source != "testsigma":
        return run
    if int(record.get("followed_from_attempt") or 0) != attempt:
        record = {**record, "followed_from_attempt": attempt, "followed_from": clock.now()}
        services.ledger().update_job(job.id, followed_from_attempt=attempt, followed_from=record["followed_from"])
    logger.info("retried job follows its recorded run afresh", job_id=job.id, run_id=run.run_id, attempt=attempt)
    return run.model_copy(update={"triggered_at": float(record["followed_from"])})


def _trigger_once(job: Job) -> int:
    """Start the plan's run, or find the one an earlier attempt of this job started.

    Every run the relay starts carries the job id (in `buildNo` and `runtimeData`), and the ledger
    notes `trigger_sent_at` before the POST, with the plan's latest run the relay had seen
    (`plan_run_before`). An attempt that finds that note without a recorded run follows one that died
    (or lost the answer) after sending: it looks the run up by its marker before triggering again. An
    answer lost outright (time-out or 5xx) is looked up at once too."""
    plan = job.route.testsigma
    client = services.testsigma()
    ledger = services.ledger()
    build_no = marked_build_number(render(plan.build_number, job), job.id)
    record = ledger.get_job(job.id) or {}
    sent_at = record.get("trigger_sent_at")
    if sent_at is not None:
        adopted = _earlier_run(job, build_no, float(sent_at), record.get("plan_run_before"))
        if adopted is not None:
            return adopted
    seen = ledger.plan_last_run(plan.test_plan_id)
    ledger.update_job(job.id, trigger_sent_at=clock.now(), plan_run_before=seen)
    try:
        answer = client.trigger(
            plan.test_plan_id,
            environment_id=plan.environment_id,
            build_number=build_no,
            runtime_data={**(plan.runtime_data or {}), RUN_MARKER_KEY: job.id},
        )
    except VendorOutcomeUnknown:
        adopted = _earlier_run(job, build_no, clock.now(), seen, lost_answer=True)
        if adopted is None:
            raise
        return adopted
    run_id = int(answer["id"])
    ledger.note_plan_run(plan.test_plan_id, run_id)
    return run_id


def _earlier_run(
    job: Job, build_no: str, sent_at: float, seen_run: int | None, lost_answer: bool = False
) -> int | None:
    """The run an earlier trigger of this job started, found by its marker; None when there is none.

    Where the account lists runs (`GET /execution_results`, undocumented, detected) the listing is
    searched; where it does not, the plan's latest run is read the documented way, from a run seen
    before the trigger (`seen_run`: its status view names the plan's `lastRunId`). When neither can
    tell (no listing and no run of the plan ever seen, or too many runs since), that is logged: after
    a crash the caller then triggers again; after a lost answer (`lost_answer`) it fails the step."""
    plan = job.route.testsigma
    client = services.testsigma()
    since_ms = int((sent_at - _LISTING_SLACK_SECONDS) * 1000)
    found = client.find_runs(plan.test_plan_id, build_no, job.id, since_ms=since_ms)
    if found is None:
        run_id, certain = (
            (None, False)
            if seen_run is None
            else client.find_run_after(plan.test_plan_id, build_no, job.id, int(seen_run))
        )
        if run_id is not None:
            return _adopted(job, run_id, via="the plan's latest run")
        if certain:
            logger.info("no run of an earlier trigger found", job_id=job.id, plan_id=plan.test_plan_id, via="lastRunId")
            return None
        then = (
            "failing the step: the run may exist, and a second trigger could start another"
            if lost_answer
            else "triggering again, which may start a second run"
        )
        logger.warning(
            f"an earlier trigger of this job got no recorded run, and this Testsigma account has no run "
            f"listing (GET /execution_results) to look it up, nor a run of the plan seen before to read "
            f"the plan's latest run from: {then}",
            job_id=job.id,
            plan_id=plan.test_plan_id,
            build_no=build_no,
            seen_run=seen_run,
        )
        return None
    if not found:
        logger.info("no run of an earlier trigger found", job_id=job.id, plan_id=plan.test_plan_id)
        return None
    return _adopted(job, max(int(run["id"]) for run in found), via="the run listing", matches=len(found))


def _adopted(job: Job, run_id: int, **facts: Any) -> int:
    logger.info("run started by an earlier attempt adopted", job_id=job.id, run_id=run_id, **facts)
    services.ledger().note_plan_run(job.route.testsigma.test_plan_id, run_id)
    return run_id


def first_look_at(job: Job, run: RunRef) -> str:
    """The Wait timestamp of the first look. A run the relay just triggered has just answered that it
    was created: the trigger counts as the first look. An adopted run is looked at at once."""
    now = clock.now()
    if job.kind != "trigger":
        return polling.timestamp(now)
    settings = job.route.polling
    deadline = polling.deadline_at(settings, run)
    at = polling.next_look(
        settings, now=now, start=run.triggered_at, deadline_at=deadline, looks=1, window=_window(job)
    )
    return polling.timestamp(at)


def _window(job: Job) -> float | None:
    if job.route.polling.mode != "predictive":
        return None
    return polling.first_look(services.ledger().run_durations(polling.plan_key(job)), job.route.polling.max_lag_share)


def poll_status(job: Job, run: RunRef, previous: dict[str, Any] | None) -> dict[str, Any]:
    """One look at the run: says whether it finished, whether the deadline passed, and when to look next.
    The first look reads the plan's history (predictive mode) and carries its window on; the look that
    sees the run finished adds its duration to that history."""
    settings = job.route.polling
    if previous:
        # An execution started before predictive polling counts `attempt` from its seed of -1.
        looks = int(previous.get("looks", int(previous.get("attempt", -1)) + 1))
        window = previous.get("window")
    else:
        # The trigger's answer counted as the first look of a triggered run.
        looks, window = (1 if job.kind == "trigger" else 0), _window(job)
    status: ExecutionStatus = services.testsigma().status(run.run_id)
    now = clock.now()
    deadline_passed = not status.finished and now > run.triggered_at + settings.deadline_seconds
    if previous is None or (previous.get("status"), previous.get("result")) != (status.status, status.result):
        # Only a change is written: each write of the job's item costs its size in write units.
        services.ledger().update_job(
            job.id,
            state="completed_run" if status.finished else "running",
            run_status=status.status,
            run_result=status.result,
        )
    looks += 1
    if status.finished:
        _remember_duration(job, run, status, now)
    start = polling.anchor(run, status, now)
    at = polling.next_look(
        settings, now=now, start=start, deadline_at=polling.deadline_at(settings, run), looks=looks, window=window
    )
    logger.info(
        "testsigma run polled",
        job_id=job.id,
        run_id=run.run_id,
        status=status.status,
        result=status.result,
        look=looks,
        mode="predictive" if window is not None else "backoff",
    )
    return {
        "looks": looks,
        "status": status.status,
        "result": status.result,
        "finished": status.finished,
        "deadline_passed": deadline_passed,
        "window": window,
        "next_wait_seconds": max(0, round(at - now)),
        "next_look_at": polling.timestamp(at),
    }


def _remember_duration(job: Job, run: RunRef, status: ExecutionStatus, now: float) -> None:
    seconds = polling.finished_duration(job, run, status, now)
    if seconds is None or seconds <= 0:
        return
    try:
        services.ledger().record_run_duration(polling.plan_key(job), run.run_id, seconds, keep=polling.HISTORY_SIZE)
    except (BotoCoreError, ClientError) as exc:
        # History only tunes polling: a failed write costs the next runs some precision, not this job.
        logger.warning("run duration not recorded", job_id=job.id, run_id=run.run_id, error=str(exc))
