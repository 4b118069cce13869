"""Testsigma Test Management API: create a test run, set its test cases' statuses."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import requests

from testrelay.errors import VendorAuthFailed, VendorPagingStalled, VendorRejected
from testrelay.observability import logger
from testrelay.vendors.http import VendorSession


def is_tm_throttle(response: requests.Response) -> bool:
    """Testsigma TM answers HTTP 500 {"message": "rate limit exceeded"} when throttling, not 429."""
    if response.status_code == 429:
        return True
    if response.status_code != 500:
        return False
    try:
        body = response.json()
    except ValueError:
        return "rate limit" in response.text.lower()
    return isinstance(body, dict) and "rate limit" in str(body.get("message", "")).lower()


CURSOR_PARAMETERS: tuple[str, ...] = ("cursor", "page_token", "after", "page")
"""Query parameters that may carry `page_info.next` back (the documents name none), in the order tried."""
NEXT_IS_URL = "next_url"
"""What `probe_paging` answers when `page_info.next` is the following page's whole URL."""


def _identity(item: Mapping[str, Any]) -> str:
    for key in ("id", "test_case_id"):
        if item.get(key) is not None:
            return str(item[key])
    return repr(sorted(item.items()))


def _advanced(items: list[dict[str, Any]], after: Any, sent: Any, previous_first: str | None) -> bool:
    """A page turn moved on: not the same first item as before, and not the same `next` again."""
    if after is not None and str(after) == str(sent):
        return False
    return not (items and previous_first is not None and _identity(items[0]) == previous_first)


PagePosition = dict[str, Any]
"""Where a cursor-paginated list goes on: `next` (the previous page's `page_info.next`) and `first`
(that page's first item, to tell a page turn that repeats the page)."""


def _candidates(following: Any) -> list[str]:
    number = isinstance(following, int) or (isinstance(following, str) and following.isdigit())
    return ["page", *(p for p in CURSOR_PARAMETERS if p != "page")] if number else list(CURSOR_PARAMETERS)


class TestsigmaTmClient:
    def __init__(self, session: VendorSession, cursor_parameter: str | None = None) -> None:
        self.http = session
        self.cursor_parameter = cursor_parameter
        """The query parameter that carries `page_info.next` on this API, once detected (or given)."""

    def create_test_run(
        self,
        project_id: str,
        title: str,
        case_ids: Sequence[str],
        description: str = "",
        assignee_id: str | None = None,
        labels: Sequence[str] = (),
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "title": title,
            "description": description,
            "status": "ACTIVE",
            "project_id": project_id,
            "selection_type": "STATIC",
            "static_selection_filters": [{"field": "id", "operator": "IN", "values": list(case_ids)}],
            "label_names": list(labels),
            "environment_ids": [],
        }
        if assignee_id:
            body["assignee_id"] = assignee_id
        answer = self.http.request("POST", f"/projects/{project_id}/test_runs", json=body)
        run: dict[str, Any] = answer["data"]["test_run"]
        return run

    def update_run_cases(self, project_id: str, run_id: str, cases: Sequence[dict[str, Any]]) -> list[Any]:
        """Sets the cases' statuses. Not repeated blindly on a time-out or 5xx after sending (the
        caller reads the run's cases back instead: a status already set is confirmed, not set twice),
        so those raise VendorOutcomeUnknown; a 503 or a throttle is retried (not processed)."""
        answer = self.http.request(
            "PUT",
            f"/projects/{project_id}/test_runs/{run_id}/test_cases",
            json={"test_run_cases": list(cases)},
            repeatable=False,
        )
        updated: list[Any] = (answer or {}).get("data", {}).get("test_run_cases", [])
        return updated

    def _page(self, path: str, key: str, params: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Any]:
        answer = self.http.request("GET", path, params=params) or {}
        items = (answer.get("data") or {}).get(key) or []
        return list(items), (answer.get("page_info") or {}).get("next")

    def _pages(self, path: str, key: str, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every item of a cursor-paginated list (`page_info.next` is null on the last page).

        The documents do not say how `next` is sent back: a URL is followed as given; a token or page
        number goes in the parameter detected on the first page turn (CURSOR_PARAMETERS, tried in
        turn; a parameter the server ignores repeats the page) and remembered in `cursor_parameter`.
        A list that does not advance raises VendorPagingStalled naming the parameters tried (a
        remembered parameter that stops working is tried first, then the others)."""
        position: PagePosition | None = None
        seen_next: set[str] = set()
        while True:
            items, position = self.page_at(path, key, position, page_size)
            yield from items
            if position is None:
                return
            following = str(position["next"])
            if following in seen_next:
                raise self._stalled(path, f"page_info.next {following[:80]!r} came back again")
            seen_next.add(following)

    def page_at(
        self, path: str, key: str, position: PagePosition | None, page_size: int = 100
    ) -> tuple[list[dict[str, Any]], PagePosition | None]:
        """One page of a cursor-paginated list: the first (`position` None) or the one a previous call's
        answer designates; answers its items and the next page's position (None after the last page).
        A position is plain JSON, so a page that fails is read again from it, in this invocation or
        the next one."""
        base = {"page_size": page_size}
        if position is None:
            items, following = self._page(path, key, base)
            previous_first = None
        else:
            previous_first = position.get("first")
            items, following = self._turn(path, key, base, position["next"], previous_first)
        if not following:
            return items, None
        return items, {"next": following, "first": _identity(items[0]) if items else previous_first}

    def _turn(
        self, path: str, key: str, base: Mapping[str, Any], following: Any, previous_first: str | None
    ) -> tuple[list[dict[str, Any]], Any]:
        """The page `following` designates, detecting the cursor parameter on the first turn."""
        if isinstance(following, str) and following.startswith(("http://", "https://", "/")):
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(following).query))
            items, after = self._page(path, key, {**base, **query})
            if not _advanced(items, after, following, previous_first):
                raise self._stalled(path, "following page_info.next (a URL) repeated the page")
            return items, after
        # The remembered parameter first; should it stop working, the others before giving up.
        known = self.cursor_parameter if self.cursor_parameter in CURSOR_PARAMETERS else None
        candidates = _candidates(following)
        if known:
            candidates = [known, *(name for name in candidates if name != known)]
        for name in candidates:
            try:
                items, after = self._page(path, key, {**base, name: following})
            except VendorAuthFailed:
                raise
            except VendorRejected as exc:
                # A server that refuses an unknown parameter (4xx) rules it out just as well.
                logger.info("cursor parameter refused", vendor="testsigma-tm", parameter=name, status=exc.status)
                continue
            if _advanced(items, after, following, previous_first):
                if self.cursor_parameter != name:
                    logger.info("cursor parameter detected", vendor="testsigma-tm", parameter=name)
                self.cursor_parameter = name
                return items, after
        tried = ", ".join(candidates)
        raise self._stalled(path, f"page_info.next sent as {tried}: each answer repeated the page")

    @staticmethod
    def _stalled(path: str, detail: str) -> VendorPagingStalled:
        return VendorPagingStalled(
            "testsigma-tm",
            f"GET {path}: paging does not advance ({detail}); the cursor query parameter this API reads is "
            f"not one of {', '.join(CURSOR_PARAMETERS)}",
        )

    def probe_paging(self, project_id: str) -> str | None:
        """Read-only detection for `doctor`: turns the first page of the project's test cases (one case
        per page) and answers the cursor parameter found (`cursor`, `page_token`, `after`, `page`, or
        NEXT_IS_URL when `next` is a URL), None when the list has a single case or none (nothing to
        turn). Raises VendorPagingStalled when no parameter advances the list."""
        path = f"/projects/{project_id}/test_cases"
        items, following = self._page(path, "test_cases", {"page_size": 1})
        if not following:
            return None
        if isinstance(following, str) and following.startswith(("http://", "https://", "/")):
            self._turn(path, "test_cases", {"page_size": 1}, following, _identity(items[0]) if items else None)
            return NEXT_IS_URL
        self._turn(path, "test_cases", {"page_size": 1}, following, _identity(items[0]) if items else None)
        return self.cursor_parameter

    def list_runs(self, project_id: str) -> list[dict[str, Any]]:
        """The project's test runs (the documents give no list call; the API serves one, paged like the others)."""
        return list(self._pages(f"/projects/{project_id}/test_runs", "test_runs"))

    def list_run_cases(self, project_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self._pages(self._run_cases(project_id, run_id), "test_run_cases"))

    def run_cases_page(
        self, project_id: str, run_id: str, position: PagePosition | None
    ) -> tuple[list[dict[str, Any]], PagePosition | None]:
        """One page of the run's test cases (see `page_at`)."""
        return self.page_at(self._run_cases(project_id, run_id), "test_run_cases", position)

    @staticmethod
    def _run_cases(project_id: str, run_id: str) -> str:
        return f"/projects/{project_id}/test_runs/{run_id}/test_cases"

    def list_cases(self, project_id: str) -> list[dict[str, Any]]:
        return list(self._pages(f"/projects/{project_id}/test_cases", "test_cases"))

    def list_run_statuses(self) -> list[dict[str, Any]]:
        return list(self._pages("/test_runs/statuses", "test_run_statuses"))
