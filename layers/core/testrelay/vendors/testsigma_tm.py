"""Testsigma Test Management API: create a test run, set its test cases' statuses."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import requests

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


class TestsigmaTmClient:
    def __init__(self, session: VendorSession) -> None:
        self.http = session

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
        answer = self.http.request(
            "PUT",
            f"/projects/{project_id}/test_runs/{run_id}/test_cases",
            json={"test_run_cases": list(cases)},
        )
        updated: list[Any] = (answer or {}).get("data", {}).get("test_run_cases", [])
        return updated

    def _pages(self, path: str, key: str, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every item of a cursor-paginated list (`page_info.next` is null on the last page)."""
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"page_size": page_size, **({"cursor": cursor} if cursor else {})}
            answer = self.http.request("GET", path, params=params) or {}
            yield from (answer.get("data") or {}).get(key) or []
            cursor = (answer.get("page_info") or {}).get("next")
            if not cursor:
                return

    def list_run_cases(self, project_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self._pages(f"/projects/{project_id}/test_runs/{run_id}/test_cases", "test_run_cases"))

    def list_cases(self, project_id: str) -> list[dict[str, Any]]:
        return list(self._pages(f"/projects/{project_id}/test_cases", "test_cases"))

    def list_run_statuses(self) -> list[dict[str, Any]]:
        return list(self._pages("/test_runs/statuses", "test_run_statuses"))
