"""BrowserStack Test Management API v2: test runs, their test cases and results (HTTP Basic)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any

from testrelay.errors import VendorAuthFailed, VendorPagingStalled, VendorRejected
from testrelay.vendors.http import VendorSession

RATE_LIMIT_PER_MINUTE = 300
# Paced 2% under the documented limit: calls sent 0.2 s apart can still arrive bunched (network and
# server jitter), and the vendor counts arrivals.
PACED_PER_MINUTE = RATE_LIMIT_PER_MINUTE * 98 // 100
MAX_PAGE_SIZE = 300


TOO_MANY_CASES = "max_test_cases_per_request_exceeded"


class BulkResultsUnsupported(Exception):
    """The multi-result call (undocumented) is not there, or wants another body: add results one by one.

    Raised for any 4xx but 401/403 (those propagate as VendorAuthFailed). A 404 is taken as "no such
    endpoint": if it was the run that is missing, the single-result call that follows raises its 404."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class TooManyCases(VendorRejected):
    """The documented `max_test_cases_per_request_exceeded`: send fewer test cases per call (the limit
    itself is not documented)."""


def _too_many(exc: VendorRejected) -> TooManyCases | None:
    if exc.code != TOO_MANY_CASES:
        return None
    narrower = TooManyCases(exc.vendor, str(exc).removeprefix(f"{exc.vendor}: "), exc.status)
    narrower.code = exc.code
    return narrower


class BrowserStackTmClient:
    def __init__(self, session: VendorSession) -> None:
        self.http = session

    @staticmethod
    def _runs(project_id: str) -> str:
        return f"/api/v2/projects/{project_id}/test-runs"

    def pages(
        self,
        path: str,
        key: str,
        page_size: int = MAX_PAGE_SIZE,
        params: Mapping[str, Any] | None = None,
        start: int = 1,
    ) -> Iterator[dict[str, Any]]:
        """Every item of a paged list from page `start` (`p`, `page_size`; `info.next` is null on the
        last page)."""
        page: int | None = start
        while page is not None:
            items, page = self.page_at(path, key, page, page_size, params)
            yield from items

    def pages_ahead(self, path: str, key: str, width: int, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Every item of a paged list, in order, with up to `width` pages requested at once once the
        first page's `info.count` says how many there are: page by page, each round trip would leave
        the rate budget idle. Pages past the count that `info.next` still names are read one by one;
        without a count it is `pages`."""
        items, following, count = self._page(path, key, 1, page_size)
        yield from items
        if following is not None and isinstance(count, int) and width > 1:
            last = -(-count // page_size)
            numbers = iter(range(following, last + 1))
            with ThreadPoolExecutor(max_workers=width, thread_name_prefix="pages") as pool:
                ahead = deque(pool.submit(self._page, path, key, n, page_size) for n in islice(numbers, width))
                while ahead:
                    items, following, _ = ahead.popleft().result()
                    yield from items
                    if following is None:
                        # A count larger than the list (or absurd) must not cost a call per page it claims.
                        for pending in ahead:
                            pending.cancel()
                        break
                    for n in islice(numbers, 1):
                        ahead.append(pool.submit(self._page, path, key, n, page_size))
        if following is not None:
            yield from self.pages(path, key, page_size, start=following)

    def page_at(
        self,
        path: str,
        key: str,
        page: int,
        page_size: int = MAX_PAGE_SIZE,
        params: Mapping[str, Any] | None = None,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Page `page` (from 1) of a paged list: its items and the next page's number (None after the
        last), so a page that fails can be read again on its own."""
        items, following, _ = self._page(path, key, page, page_size, params)
        return items, following

    def _page(
        self, path: str, key: str, page: int, page_size: int, params: Mapping[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], int | None, Any]:
        answer = self.http.request("GET", path, params={**(params or {}), "p": page, "page_size": page_size}) or {}
        info = answer.get("info") or {}
        following = info.get("next")
        if following is not None and (not str(following).isdigit() or int(following) <= page):
            raise VendorPagingStalled(
                "browserstack-tm",
                f"GET {path}: paging does not advance (p={page} answered info.next={str(following)[:40]!r})",
            )
        return list(answer.get(key) or []), int(following) if following is not None else None, info.get("count")

    def list_runs(self, project_id: str, **filters: str) -> list[dict[str, Any]]:
        return list(self.pages(self._runs(project_id), "test_runs", params=filters))

    def list_cases(self, project_id: str, width: int = 1) -> Iterator[dict[str, Any]]:
        """The project's test cases; `width` pages at once (see `pages_ahead`)."""
        return self.pages_ahead(f"/api/v2/projects/{project_id}/test-cases", "test_cases", width)

    def create_run(self, project_id: str, test_run: Mapping[str, Any]) -> dict[str, Any]:
        answer = self.http.request("POST", self._runs(project_id), json={"test_run": dict(test_run)})
        run: dict[str, Any] = answer.get("testrun") or answer["test_run"]
        return run

    def get_run(self, project_id: str, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self.http.request("GET", f"{self._runs(project_id)}/{run_id}")["test_run"]
        return run

    def run_case_count(self, project_id: str, run_id: str) -> int:
        """How many test cases the run holds now (one small page; `info.count` is the total)."""
        answer = self.http.request("GET", f"{self._runs(project_id)}/{run_id}/test-cases", params={"p": 1}) or {}
        return int((answer.get("info") or {}).get("count") or 0)

    def add_cases(self, project_id: str, run_id: str, case_ids: Sequence[str], configurations: Sequence[int]) -> str:
        """Queues the addition (202, applied asynchronously); returns the request's unique_id.
        Adding a case already in the run has no effect, so a repeat is harmless. Raises TooManyCases on
        `max_test_cases_per_request_exceeded` (nothing was changed: the API validates first)."""
        entry: dict[str, Any] = {"test_case_ids": list(case_ids)}
        if configurations:
            entry["configuration_ids"] = list(configurations)
        try:
            answer = self.http.request(
                "PATCH",
                f"{self._runs(project_id)}/{run_id}/update-test-cases",
                json={"test_run": {"add_test_cases": [entry], "preserve_existing_results": True}},
                repeatable=True,
            )
        except VendorRejected as exc:
            narrower = _too_many(exc)
            if narrower is not None:
                raise narrower from exc
            raise
        return str((answer or {}).get("unique_id") or "")

    def add_results(self, project_id: str, run_id: str, results: Sequence[Mapping[str, Any]]) -> int:
        """The multi-result form `POST .../results/bulk` `{"test_results": [...]}`: a capability to detect,
        no document gives it. Raises TooManyCases on `max_test_cases_per_request_exceeded`,
        BulkResultsUnsupported on any other 4xx but 401/403."""
        try:
            answer = self.http.request(
                "POST", f"{self._runs(project_id)}/{run_id}/results/bulk", json={"test_results": list(results)}
            )
        except VendorAuthFailed:
            raise
        except VendorRejected as exc:
            narrower = _too_many(exc)
            if narrower is not None:
                raise narrower from exc
            if exc.status is not None and 400 <= exc.status < 500:
                raise BulkResultsUnsupported(str(exc), exc.status) from exc
            raise
        return len((answer or {}).get("test-results") or results)

    def probe_bulk_results(self, project_id: str, run_id: str) -> bool:
        """For `doctor`: whether the multi-result call accepts this client's body, asked with an empty
        list (nothing is written either way). True when the answer is 2xx or a 400 that is not about the
        body's shape; False for 404/405 or a refusal of the body. Needs an existing run."""
        try:
            self.http.request("POST", f"{self._runs(project_id)}/{run_id}/results/bulk", json={"test_results": []})
        except VendorAuthFailed:
            raise
        except VendorRejected as exc:
            return exc.status == 400 and "test_results" in str(exc)
        return True

    def add_result(self, project_id: str, run_id: str, result: Mapping[str, Any]) -> dict[str, Any]:
        answer = self.http.request("POST", f"{self._runs(project_id)}/{run_id}/results", json=dict(result))
        added: dict[str, Any] = (answer or {}).get("test-result") or {}
        return added

    def list_results(self, project_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self.pages(f"{self._runs(project_id)}/{run_id}/results", "test-results"))

    def results_page(self, project_id: str, run_id: str, page: int) -> tuple[list[dict[str, Any]], int | None]:
        """One page of the run's results (see `page_at`)."""
        return self.page_at(f"{self._runs(project_id)}/{run_id}/results", "test-results", page)

    def update_run(self, project_id: str, run_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        answer = self.http.request(
            "PATCH", f"{self._runs(project_id)}/{run_id}/update", json={"test_run": dict(changes)}, repeatable=True
        )
        run: dict[str, Any] = (answer or {}).get("testrun") or {}
        return run

    def close_run(self, project_id: str, run_id: str) -> None:
        # Closing a closed run leaves it closed: safe to repeat.
        self.http.request("POST", f"{self._runs(project_id)}/{run_id}/close", repeatable=True)
