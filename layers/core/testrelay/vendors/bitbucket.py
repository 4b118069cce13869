"""Bitbucket Cloud REST API: commit build statuses (the same `key` overwrites the previous status) and
Code Insights reports with their annotations."""

from __future__ import annotations

from typing import Any, Literal

from testrelay.errors import VendorRejected
from testrelay.vendors.http import VendorSession

BitbucketState = Literal["INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED"]
NAME_LIMIT = 255
DESCRIPTION_LIMIT = 255
ANNOTATIONS_PER_CALL = 100
ANNOTATIONS_PER_REPORT = 1000
REPORT_DETAILS_LIMIT = 2000
ANNOTATION_SUMMARY_LIMIT = 450
ANNOTATION_DETAILS_LIMIT = 2000
REPORT_DATA_LIMIT = 10


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

    def put_report(self, repository: str, sha: str, report_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Creates or replaces the commit's Code Insights report `report_id` (its external id)."""
        answer: dict[str, Any] = self.http.request(
            "PUT", f"/repositories/{repository}/commit/{sha}/reports/{report_id}", json=body
        )
        return answer

    def delete_report(self, repository: str, sha: str, report_id: str) -> None:
        """Removes the report and its annotations; a report that is not there is not an error."""
        try:
            self.http.request("DELETE", f"/repositories/{repository}/commit/{sha}/reports/{report_id}")
        except VendorRejected as exc:
            if exc.status != 404:
                raise

    def add_annotations(self, repository: str, sha: str, report_id: str, annotations: list[dict[str, Any]]) -> None:
        """Up to ANNOTATIONS_PER_CALL annotations, each with its own `external_id`. Not repeated on a
        lost answer: the caller starts the report afresh instead."""
        self.http.request(
            "POST",
            f"/repositories/{repository}/commit/{sha}/reports/{report_id}/annotations",
            json=annotations,
        )
