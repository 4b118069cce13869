"""GitHub REST API: commit statuses (a token), check runs (a GitHub App's installation token), pull-request
comments (either)."""

from __future__ import annotations

from typing import Any, Literal

from testrelay.vendors.http import VendorSession

CommitState = Literal["error", "failure", "pending", "success"]
DESCRIPTION_LIMIT = 140
PAGE_SIZE = 100
MAX_PAGES = 100
"""Lists stop after this many pages (10,000 items): a pull request or commit never holds more of ours."""


class GitHubClient:
    def __init__(self, session: VendorSession) -> None:
        self.http = session

    def create_commit_status(
        self,
        repository: str,
        sha: str,
        state: CommitState,
        description: str,
        context: str,
        target_url: str | None,
    ) -> dict[str, Any]:
        if len(description) > DESCRIPTION_LIMIT:
            description = description[: DESCRIPTION_LIMIT - 1] + "…"
        body: dict[str, Any] = {"state": state, "description": description, "context": context}
        if target_url:
            body["target_url"] = target_url
        # Repeating is harmless: statuses with the same context replace each other.
        answer: dict[str, Any] = self.http.request(
            "POST", f"/repos/{repository}/statuses/{sha}", json=body, repeatable=True
        )
        return answer

    def list_commit_statuses(self, repository: str, ref: str) -> list[dict[str, Any]]:
        """Newest first, as GitHub lists them."""
        answer: list[dict[str, Any]] = self.http.request("GET", f"/repos/{repository}/commits/{ref}/statuses")
        return answer

    def check_runs_for_ref(self, repository: str, ref: str, name: str) -> list[dict[str, Any]]:
        """Every check run of that name on the commit (`filter=all`: re-runs too), 100 a page."""
        found: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            answer = self.http.request(
                "GET",
                f"/repos/{repository}/commits/{ref}/check-runs",
                params={"check_name": name, "filter": "all", "per_page": PAGE_SIZE, "page": page},
            )
            runs = answer.get("check_runs") if isinstance(answer, dict) else None
            if not isinstance(runs, list):
                break
            found += [run for run in runs if isinstance(run, dict)]
            if len(runs) < PAGE_SIZE or len(found) >= int(answer.get("total_count") or 0):
                break
        return found

    def get_check_run(self, repository: str, check_run_id: int) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.request("GET", f"/repos/{repository}/check-runs/{check_run_id}")
        return answer

    def create_check_run(self, repository: str, body: dict[str, Any]) -> dict[str, Any]:
        """Not repeated blindly: a lost answer surfaces as VendorOutcomeUnknown for the caller to look up."""
        answer: dict[str, Any] = self.http.request("POST", f"/repos/{repository}/check-runs", json=body)
        return answer

    def update_check_run(
        self, repository: str, check_run_id: int, body: dict[str, Any], repeatable: bool
    ) -> dict[str, Any]:
        """`repeatable`: the body carries no annotations (those are appended by every update)."""
        answer: dict[str, Any] = self.http.request(
            "PATCH", f"/repos/{repository}/check-runs/{check_run_id}", json=body, repeatable=repeatable
        )
        return answer

    def issue_comments(self, repository: str, number: str) -> list[dict[str, Any]]:
        """Every comment of the pull request (pull requests are issues), oldest first, 100 a page."""
        found: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            answer = self.http.request(
                "GET",
                f"/repos/{repository}/issues/{number}/comments",
                params={"per_page": PAGE_SIZE, "page": page},
            )
            if not isinstance(answer, list):
                break
            found += [comment for comment in answer if isinstance(comment, dict)]
            if len(answer) < PAGE_SIZE:
                break
        return found

    def create_issue_comment(self, repository: str, number: str, body: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.request(
            "POST", f"/repos/{repository}/issues/{number}/comments", json={"body": body}
        )
        return answer

    def update_issue_comment(self, repository: str, comment_id: int, body: str) -> dict[str, Any]:
        # Repeating sets the same body again: harmless.
        answer: dict[str, Any] = self.http.request(
            "PATCH", f"/repos/{repository}/issues/comments/{comment_id}", json={"body": body}, repeatable=True
        )
        return answer
