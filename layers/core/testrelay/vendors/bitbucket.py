"""Bitbucket Cloud REST API: commit build statuses (the same `key` overwrites the previous status)."""

from __future__ import annotations

from typing import Any, Literal

from testrelay.vendors.http import VendorSession

BitbucketState = Literal["INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED"]
NAME_LIMIT = 255
DESCRIPTION_LIMIT = 255


class BitbucketClient:
    def __init__(self, session: VendorSession) -> None:
        self.http = session

    def create_build_status(
        self,
        repository: str,
        sha: str,
        state: BitbucketState,
        key: str,
        url: str,
        name: str,
        description: str,
        refname: str | None = None,
    ) -> dict[str, Any]:
        """`repository` is `workspace/repo_slug`."""
        body: dict[str, Any] = {
            "key": key,
            "state": state,
            "url": url,
            "name": name[:NAME_LIMIT],
            "description": description[:DESCRIPTION_LIMIT],
        }
        if refname:
            body["refname"] = refname
        # Repeating is harmless: a status with the same key on the same commit is overwritten.
        answer: dict[str, Any] = self.http.request(
            "POST", f"/repositories/{repository}/commit/{sha}/statuses/build", json=body, repeatable=True
        )
        return answer
