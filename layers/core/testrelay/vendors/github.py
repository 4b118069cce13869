"""GitHub REST API: commit statuses."""

from __future__ import annotations

from typing import Any, Literal

from testrelay.vendors.http import VendorSession

CommitState = Literal["error", "failure", "pending", "success"]
DESCRIPTION_LIMIT = 140


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
