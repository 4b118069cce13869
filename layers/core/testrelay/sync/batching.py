"""The write plan of one target: every target case once, with its merged status, in a fixed order.

Built by streaming the collected results once, stored as JSON-lines parts in S3, then written in
batches from a position kept in the ledger. The same results always give the same plan, so a retried
invocation cuts exactly the same batches as the one it resumes, and the position says what is done.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from testrelay.aws.results_store import put_part, read_part
from testrelay.models.execution import STATUS_SEVERITY, CaseResult, CaseStatus
from testrelay.sync.matching import CaseMatcher, Lookup

DESCRIPTION_LIMIT = 1000
UNMATCHED_LISTED = 20
# Results held (as look-ups, a few hundred bytes each) while the catalog is fetched, before waiting for it.
HELD_LIMIT = 100_000
PARALLEL_PUTS = 4


class StoredPlan(BaseModel):
    """Where a plan lives and what it holds; kept in the target's ledger record."""

    prefix: str
    parts: int
    part_size: int
    entries: int = Field(description="target cases (or overrides) to write")
    unmatched: int = 0
    unmatched_cases: list[str] = Field(default_factory=list)
    catalog_size: int | None = Field(default=None, description="cases in the target's list, when it was fetched")

    def read_from(self, bucket: str, position: int) -> Iterator[dict[str, Any]]:
        """Entries from `position` (0-based) to the end, one part in memory at a time."""
        part, skip = divmod(position, self.part_size)
        for index in range(part, self.parts):
            for offset, entry in enumerate(read_part(bucket, self.prefix, index)):
                if index == part and offset < skip:
                    continue
                yield entry


@dataclass
class _Merged:
    severity: int
    description: str
    results: int = 1


@dataclass
class MergedCases:
    """Target case id -> worst status and a description listing each result (capped)."""

    cases: dict[str, _Merged] = field(default_factory=dict)
    unmatched: int = 0
    unmatched_cases: list[str] = field(default_factory=list)

    def add(self, case_id: str, status: CaseStatus, line: str) -> None:
        severity = STATUS_SEVERITY.index(status)
        entry = self.cases.get(case_id)
        if entry is None:
            self.cases[case_id] = _Merged(severity, line[:DESCRIPTION_LIMIT])
            return
        entry.severity = min(entry.severity, severity)
        entry.results += 1
        if len(entry.description) < DESCRIPTION_LIMIT:
            entry.description = f"{entry.description}; {line}"[:DESCRIPTION_LIMIT]

    def miss(self, described: str) -> None:
        self.unmatched += 1
        if len(self.unmatched_cases) < UNMATCHED_LISTED:
            self.unmatched_cases.append(described)

    def entries(self) -> Iterator[dict[str, Any]]:
        for case_id in sorted(self.cases):
            entry = self.cases[case_id]
            yield {
                "case": case_id,
                "status": STATUS_SEVERITY[entry.severity].value,
                "description": entry.description,
                "results": entry.results,
            }


def merge_results(
    results: Iterable[CaseResult], matcher: CaseMatcher, status_of: Callable[[str], CaseStatus]
) -> MergedCases:
    """Every result lands on each target case it matches; several results on one case: the worst wins.

    The catalog is fetched (in the background) at the first result that needs it; until it is there the
    results are read, parsed and held as their look-ups (HELD_LIMIT at most, then it is waited for),
    so the catalog's pages and the reading of the results overlap. Held results are merged in their
    order, so the plan is the same either way."""
    merged = MergedCases()
    held: list[tuple[Lookup, CaseStatus, str, int]] = []

    def apply(targets: list[str], status: CaseStatus, label: str, case_id: int) -> None:
        if not targets:
            merged.miss(f"{case_id} {label}")
            return
        for target in targets:
            merged.add(target, status, label)

    def release() -> None:
        for lookup, status, label, case_id in held:
            apply(matcher.resolve(lookup), status, label, case_id)
        held.clear()

    try:
        for result in results:
            status, label, case_id = status_of(result.result), result.label, result.case_id
            if not held and matcher.catalog_loaded:
                # No look-up first: `match` takes no keys for the modes after the one that finds anything.
                apply(matcher.match(result), status, label, case_id)
                continue
            lookup = matcher.lookup(result)
            if not held and not matcher.needs_catalog(lookup):
                apply(matcher.resolve(lookup), status, label, case_id)
                continue
            matcher.load_in_background()
            held.append((lookup, status, label, case_id))
            if len(held) >= HELD_LIMIT or matcher.catalog_loaded:
                release()
        release()
    finally:
        matcher.close()
    return merged


def store_plan(
    bucket: str,
    prefix: str,
    entries: Iterable[dict[str, Any]],
    batch_size: int,
    part_size: int,
    unmatched: int = 0,
    unmatched_cases: list[str] | None = None,
    catalog_size: int | None = None,
) -> StoredPlan:
    # Parts hold whole batches, so a batch never spans two parts.
    size = batch_size * max(1, part_size // batch_size)
    buffer: list[dict[str, Any]] = []
    parts = count = 0
    # The parts go up a few at once (no more held than that, the one being filled among them): put one
    # after another they are a pause of the vendor calls, an S3 round trip each, between the case list
    # and the run's creation.
    with ThreadPoolExecutor(max_workers=PARALLEL_PUTS, thread_name_prefix="plan-part") as pool:
        uploads: deque[Future[None]] = deque()
        for entry in entries:
            buffer.append(entry)
            count += 1
            if len(buffer) == size:
                uploads.append(pool.submit(put_part, bucket, prefix, parts, buffer))
                parts, buffer = parts + 1, []
                if len(uploads) == PARALLEL_PUTS:
                    uploads.popleft().result()
        if buffer:
            uploads.append(pool.submit(put_part, bucket, prefix, parts, buffer))
            parts += 1
        for upload in uploads:
            upload.result()
    return StoredPlan(
        prefix=prefix,
        parts=parts,
        part_size=size,
        entries=count,
        unmatched=unmatched,
        unmatched_cases=list(unmatched_cases or []),
        catalog_size=catalog_size,
    )


def batches(entries: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
