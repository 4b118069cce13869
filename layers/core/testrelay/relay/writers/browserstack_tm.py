"""BrowserStack Test Management: a test run per job holding the matched cases, one result per case.

Order of work, each step checkpointed so a repeat resumes and writes nothing twice:
1. plan (the matched cases with their merged status), built once;
2. the run, created with the first `cases_per_call` cases; the rest queued with `update-test-cases`
   (202: applied asynchronously, so results wait until the run holds every case);
3. results from the checkpointed position, one per call (the documented form) or, where the target
   allows it and the account's API has the undocumented multi-result call, in bulk;
4. optionally the final `run_state`, then closing.

What the documents leave open is detected once and kept in the checkpoint, so a retry or the next
slice does not probe again: `bulk` (the multi-result call works: true/false, probed on the first
batch; any 4xx but 401/403 means no), `cases_per_call` and `results_per_call` (halved on each
`max_test_cases_per_request_exceeded`, never grown back).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from itertools import islice
from typing import Any

from testrelay.errors import VendorOutcomeUnknown
from testrelay.models.execution import CaseStatus, RunRef
from testrelay.models.job import Job
from testrelay.models.routes import BrowserStackTmTarget
from testrelay.observability import logger
from testrelay.relay import services
from testrelay.relay.templates import render
from testrelay.relay.writers.common import (
    RECONCILE_ATTEMPTS,
    Budget,
    Checkpoint,
    HandOver,
    Listing,
    Unconfirmed,
    matched_plan,
    outcome,
    read_back,
    results_bucket,
    unconfirmed_outcome,
    write_batch,
    write_pipelined,
)
from testrelay.settings import get_settings
from testrelay.sync.batching import StoredPlan, batches
from testrelay.sync.matching import TargetCase, custom_field_values, label_names
from testrelay.vendors.browserstack_tm import BrowserStackTmClient, BulkResultsUnsupported, TooManyCases

READY_POLL_SECONDS = 0.5
READY_WAIT_SECONDS = 60.0


def target_case(case: Mapping[str, Any]) -> TargetCase:
    """A BrowserStack test case as matching sees it (doctor's dry-run reads cases the same way)."""
    return TargetCase(
        id=str(case["identifier"]),
        key=str(case["identifier"]),
        title=str(case.get("title") or case.get("name") or ""),
        labels=label_names(case.get("tags")),
        fields=custom_field_values(case.get("custom_fields")),
    )


def _catalog(client: BrowserStackTmClient, project_id: str) -> Iterator[TargetCase]:
    for case in client.list_cases(project_id, width=get_settings().write_back_in_flight):
        yield target_case(case)


def _result_body(target: BrowserStackTmTarget, entry: Mapping[str, Any], configuration: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "test_case_id": entry["case"],
        "test_result": {
            "status": target.status_name(CaseStatus(entry["status"])),
            "description": entry["description"],
        },
    }
    if configuration is not None:
        body["configuration_id"] = configuration
    return body


def _pairs(target: BrowserStackTmTarget, entries: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """With configurations the run holds each case once per configuration, and each gets the result."""
    configurations: list[int | None] = list(target.configurations) or [None]
    for entry in entries:
        for configuration in configurations:
            yield _result_body(target, entry, configuration)


def _pair(result: Mapping[str, Any]) -> tuple[str, Any]:
    """(test case, configuration) of a result body or of a result the API lists."""
    return str(result.get("test_case_id")), result.get("configuration_id")


class _Writer:
    def __init__(self, job: Job, run: RunRef, target: BrowserStackTmTarget, checkpoint: Checkpoint) -> None:
        self.job, self.run, self.target, self.checkpoint = job, run, target, checkpoint
        self.client = services.browserstack_tm()
        self.bucket = results_bucket()

    def _cases_per_call(self) -> int:
        return int(self.checkpoint.record.get("cases_per_call") or self.target.cases_per_call)

    def _narrow(self, key: str, size: int, exc: TooManyCases) -> int:
        """Halves a per-call size after `max_test_cases_per_request_exceeded`, remembered in the checkpoint."""
        if size <= 1:
            raise exc
        smaller = size // 2
        logger.info("fewer test cases per call", target=self.target.name, setting=key, before=size, after=smaller)
        self.checkpoint.save(**{key: smaller})
        return smaller

    def _marker(self) -> str:
        """Set in the run's description so the run list shows which job created it."""
        return f"testrelay job {self.job.id}"

    def _find_run(self, name: str) -> dict[str, Any] | None:
        """The run this job created, by name and marker, in the project's run list (closed ones too)."""
        for existing in self.client.list_runs(self.target.project_id, include_closed="true"):
            if existing.get("name") == name and self._marker() in str(existing.get("description") or ""):
                return existing
        return None

    def create_run(self, plan: StoredPlan) -> str:
        """Creates the job's run once: a creation whose outcome is unknown (or that a dead worker left
        unrecorded: `creating` in the checkpoint) is looked up in the run list before another is made."""
        target = self.target
        size = self._cases_per_call()
        name = render(target.run_name, self.job, self.run.run_id)[:255]
        found = self._find_run(name) if self.checkpoint.record.get("creating") else None
        if found is None:
            self.checkpoint.save(creating=True)
        unknown = 0
        while found is None:
            first = [e["case"] for _, e in zip(range(size), plan.read_from(self.bucket, 0), strict=False)]
            description = render(target.description, self.job, self.run.run_id)
            body: dict[str, Any] = {
                "name": name,
                "description": f"{description}\n\n{self._marker()}" if description else self._marker(),
                "tags": list(target.tags),
                "test_cases": first,
            }
            if target.assignee:
                body["assignee"] = target.assignee
            if target.configurations:
                body["configurations"] = list(target.configurations)
            if target.test_plan_id:
                body["test_plan_id"] = target.test_plan_id
            try:
                found = self.client.create_run(target.project_id, body)
            except TooManyCases as exc:
                size = self._narrow("cases_per_call", size, exc)
            except VendorOutcomeUnknown as exc:
                unknown += 1
                logger.warning("run creation outcome unknown: looking for it", target=target.name, error=str(exc))
                found = self._find_run(name)
                if found is None and unknown >= RECONCILE_ATTEMPTS:
                    raise Unconfirmed(f"run creation unconfirmed after {unknown} attempts: {exc}") from exc
        run_id = str(found["identifier"])
        # The cases the create call carried: a found run holds them as well (cases_per_call is saved).
        first_count = min(size, plan.entries)
        self.checkpoint.save(run_id=run_id, cases_queued=first_count, state="run_created", creating=False)
        logger.info("browserstack run created", job_id=self.job.id, target=target.name, run_id=run_id)
        return run_id

    def queue_cases(self, plan: StoredPlan, run_id: str, budget: Budget) -> bool:
        """Adds the cases the create call could not carry; False when the budget ran out first."""
        size = self._cases_per_call()
        while True:
            try:
                return self._queue_from(plan, run_id, budget, size)
            except TooManyCases as exc:
                # Refused before anything changed: resend the same cases in smaller calls.
                size = self._narrow("cases_per_call", size, exc)

    def _queue_from(self, plan: StoredPlan, run_id: str, budget: Budget, size: int) -> bool:
        """Sends the additions from `cases_queued` on with up to `write_back_in_flight` on their way (a
        single sender would wait out each call's round trip while the budget idles); `cases_queued`
        advances only over a run of confirmed calls. Adding a case the run holds has no effect, so
        what was in flight past it when a call failed or the budget ran out is simply sent again."""
        checkpoint, target = self.checkpoint, self.target
        queued = int(checkpoint.record.get("cases_queued", 0))
        confirmed: dict[int, int] = {}
        """start -> end of each call confirmed beyond `queued`."""
        unsettled: dict[Future[str], tuple[int, int]] = {}
        errors: list[BaseException] = []
        completed = True

        def settle(done: set[Future[str]]) -> None:
            nonlocal queued
            for future in done:
                start, end = unsettled.pop(future)
                error = future.exception()
                if error is None:
                    confirmed[start] = end
                else:
                    errors.append(error)
            before = queued
            while queued in confirmed:
                queued = confirmed.pop(queued)
            if queued > before:
                checkpoint.save(cases_queued=queued)

        width = max(1, get_settings().write_back_in_flight)
        position = queued
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix=f"cases-{target.name}") as pool:
            for chunk in batches(plan.read_from(self.bucket, queued), size):
                if errors:
                    break
                if budget.spent():
                    completed = False
                    break
                cases = [entry["case"] for entry in chunk]
                sent = pool.submit(self.client.add_cases, target.project_id, run_id, cases, target.configurations)
                unsettled[sent] = (position, position + len(cases))
                position += len(cases)
                if len(unsettled) >= width:
                    settle(wait(unsettled, return_when=FIRST_COMPLETED).done)
            while unsettled:
                settle(wait(unsettled, return_when=FIRST_COMPLETED).done)
        if errors:
            raise errors[0]
        return completed

    def ready(self, plan: StoredPlan, run_id: str, budget: Budget) -> bool:
        """Whether the asynchronous additions have landed: the run's case count reaches the plan's."""
        if self.checkpoint.record.get("cases_ready"):
            return True
        expected = plan.entries * max(1, len(self.target.configurations))
        waited_until = time.monotonic() + min(READY_WAIT_SECONDS, max(budget.left(), 0))
        while True:
            if self.client.run_case_count(self.target.project_id, run_id) >= expected:
                self.checkpoint.save(cases_ready=True)
                return True
            if time.monotonic() >= waited_until:
                return False
            time.sleep(READY_POLL_SECONDS)

    def write_results(self, plan: StoredPlan, run_id: str, budget: Budget) -> int | None:
        """Writes from the checkpointed position; the new position, or None when the budget ran out."""
        size = int(self.checkpoint.record.get("results_per_call") or self.target.batch_size)
        while True:
            try:
                return self._write_from(plan, run_id, budget, size)
            except TooManyCases as exc:
                size = self._narrow("results_per_call", size, exc)

    def _listing(self, run_id: str) -> Listing:
        """The run's results: a (case, configuration) pair listed has its result already. Only written
        results are listed, so a read-back reads to the last page."""
        project_id = self.target.project_id
        return Listing(lambda page: self.client.results_page(project_id, run_id, page or 1), _pair)

    def _write_from(self, plan: StoredPlan, run_id: str, budget: Budget, size: int) -> int | None:
        per_case = max(1, len(self.target.configurations))
        checkpoint, project_id = self.checkpoint, self.target.project_id
        written = checkpoint.written
        pairs = _pairs(self.target, plan.read_from(self.bucket, written // per_case))
        # Positions count (case, configuration) pairs; skip the pairs of a case already half written.
        for _ in range(written % per_case):
            next(pairs)
        listing = self._listing(run_id)

        def add_results(results: list[dict[str, Any]]) -> object:
            return self.client.add_results(project_id, run_id, results)

        def add_result(results: list[dict[str, Any]]) -> object:
            return self.client.add_result(project_id, run_id, results[0])

        if self._bulk() and checkpoint.record.get("bulk") is None:
            # The first batch probes the multi-result call, alone: how the rest goes depends on it.
            probe = list(islice(pairs, size))
            if probe and budget.spent():
                return None
            before = checkpoint.pending
            try:
                if probe:
                    write_batch(
                        checkpoint,
                        written + len(probe),
                        probe,
                        add_results,
                        listing,
                        budget,
                        saved=lambda: {"bulk": True},
                    )
                    written += len(probe)
            except BulkResultsUnsupported as exc:
                logger.info(
                    "multi-result call unavailable: one result per call", target=self.target.name, status=exc.status
                )
                known = self._results_present(listing, probe, written, exc.status, budget, before)
                for index, single in enumerate(probe):
                    # The probe was the unit the budget granted above; check only between results.
                    if index and budget.spent():
                        return None
                    write_batch(checkpoint, written + 1, [single], add_result, listing, budget, known)
                    written += 1
        bulk = self._bulk()
        send = add_results if bulk else add_result
        done = write_pipelined(checkpoint, batches(pairs, size if bulk else 1), send, listing, budget)
        return checkpoint.written if done else None

    def _results_present(
        self,
        listing: Listing,
        batch: list[dict[str, Any]],
        written: int,
        status: int | None,
        budget: Budget,
        pending: int,
    ) -> set[tuple[str, Any]]:
        """What the run already holds of the batch, read back once when the multi-result call was
        refused with something else than "no such endpoint": an undocumented call refused may have
        written part of its batch, and no result is ever sent twice. "No such endpoint" wrote
        nothing: the batch is no longer pending (`pending`: as it was before the call)."""
        if status in (404, 405):
            self.checkpoint.save(bulk=False, pending=pending)
            return set()
        self.checkpoint.save(bulk=False)
        return read_back(self.checkpoint, budget, listing, batch, written + len(batch))

    def _bulk(self) -> bool:
        """Whether to send results in bulk: the target allows it and no earlier batch found it missing."""
        return self.target.bulk_results and self.checkpoint.record.get("bulk") is not False

    def finish(self, run_id: str) -> None:
        target, record = self.target, self.checkpoint.record
        if target.run_state and not record.get("run_state_set"):
            self.client.update_run(target.project_id, run_id, {"run_state": target.run_state})
            self.checkpoint.save(run_state_set=True)
        if target.close_run and not record.get("closed"):
            self.client.close_run(target.project_id, run_id)
            self.checkpoint.save(closed=True)


def write_browserstack_tm(
    job: Job, run: RunRef, collected: Mapping[str, Any], target: BrowserStackTmTarget, budget: Budget
) -> dict[str, Any]:
    checkpoint = Checkpoint(job, target.name)
    writer = _Writer(job, run, target, checkpoint)
    plan = matched_plan(job, collected, target, checkpoint, lambda: _catalog(writer.client, target.project_id))
    if plan.entries == 0:
        logger.warning("no result matched a target case", job_id=job.id, target=target.name)
        return outcome(target, plan, "nothing_to_write", 0, None)
    try:
        run_id = str(checkpoint.record.get("run_id") or "") or writer.create_run(plan)
    except Unconfirmed as exc:
        return unconfirmed_outcome(target, plan, checkpoint, None, exc)
    if not writer.queue_cases(plan, run_id, budget) or not writer.ready(plan, run_id, budget):
        return outcome(target, plan, "in_progress", checkpoint.written, run_id)
    try:
        written = writer.write_results(plan, run_id, budget)
    except Unconfirmed as exc:
        return unconfirmed_outcome(target, plan, checkpoint, run_id, exc)
    except HandOver as paused:
        logger.info("write-back handed over during a read-back", target=target.name, reason=str(paused))
        return outcome(target, plan, "in_progress", checkpoint.written, run_id)
    if written is None:
        return outcome(target, plan, "in_progress", checkpoint.written, run_id)
    writer.finish(run_id)
    checkpoint.save(state="written")
    logger.info("results written", job_id=job.id, target=target.name, written=written, unmatched=plan.unmatched)
    return outcome(target, plan, "written", written, run_id)
